"""Behaviour descriptors of recorded episodes, and clustering them so that policies which behave
alike sit together in the report's gallery and a rare behaviour stands out.

A descriptor is a plain vector: per observation dimension its mean and spread over the episode, the
action histogram (discrete) or per-dimension action mean and spread (continuous), and the length.
Clustering is k-means with k chosen by silhouette, in plain NumPy, on descriptors measured in units
of their own seed noise; clusters whose centres are closer than a few noise units are merged, so
policies that differ only as two seeds of one configuration do stay together.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

#: Below this best silhouette the descriptors show no real grouping (Kaufman & Rousseeuw's "no
#: substantial structure"), and every policy stays in one cluster rather than being split at random.
MIN_SILHOUETTE = 0.25
#: Two clusters stay apart only if their centres differ by more than this many noise units on at
#: least one descriptor entry (a z-score; 3 is rarely reached by noise alone between two groups).
SEPARATION = 3.0
#: The smallest noise an entry is granted, as a share of its largest magnitude: without replicates
#: (or with replicates that happen to agree) a 1% wobble is not a behaviour.
NOISE_FLOOR = 0.05


def describe_episode(
    observations: np.ndarray, actions: np.ndarray, *, n_actions: int | None = None
) -> np.ndarray:
    """The behaviour descriptor of one episode.

    `observations` is (T, obs_dim) (obs_dim may be 0 when observations were too large to keep),
    `actions` is (T,) of integers for a discrete action space with `n_actions` actions (default:
    largest action + 1), or (T, action_dim) floats. Layout: obs means, obs stds, then action
    fractions (discrete) or action means and stds (continuous), then the episode length.
    """
    obs = np.asarray(observations, dtype=float)
    obs = obs.reshape(obs.shape[0], -1) if obs.ndim != 2 else obs
    acts = np.asarray(actions)
    length = max(obs.shape[0], acts.shape[0] if acts.ndim else 0)
    if obs.shape[0]:
        parts = [obs.mean(axis=0), obs.std(axis=0)]
    else:
        parts = [np.zeros(obs.shape[1]), np.zeros(obs.shape[1])]
    discrete = n_actions is not None or (np.issubdtype(acts.dtype, np.integer) and acts.ndim <= 1)
    if discrete:
        flat = acts.astype(int).ravel()
        n = n_actions if n_actions is not None else int(flat.max()) + 1 if flat.size else 0
        counts = np.bincount(flat, minlength=n)[:n].astype(float)
        parts.append(counts / flat.size if flat.size else counts)
    else:
        cont = acts.astype(float).reshape(acts.shape[0], -1)
        parts += [cont.mean(axis=0), cont.std(axis=0)] if cont.shape[0] else [np.zeros(cont.shape[1])] * 2
    parts.append(np.array([float(length)]))
    return np.concatenate(parts)


def descriptor_names(
    obs_dim: int, *, n_actions: int | None = None, action_dim: int | None = None
) -> list[str]:
    """Names of the entries of `describe_episode`'s vector, for tables and plots."""
    names = [f"obs{i}_mean" for i in range(obs_dim)] + [f"obs{i}_std" for i in range(obs_dim)]
    if n_actions is not None:
        names += [f"action{i}_frac" for i in range(n_actions)]
    elif action_dim is not None:
        names += [f"action{i}_mean" for i in range(action_dim)] + [
            f"action{i}_std" for i in range(action_dim)
        ]
    return names + ["length"]


