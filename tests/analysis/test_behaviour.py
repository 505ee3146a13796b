"""Behaviour descriptors and clustering on synthetic data with obvious groups."""

from __future__ import annotations

import numpy as np
import pytest

from rlsweep.analysis.behaviour import (
    cluster_behaviours,
    combine,
    describe_episode,
    descriptor_names,
    distinguishing,
    noise_scale,
    rarity,
    silhouette,
)


def test_discrete_descriptor_by_hand() -> None:
    obs = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    actions = np.array([0, 1, 1])
    d = describe_episode(obs, actions, n_actions=3)
    # obs means [2, 1], population stds [sqrt(8/3), 0], action fractions [1/3, 2/3, 0], length 3
    np.testing.assert_allclose(d, [2.0, 1.0, np.sqrt(8 / 3), 0.0, 1 / 3, 2 / 3, 0.0, 3.0])
    assert len(descriptor_names(2, n_actions=3)) == len(d)


def test_continuous_descriptor_by_hand() -> None:
    obs = np.array([[1.0], [3.0]])
    actions = np.array([[0.5, -1.0], [1.5, -1.0]])
    d = describe_episode(obs, actions)
    np.testing.assert_allclose(d, [2.0, 1.0, 1.0, -1.0, 0.5, 0.0, 2.0])
    assert descriptor_names(1, action_dim=2)[2:6] == [
        "action0_mean",
        "action1_mean",
        "action0_std",
        "action1_std",
    ]


def test_descriptor_without_observations_keeps_actions_and_length() -> None:
    d = describe_episode(np.empty((4, 0)), np.array([1, 1, 1, 0]), n_actions=2)
    np.testing.assert_allclose(d, [0.25, 0.75, 4.0])


def test_combine_is_elementwise_mean() -> None:
    np.testing.assert_allclose(combine([np.array([0.0, 2.0]), np.array([2.0, 4.0])]), [1.0, 3.0])


