"""Structural similarity: optimal superposition (Kabsch) RMSD and TM-scores by TM-align."""

import numpy as np

from protgen.geometry.superposition import kabsch_rmsd, superpose

__all__ = ["kabsch_rmsd", "superpose", "tm_align", "single_linkage_clusters"]


def tm_align(
    ca_a: np.ndarray, ca_b: np.ndarray, seq_a: str | None = None, seq_b: str | None = None
) -> tuple[float, float]:
    """TM-scores of a TM-align alignment normalised by the length of a and of b. ca_*: Å, (L, 3)."""
    import tmtools

    seq_a = seq_a or "G" * len(ca_a)
    seq_b = seq_b or "G" * len(ca_b)
    result = tmtools.tm_align(
        np.ascontiguousarray(ca_a, dtype=np.float64),
        np.ascontiguousarray(ca_b, dtype=np.float64),
        seq_a,
        seq_b,
    )
    return float(result.tm_norm_chain1), float(result.tm_norm_chain2)


def single_linkage_clusters(similarity: np.ndarray, threshold: float) -> int:
    """Number of clusters when items with similarity > threshold are linked (union–find)."""
    n = len(similarity)
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(similarity > threshold, 1))):
        parent[root(i)] = root(j)
    return len({root(i) for i in range(n)})
