"""Secondary structure of backbones by DSSP (hydrogen-bond energies; pydssp on numpy arrays), and
the per-residue secondary-structure condition of the world state.

The condition's codes: 0 unknown (unconstrained), 1 helix, 2 strand, 3 loop. A user writes it as a
string of H, E and L (``?`` or ``-`` for unconstrained positions); a DSSP string (H, E, ``-`` for
everything else) converts with :func:`dssp_to_codes`.
"""

import numpy as np
import torch

__all__ = [
    "dssp",
    "composition",
    "UNKNOWN",
    "HELIX",
    "STRAND",
    "LOOP",
    "SS_STATES",
    "dssp_to_codes",
    "parse_ss",
    "codes_to_ss",
]

UNKNOWN, HELIX, STRAND, LOOP = 0, 1, 2, 3
SS_STATES = 4  # codes 0..3
_USER = {"H": HELIX, "E": STRAND, "L": LOOP, "?": UNKNOWN, "-": UNKNOWN}
_DSSP = {"H": HELIX, "E": STRAND}  # anything else ('-') is loop


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


def dssp_to_codes(ss: str) -> torch.Tensor:
    """A three-state DSSP string → condition codes (L,): H helix, E strand, anything else loop."""
    return torch.tensor([_DSSP.get(c, LOOP) for c in ss], dtype=torch.long)


def parse_ss(text: str) -> torch.Tensor:
    """A user's secondary-structure string → condition codes (L,). H helix, E strand, L loop, ``?``
    or ``-`` unconstrained (case-insensitive; spaces ignored). Raises ValueError naming the first
    character that is none of these, with its position (1-based)."""
    codes = []
    for position, c in enumerate(text.replace(" ", ""), 1):
        if c.upper() not in _USER:
            raise ValueError(
                f"position {position}: {c!r} is not a secondary-structure state "
                "(H helix, E strand, L loop, ? or - unconstrained)"
            )
        codes.append(_USER[c.upper()])
    if not codes:
        raise ValueError("the secondary-structure string is empty")
    return torch.tensor(codes, dtype=torch.long)


def codes_to_ss(codes) -> str:
    """Condition codes → the user's string (H, E, L, ? for unconstrained)."""
    return "".join("?HEL"[int(c)] for c in codes)