def _groups(sizes: list[int], dim: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    # Groups differ in every entry (as policies that behave differently do); inside a group only a
    # little noise.
    rng = np.random.default_rng(seed)
    out = {}
    for g, size in enumerate(sizes):
        centre = rng.normal(scale=10.0, size=dim)
        for i in range(size):
            out[f"g{g}-{i}"] = centre + rng.normal(scale=0.3, size=dim)
    return out


def test_obvious_groups_are_found_and_the_rare_one_stands_out() -> None:
    labels = cluster_behaviours(_groups([6, 3, 1]), seed=0)
    assert {labels[f"g0-{i}"] for i in range(6)} == {0}  # biggest cluster is 0
    assert {labels[f"g1-{i}"] for i in range(3)} == {1}
    assert labels["g2-0"] == 2
    r = rarity(labels)
    assert r["g0-0"] == pytest.approx(0.4)
    assert r["g1-0"] == pytest.approx(0.7)
    assert r["g2-0"] == pytest.approx(0.9)
    assert max(r, key=r.__getitem__) == "g2-0"


def test_clustering_is_seeded() -> None:
    data = _groups([5, 5, 4, 4], seed=3)
    assert cluster_behaviours(data, seed=1) == cluster_behaviours(data, seed=1)
    assert len(set(cluster_behaviours(data, max_clusters=6).values())) == 4


def test_max_clusters_bounds_k() -> None:
    labels = cluster_behaviours(_groups([4, 4, 4, 4]), max_clusters=2)
    assert set(labels.values()) == {0, 1}


def test_few_identical_or_structureless_items_stay_in_one_cluster() -> None:
    assert cluster_behaviours({}) == {}
    three = _groups([1, 1, 1])
    assert set(cluster_behaviours(three).values()) == {0}  # fewer than 4 items
    same = {str(i): np.ones(5) for i in range(8)}
    assert set(cluster_behaviours(same).values()) == {0}
    blob = {str(i): v for i, v in enumerate(np.random.default_rng(0).normal(size=(30, 8)))}
    assert set(cluster_behaviours(blob).values()) == {0}
    assert set(rarity(cluster_behaviours(blob)).values()) == {0.0}


def test_silhouette_by_hand() -> None:
    # Points 0, 1 in one cluster and 10 alone: for 0, a=1, b=10 -> 0.9; for 1, a=1, b=9 -> 8/9;
    # the singleton scores 0. Mean (0.9 + 8/9 + 0) / 3.
    x = np.array([[0.0], [1.0], [10.0]])
    assert silhouette(x, np.array([0, 0, 1])) == pytest.approx((0.9 + 8 / 9) / 3)


# ---------------------------------------------------------------- seed noise

#: Six CartPole policies of the demo that all balance for 500 steps (3 configurations x 2 seeds),
#: rendered one episode each: obs means, obs stds, action fractions, length.
BALANCING = {
    "run0": ([-0.189, -0.022, 0.001, 0.004, 0.043, 0.143, 0.009, 0.197, 0.5, 0.5, 500.0], "cf48b5e590"),
    "run2": ([-0.997, -0.095, 0.002, 0.004, 0.452, 0.251, 0.016, 0.183, 0.5, 0.5, 500.0], "cf48b5e590"),
    "run1": ([-0.228, -0.023, 0.001, 0.005, 0.06, 0.145, 0.009, 0.193, 0.5, 0.5, 500.0], "9727c9f87c"),
    "run3": ([-0.192, -0.023, 0.001, 0.004, 0.045, 0.142, 0.008, 0.199, 0.5, 0.5, 500.0], "9727c9f87c"),
    "run4": ([-0.397, -0.049, 0.001, 0.004, 0.126, 0.15, 0.009, 0.199, 0.5, 0.5, 500.0], "7a74283d66"),
    "run5": ([0.352, 0.057, 0.0, 0.004, 0.233, 0.147, 0.012, 0.188, 0.5, 0.5, 500.0], "7a74283d66"),
}


def test_near_identical_balancing_policies_are_one_behaviour() -> None:
    descriptors = {k: np.array(v) for k, (v, _) in BALANCING.items()}
    configs = {k: c for k, (_, c) in BALANCING.items()}
    # Run 2 drifts further than run 0, but run 0 is its own configuration's other seed: noise.
    assert set(cluster_behaviours(descriptors, groups=configs).values()) == {0}


def test_behaviours_beyond_seed_noise_are_split() -> None:
    # Two configurations push left (action 0 in 80% of steps), two push right; seeds differ by 1%.
    rng = np.random.default_rng(0)
    descriptors, configs = {}, {}
    for c, left in [("a", 0.8), ("b", 0.8), ("c", 0.2), ("d", 0.2)]:
        for seed in range(2):
            frac = left + rng.normal(scale=0.01)
            descriptors[f"{c}{seed}"] = np.array([0.1, 0.05, frac, 1 - frac, 500.0])
            configs[f"{c}{seed}"] = c
    labels = cluster_behaviours(descriptors, groups=configs)
    assert {labels[k] for k in ("a0", "a1", "b0", "b1")} != {labels[k] for k in ("c0", "c1", "d0", "d1")}
    assert len(set(labels.values())) == 2
    names = ["obs0_mean", "obs0_std", "action0_frac", "action1_frac", "length"]
    (text,) = distinguishing(descriptors, labels, names).values()
    assert {part.split()[0] for part in text.split(", ")} == {"action0_frac", "action1_frac"}
    assert text.count("(behaviour 0: ") == 2


def test_a_split_smaller_than_the_seed_noise_is_merged() -> None:
    # The same two groups, but seeds of one configuration differ as much as the groups do.
    descriptors = {
        "a0": np.array([0.8, 0.2]), "a1": np.array([0.2, 0.8]),
        "b0": np.array([0.8, 0.2]), "b1": np.array([0.2, 0.8]),
        "c0": np.array([0.8, 0.2]), "c1": np.array([0.21, 0.79]),
    }  # fmt: skip
    configs = {k: k[0] for k in descriptors}
    assert set(cluster_behaviours(descriptors, groups=configs).values()) == {0}
    assert len(set(cluster_behaviours(descriptors).values())) == 2  # no replicates: a clear split


def test_noise_scale_by_hand() -> None:
    x = np.array([[0.0, 10.0], [2.0, 10.0], [5.0, 20.0], [5.0, 20.0]])
    # Groups {0, 1} and {2, 3}: squares 2 + 0 on entry 0, over 2 degrees of freedom -> 1.0; entry 1
    # agrees inside both groups, so its floor holds: 5% of 20.
    np.testing.assert_allclose(noise_scale(x, ["a", "a", "b", "b"]), [1.0, 1.0])
    np.testing.assert_allclose(noise_scale(x), [0.25, 1.0])  # no replicates: the floor
