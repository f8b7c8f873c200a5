"""Ideal backbones for tests, built atom by atom from (φ, ψ, ω) with Engh–Huber geometry (NeRF)."""

import math

import numpy as np

HELIX = (-57.0, -47.0)
STRAND = (-120.0, 130.0)

_BOND = {"N-CA": 1.458, "CA-C": 1.525, "C-N": 1.329, "C-O": 1.231}
_ANGLE = {"N-CA-C": 111.2, "CA-C-N": 116.2, "C-N-CA": 121.7, "CA-C-O": 120.5}


def _place(a, b, c, bond, angle_deg, torsion_deg):
    """Atom d with |cd| = bond, angle bcd, dihedral abcd (natural extension reference frame)."""
    angle, torsion = math.radians(angle_deg), math.radians(torsion_deg)
    bc = c - b
    bc /= np.linalg.norm(bc)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, bc)
    d2 = np.array(
        [
            -bond * math.cos(angle),
            bond * math.sin(angle) * math.cos(torsion),
            bond * math.sin(angle) * math.sin(torsion),
        ]
    )
    return c + d2[0] * bc + d2[1] * m + d2[2] * n


def ideal_chain(
    phi_psi: list[tuple[float, float]] | tuple[float, float], length: int | None = None
) -> np.ndarray:
    """Backbone (L, 4, 3) in Å, N, CA, C, O; O from the next N (last one from ψ)."""
    if length is not None:
        phi_psi = [phi_psi] * length
    n = np.array([0.0, 1.458, 0.0]) + np.array([-1.0, 0.0, 0.0]) * 0
    ca = np.zeros(3)
    c = np.array([_BOND["CA-C"], 0.0, 0.0])
    n = np.array([-0.525, 1.363, 0.0])
    atoms = [[n, ca, c]]
    for i in range(1, len(phi_psi)):
        psi_prev = phi_psi[i - 1][1]
        phi = phi_psi[i][0]
        n_prev, ca_prev, c_prev = atoms[-1]
        n = _place(n_prev, ca_prev, c_prev, _BOND["C-N"], _ANGLE["CA-C-N"], psi_prev)
        ca = _place(ca_prev, c_prev, n, _BOND["N-CA"], _ANGLE["C-N-CA"], 180.0)
        c = _place(c_prev, n, ca, _BOND["CA-C"], _ANGLE["N-CA-C"], phi)
        atoms.append([n, ca, c])
    out = []
    for i, (n, ca, c) in enumerate(atoms):
        psi = phi_psi[i][1]
        o = _place(n, ca, c, _BOND["C-O"], _ANGLE["CA-C-O"], psi + 180.0)
        out.append([n, ca, c, o])
    return np.array(out, dtype=np.float64)
