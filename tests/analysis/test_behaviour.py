"""Behaviour descriptors and clustering on synthetic data with obvious groups."""

from __future__ import annotations

import numpy as np
import pytest

from rlsweep.analysis.behaviour import (
    cluster_behaviours,
    combine,
    describe_episode,
    descriptor_names,
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
