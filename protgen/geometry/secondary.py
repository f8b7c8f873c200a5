"""Secondary structure of backbones by DSSP (hydrogen-bond energies; pydssp on numpy arrays)."""

import numpy as np

__all__ = ["dssp", "composition"]


def dssp(atoms: np.ndarray) -> str:
    """Three-state DSSP string ('H' helix, 'E' strand, '-' other) of one backbone.

    atoms: Å, (L, 4, 3) in the order N, CA, C, O. Chains shorter than 3 residues are all '-'.
    """
    import pydssp

    atoms = np.asarray(atoms, dtype=np.float32)
    if len(atoms) < 3:
        return "-" * len(atoms)
    return "".join(pydssp.assign(atoms, out_type="c3"))


def composition(ss: str) -> tuple[float, float, float]:
    """Fractions (helix, strand, coil) of a DSSP string."""
    n = max(len(ss), 1)
    return ss.count("H") / n, ss.count("E") / n, 1 - (ss.count("H") + ss.count("E")) / n