def combine(descriptors: list[np.ndarray]) -> np.ndarray:
    """One policy's descriptor from several of its episodes: the element-wise mean."""
    return np.mean(np.stack([np.asarray(d, dtype=float) for d in descriptors]), axis=0)


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, n_init: int = 8, iters: int = 100) -> np.ndarray:
    """Labels of the best (lowest inertia) of `n_init` k-means++ starts."""
    best_labels, best_inertia = np.zeros(len(x), dtype=int), np.inf
    for _ in range(n_init):
        centres = [x[rng.integers(len(x))]]
        for _ in range(1, k):  # k-means++: next centre far from the chosen ones
            d2 = np.min(((x[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
            total = d2.sum()
            centres.append(x[rng.choice(len(x), p=d2 / total)] if total > 0 else x[rng.integers(len(x))])
        c = np.array(centres)
        labels = np.full(len(x), -1)
        for _ in range(iters):
            new = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(axis=1)
            if np.array_equal(new, labels):
                break
            labels = new
            for j in range(k):
                if np.any(labels == j):
                    c[j] = x[labels == j].mean(axis=0)
        inertia = ((x - c[labels]) ** 2).sum()
        if inertia < best_inertia:
            best_labels, best_inertia = labels, inertia
    return best_labels


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient (Euclidean); a point alone in its cluster scores 0."""
    dist = np.sqrt(((x[:, None, :] - x[None]) ** 2).sum(-1))
    clusters = np.unique(labels)
    if len(clusters) < 2:
        return 0.0
    # mean distance from each point to each cluster
    member = labels[None, :] == clusters[:, None]  # (k, n)
    sums = dist @ member.T.astype(float)  # (n, k)
    sizes = member.sum(axis=1).astype(float)
    own = np.searchsorted(clusters, labels)
    own_size = sizes[own]
    a = np.where(own_size > 1, sums[np.arange(len(x)), own] / np.maximum(own_size - 1, 1), 0.0)
    other = sums / sizes[None, :]
    other[np.arange(len(x)), own] = np.inf
    b = other.min(axis=1)
    s = np.where(own_size > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def noise_scale(x: np.ndarray, groups: Sequence[str] | None = None) -> np.ndarray:
    """Per entry, how much descriptors vary between replicates: the pooled standard deviation
    inside `groups` (items with the same group are replicates, such as the seeds of one
    configuration or episodes of one policy), never below NOISE_FLOOR of the entry's magnitude.
    Whatever two seeds of one configuration already differ by is noise, not another behaviour."""
    floor = NOISE_FLOOR * np.abs(x).max(axis=0) + 1e-9
    if groups is None:
        return floor
    squares, dof = np.zeros(x.shape[1]), 0
    for group in sorted(set(groups)):
        members = x[[i for i, g in enumerate(groups) if g == group]]
        if len(members) > 1:
            squares += ((members - members.mean(axis=0)) ** 2).sum(axis=0)
            dof += len(members) - 1
    pooled = np.sqrt(squares / dof) if dof else np.zeros(x.shape[1])
    return np.maximum(pooled, floor)


def _merge_close(z: np.ndarray, labels: np.ndarray, separation: float) -> np.ndarray:
    """Merge the closest two clusters (largest per-entry gap of their centres, in noise units)
    until every pair is farther apart than `separation`."""
    labels = labels.copy()
    while True:
        clusters = np.unique(labels)
        if len(clusters) < 2:
            return labels
        centres = np.stack([z[labels == c].mean(axis=0) for c in clusters])
        gap = np.abs(centres[:, None, :] - centres[None]).max(axis=-1)
        np.fill_diagonal(gap, np.inf)
        a, b = np.unravel_index(np.argmin(gap), gap.shape)
        if gap[a, b] > separation:
            return labels
        labels[labels == clusters[b]] = clusters[a]


def cluster_behaviours(
    descriptors: dict[str, np.ndarray],
    max_clusters: int = 6,
    seed: int = 0,
    *,
    groups: Mapping[str, str] | None = None,
    min_silhouette: float = MIN_SILHOUETTE,
    separation: float = SEPARATION,
) -> dict[str, int]:
    """Cluster labels by key; cluster 0 is the largest, then 1, and so on.

    Each entry is measured in units of its noise (`noise_scale`: the spread between replicates named
    by `groups`, key -> group, such as the seeds of one configuration; at least NOISE_FLOOR of the
    entry), then k-means runs for k = 2..max_clusters and the k with the best silhouette wins;
    clusters closer than `separation` noise units on every entry are merged. Fewer than 4 items,
    identical descriptors, or a best silhouette below `min_silhouette` put everything in cluster 0.
    """
    keys = list(descriptors)
    if not keys:
        return {}
    x = np.stack([np.asarray(descriptors[k], dtype=float).ravel() for k in keys])
    if len(keys) < 4:
        return dict.fromkeys(keys, 0)
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    noise = noise_scale(x, [str(groups.get(k, k)) for k in keys] if groups is not None else None)
    x = (x - x.mean(axis=0)) / noise
    distinct = len(np.unique(np.round(x, 9), axis=0))
    rng = np.random.default_rng(seed)
    best_labels, best_score = np.zeros(len(keys), dtype=int), -np.inf
    for k in range(2, min(max_clusters, len(keys) - 1, distinct) + 1):
        labels = _kmeans(x, k, rng)
        score = silhouette(x, labels)
        if score > best_score + 1e-12:
            best_labels, best_score = labels, score
    if best_score < min_silhouette:
        return dict.fromkeys(keys, 0)
    best_labels = _merge_close(x, best_labels, separation)
    # Renumber: biggest cluster first, ties by first appearance, so labels are stable and readable.
    sizes = Counter(best_labels.tolist())
    first = {lab: i for i, lab in reversed(list(enumerate(best_labels.tolist())))}
    order = sorted(sizes, key=lambda lab: (-sizes[lab], first[lab]))
    rename = {old: new for new, old in enumerate(order)}
    return {key: rename[int(lab)] for key, lab in zip(keys, best_labels, strict=True)}


def distinguishing(
    descriptors: dict[str, np.ndarray], labels: Mapping[str, int], names: Sequence[str], n: int = 2
) -> dict[int, str]:
    """Per cluster but the largest (0), the `n` named entries where its mean is farthest from
    cluster 0's, relative to the entry's magnitude: 'action0_frac 0.31 (behaviour 0: 0.5)'."""
    keys = [k for k in descriptors if k in labels]
    if not keys:
        return {}
    x = np.stack([np.asarray(descriptors[k], dtype=float).ravel() for k in keys])
    if x.shape[1] != len(names):
        return {}
    lab = np.array([labels[k] for k in keys])
    scale = np.abs(x).max(axis=0) + 1e-9
    base = x[lab == 0].mean(axis=0) if np.any(lab == 0) else x.mean(axis=0)
    out = {}
    for c in sorted(set(lab.tolist()) - {0}):
        mean = x[lab == c].mean(axis=0)
        order = np.argsort(-np.abs(mean - base) / scale)[:n]
        out[c] = ", ".join(f"{names[i]} {mean[i]:.3g} (behaviour 0: {base[i]:.3g})" for i in order)
    return out


def rarity(labels: dict[str, int]) -> dict[str, float]:
    """How rare each item's behaviour is: 1 - (size of its cluster / number of items). Everything in
    one cluster scores 0; a lone policy among 10 scores 0.9."""
    if not labels:
        return {}
    sizes = Counter(labels.values())
    n = len(labels)
    return {key: 1.0 - sizes[lab] / n for key, lab in labels.items()}
