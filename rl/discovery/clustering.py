"""Seeded k-means (k-means++ initialisation, several restarts) and the silhouette criterion, in numpy/scipy.

Deterministic: the same data, k and seed give the same labels. Labels are renumbered by first appearance, so
two runs that find the same partition report it identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist


@dataclass(frozen=True)
class KMeansResult:
    labels: np.ndarray  # [n] int, 0..k-1, numbered by first appearance
    centers: np.ndarray  # [k, d]
    inertia: float  # sum of squared distances to the assigned center


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: first center uniform, then each next with probability ∝ squared distance to the nearest."""
    n = x.shape[0]
    centers = [x[rng.integers(n)]]
    d2 = ((x - centers[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:  # every point coincides with a center already: take any point not yet chosen
            idx = int(rng.integers(n))
        else:
            idx = int(rng.choice(n, p=d2 / total))
        centers.append(x[idx])
        d2 = np.minimum(d2, ((x - x[idx]) ** 2).sum(axis=1))
    return np.array(centers, dtype=float)


def _lloyd(x: np.ndarray, centers: np.ndarray, max_iter: int) -> tuple[np.ndarray, np.ndarray, float]:
    k = centers.shape[0]
    labels = np.full(x.shape[0], -1)
    for _ in range(max_iter):
        d2 = cdist(x, centers, "sqeuclidean")
        new = d2.argmin(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = labels == j
            if members.any():
                centers[j] = x[members].mean(axis=0)
            else:  # an emptied cluster restarts at the point farthest from its center
                far = int(d2[np.arange(x.shape[0]), labels].argmax())
                centers[j] = x[far]
                labels[far] = j
    d2 = cdist(x, centers, "sqeuclidean")
    labels = d2.argmin(axis=1)
    inertia = float(d2[np.arange(x.shape[0]), labels].sum())
    return labels, centers, inertia


def _renumber(labels: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = list(dict.fromkeys(labels.tolist()))
    order += [j for j in range(centers.shape[0]) if j not in order]
    mapping = np.empty(centers.shape[0], dtype=int)
    mapping[order] = np.arange(len(order))
    return mapping[labels], centers[order]


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, n_init: int = 10, max_iter: int = 300) -> KMeansResult:
    """Best of `n_init` k-means++ seeded Lloyd runs (lowest inertia)."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[0] < k or k < 1:
        raise ValueError(f"k-means needs at least k={k} rows in a 2-D array, got shape {x.shape}")
    rng = np.random.default_rng(seed)
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for _ in range(n_init):
        labels, centers, inertia = _lloyd(x, _kmeans_pp(x, k, rng), max_iter)
        if best is None or inertia < best[2] - 1e-12:
            best = (labels, centers, inertia)
    assert best is not None
    labels, centers = _renumber(best[0], best[1])
    return KMeansResult(labels=labels, centers=centers, inertia=best[2])


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette width: for each point, (b − a) / max(a, b) with a its mean distance to its own cluster and
    b the smallest mean distance to another cluster; 0 for points alone in their cluster."""
    x = np.asarray(x, dtype=float)
    labels = np.asarray(labels)
    ks = np.unique(labels)
    if len(ks) < 2 or len(ks) >= x.shape[0]:
        raise ValueError(f"silhouette needs 2 ≤ k ≤ n − 1 clusters, got k={len(ks)} for n={x.shape[0]}")
    d = cdist(x, x)
    onehot = (labels[:, None] == ks[None, :]).astype(float)  # [n, k]
    sizes = onehot.sum(axis=0)
    sums = d @ onehot  # [n, k] summed distance to each cluster
    own = (labels[:, None] == ks[None, :]).argmax(axis=1)
    own_size = sizes[own]
    a = np.where(own_size > 1, sums[np.arange(len(labels)), own] / np.maximum(own_size - 1, 1), 0.0)
    mean_other = sums / sizes[None, :]
    mean_other[np.arange(len(labels)), own] = np.inf
    b = mean_other.min(axis=1)
    denom = np.maximum(a, b)
    s = np.where((own_size > 1) & (denom > 0), (b - a) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(s.mean())


@dataclass(frozen=True)
class KSelection:
    chosen: KMeansResult
    chosen_k: int
    scores: list[tuple[int, float | None, float]]  # (k, silhouette, inertia)


def choose_k(x: np.ndarray, *, k_max: int = 8, seed: int = 0, n_init: int = 10) -> KSelection:
    """Cluster for k = 1 … min(k_max, n − 1) and choose the k ≥ 2 with the highest mean silhouette (ties: fewer
    clusters). With fewer than 3 rows only k = 1 is possible."""
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    results: dict[int, KMeansResult] = {1: kmeans(x, 1, seed=seed, n_init=1)}
    scores: list[tuple[int, float | None, float]] = [(1, None, results[1].inertia)]
    for k in range(2, min(k_max, n - 1) + 1):
        res = kmeans(x, k, seed=seed + k, n_init=n_init)
        results[k] = res
        n_used = len(np.unique(res.labels))
        sil = silhouette(x, res.labels) if 2 <= n_used < n else None
        scores.append((k, sil, res.inertia))
    rated = [(k, s) for k, s, _ in scores if s is not None]
    if not rated:
        return KSelection(chosen=results[1], chosen_k=1, scores=scores)
    best = max(s for _, s in rated)
    k_best = min(k for k, s in rated if s >= best - 1e-9)
    return KSelection(chosen=results[k_best], chosen_k=k_best, scores=scores)
