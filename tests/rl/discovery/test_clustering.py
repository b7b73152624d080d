"""k-means with k-means++ and the silhouette criterion on points whose grouping is known."""

from __future__ import annotations

import numpy as np
import pytest

from rl.discovery.clustering import choose_k, kmeans, silhouette


def blobs(centres, per=20, sd=0.1, seed=0):
    rng = np.random.default_rng(seed)
    x = np.vstack([rng.normal(c, sd, size=(per, len(c))) for c in centres])
    return x, np.repeat(np.arange(len(centres)), per)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_the_silhouette_chooses_the_planted_number_of_blobs(k):
    x, truth = blobs([(0, 0), (5, 0), (0, 5), (5, 5)][:k], seed=k)
    sel = choose_k(x, k_max=8, seed=0)
    assert sel.chosen_k == k
    # same partition as the truth, up to label names
    pairs_same = truth[:, None] == truth[None, :]
    assert np.array_equal(sel.chosen.labels[:, None] == sel.chosen.labels[None, :], pairs_same)
    assert [s[0] for s in sel.scores] == list(range(1, 9)) and sel.scores[0][1] is None


def test_kmeans_is_deterministic_and_numbers_labels_by_first_appearance():
    x, _ = blobs([(0, 0), (3, 3), (6, 0)], seed=1)
    a, b = kmeans(x, 3, seed=5), kmeans(x, 3, seed=5)
    assert np.array_equal(a.labels, b.labels) and a.inertia == b.inertia
    assert a.labels[0] == 0
    assert a.inertia == pytest.approx(((x - a.centers[a.labels]) ** 2).sum())


def test_silhouette_matches_a_hand_computation():
    x = np.array([[0.0], [1.0], [10.0], [12.0]])
    labels = np.array([0, 0, 1, 1])
    # a = distance to the partner; b = mean distance to the other pair
    s = [(11 - 1) / 11, (10 - 1) / 10, (9.5 - 2) / 9.5, (11.5 - 2) / 11.5]
    assert silhouette(x, labels) == pytest.approx(np.mean(s))


def test_two_points_allow_only_one_cluster():
    sel = choose_k(np.array([[0.0, 0.0], [1.0, 1.0]]))
    assert sel.chosen_k == 1 and sel.scores == [(1, None, pytest.approx(1.0))]


def test_duplicate_points_do_not_break_kmeans():
    x = np.vstack([np.zeros((5, 2)), np.ones((5, 2))])
    res = kmeans(x, 3, seed=0)
    assert res.inertia == pytest.approx(0.0)
