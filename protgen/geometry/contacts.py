"""Steric clashes of a backbone: the definition shared by the quality panel and validation."""

import numpy as np

__all__ = ["count_clashes", "CLASH_CA_CA", "CLASH_ATOM"]

CLASH_CA_CA = 3.0  # Å; CA pairs |i − j| ≥ 2 closer than this
CLASH_ATOM = 2.2  # Å; backbone heavy atoms of residues |i − j| ≥ 2 closer than this


def count_clashes(atoms: np.ndarray, chain: np.ndarray | None = None) -> int:
    """Residue pairs |i − j| ≥ 2 (or of different chains) with CA–CA < 3.0 Å or any backbone atoms
    < 2.2 Å. atoms: Å, (L, 4, 3); chain: (L,) chain label per residue (None: one chain)."""
    ca = atoms[:, 1]
    length = len(ca)
    sep = np.abs(np.arange(length)[:, None] - np.arange(length)[None, :]) >= 2
    if chain is not None:
        sep |= np.asarray(chain)[:, None] != np.asarray(chain)[None, :]
    ca_close = (np.linalg.norm(ca[:, None] - ca[None], axis=-1) < CLASH_CA_CA) & sep
    flat = atoms.reshape(-1, 3)
    d = (
        np.linalg.norm(flat[:, None] - flat[None], axis=-1)
        .reshape(length, 4, length, 4)
        .min(axis=(1, 3))
    )
    close = ca_close | ((d < CLASH_ATOM) & sep)
    return int(np.triu(close).sum())
