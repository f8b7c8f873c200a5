"""Backbone atoms ↔ residue frames: Gram–Schmidt frames and the map Φ with a correct carbonyl O.

Atom order everywhere is (N, CA, C, O) on the second-to-last axis: atoms are (..., L, 4, 3) in Å.
A residue mask (..., L) marks real residues; padded ones are ignored and produce zeros.
"""

import math

import torch

from protgen.geometry.rigid import Rigid

__all__ = [
    "IDEAL_N",
    "IDEAL_C",
    "C_O_BOND",
    "CA_C_O_ANGLE",
    "C_N_BOND",
    "CA_C_N_ANGLE",
    "TERMINAL_PSI",
    "CA_CA_RANGE",
    "in_ca_ca_range",
    "backbone_to_frames",
    "frames_to_backbone",
    "place_oxygen",
    "add_oxygen",
    "dihedral",
]

# AlphaFold's ideal residue in its own frame (Å).
IDEAL_N = (-0.525, 1.363, 0.0)
IDEAL_C = (1.526, 0.0, 0.0)
# Peptide geometry (Engh & Huber): C=O bond, CA–C=O angle, C–N(next) bond, CA–C–N(next) angle.
C_O_BOND = 1.231
CA_C_O_ANGLE = math.radians(120.5)
C_N_BOND = 1.329
CA_C_N_ANGLE = math.radians(116.2)
# ψ used for the O of the last residue (no next N): the β-region value, 135°.
TERMINAL_PSI = math.radians(135.0)
# CA–CA(next) of a well-formed trans peptide, Å (cis ones are ~2.9 Å and rare).
CA_CA_RANGE = (3.65, 3.95)


def in_ca_ca_range(ca_ca):
    """Which CA–CA(next) distances (Å; a numpy array or tensor of any shape) lie strictly inside
    CA_CA_RANGE: a boolean array of the same shape."""
    return (ca_ca > CA_CA_RANGE[0]) & (ca_ca < CA_CA_RANGE[1])


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def backbone_to_frames(atoms: torch.Tensor) -> Rigid:
    """Residue frames by Gram–Schmidt: origin CA, e1 ∥ C − CA, e2 in the N–CA–C plane toward N.

    atoms: Å, (..., L, ≥3, 3) with N, CA, C first → Rigid of shape (..., L).
    """
    n, ca, c = atoms[..., 0, :], atoms[..., 1, :], atoms[..., 2, :]
    e1 = _unit(c - ca)
    u = n - ca
    e2 = _unit(u - (u * e1).sum(-1, keepdim=True) * e1)
    e3 = torch.cross(e1, e2, dim=-1)
    return Rigid(torch.stack([e1, e2, e3], -1), ca)


def dihedral(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Dihedral angle a–b–c–d in rad, (−π, π]. Each input: (..., 3)."""
    b0, b1, b2 = a - b, c - b, d - c
    b1u = _unit(b1)
    v = b0 - (b0 * b1u).sum(-1, keepdim=True) * b1u
    w = b2 - (b2 * b1u).sum(-1, keepdim=True) * b1u
    x = (v * w).sum(-1)
    y = (torch.cross(b1u, v, dim=-1) * w).sum(-1)
    return torch.atan2(y, x)


def _next_n_from_psi(frames: Rigid, psi: torch.Tensor) -> torch.Tensor:
    """Position of N(i+1) from ψ_i with ideal C–N and CA–C–N, in world coordinates. psi:
    (..., L)."""
    dtype, device = frames.trans.dtype, frames.trans.device
    n = torch.tensor(IDEAL_N, dtype=dtype, device=device)
    c = torch.tensor(IDEAL_C, dtype=dtype, device=device)
    # In the local frame, C lies on e1 and N in the e1–e2 plane; the dihedral N–CA–C–N(next) is ψ.
    # Build N(next) in a frame at C: axis along CA→C (e1), the N side (+e2) as the ψ = 0 reference.
    ang = math.pi - CA_C_N_ANGLE
    along = C_N_BOND * math.cos(ang)
    radial = C_N_BOND * math.sin(ang)
    psi = psi.to(dtype)
    sign_e2 = torch.sign(n[1])
    local = torch.stack(
        [
            c[0] + along * torch.ones_like(psi),
            sign_e2 * radial * torch.cos(psi),
            sign_e2 * radial * torch.sin(psi),
        ],
        -1,
    )
    return frames.apply(local)


def place_oxygen(ca: torch.Tensor, c: torch.Tensor, n_next: torch.Tensor) -> torch.Tensor:
    """Carbonyl O in the plane CA(i), C(i), N(i+1), opposite N(i+1), with C=O and CA–C=O ideal.

    ca, c, n_next: Å, (..., 3) → Å, (..., 3).
    """
    e_a = _unit(ca - c)
    e_n = n_next - c
    away = -_unit(e_n - (e_n * e_a).sum(-1, keepdim=True) * e_a)
    direction = math.cos(CA_C_O_ANGLE) * e_a + math.sin(CA_C_O_ANGLE) * away
    return c + C_O_BOND * direction


def frames_to_backbone(
    frames: Rigid,
    mask: torch.Tensor | None = None,
    psi_last: torch.Tensor | float | None = None,
    index: torch.Tensor | None = None,
) -> torch.Tensor:
    """Φ: residue frames → backbone atoms (N, CA, C, O) with ideal geometry.

    N, CA, C are the ideal residue placed by each frame. O(i) is placed from N(i+1) of the next
    residue of its chain; for a chain's last residue — followed by padding, or by a residue whose
    number is not the next (a chain break, e.g. ``/0`` of a contig) — from ψ = psi_last (default
    :data:`TERMINAL_PSI`). frames: Rigid (..., L); mask: (..., L) bool; index: (..., L) int
    residue numbers (None: consecutive) → Å, (..., L, 4, 3). Padded residues come out as zeros.
    """
    dtype, device = frames.trans.dtype, frames.trans.device
    shape = frames.shape
    if mask is None:
        mask = torch.ones(shape, dtype=torch.bool, device=device)
    n = frames.apply(torch.tensor(IDEAL_N, dtype=dtype, device=device))
    ca = frames.trans
    c = frames.apply(torch.tensor(IDEAL_C, dtype=dtype, device=device))
    psi = torch.as_tensor(
        TERMINAL_PSI if psi_last is None else psi_last, dtype=dtype, device=device
    )
    n_terminal = _next_n_from_psi(frames, psi.expand(shape))
    has_next = torch.zeros_like(mask)
    has_next[..., :-1] = mask[..., :-1] & mask[..., 1:]
    if index is not None:
        has_next[..., :-1] &= index[..., 1:] == index[..., :-1] + 1
    n_next = torch.zeros_like(n)
    n_next[..., :-1, :] = n[..., 1:, :]
    n_next = torch.where(has_next[..., None], n_next, n_terminal)
    o = place_oxygen(ca, c, n_next)
    atoms = torch.stack([n, ca, c, o], -2)
    return atoms * mask[..., None, None].to(dtype)


def add_oxygen(atoms: torch.Tensor, max_c_n: float = 2.0) -> torch.Tensor:
    """Backbone atoms with every carbonyl O placed from N, CA and C, as Φ places it: O(i) from
    N(i+1) where that N is bonded to C(i) (C–N ≤ max_c_n Å), else from ψ = TERMINAL_PSI.

    atoms: Å, (..., L, ≥3, 3) with N, CA, C first → Å, (..., L, 4, 3).
    """
    n, ca, c = atoms[..., 0, :], atoms[..., 1, :], atoms[..., 2, :]
    frames = backbone_to_frames(atoms)
    psi = torch.full(frames.shape, TERMINAL_PSI, dtype=atoms.dtype, device=atoms.device)
    n_next = _next_n_from_psi(frames, psi)
    bonded = (n[..., 1:, :] - c[..., :-1, :]).norm(dim=-1) <= max_c_n
    n_next[..., :-1, :] = torch.where(bonded[..., None], n[..., 1:, :], n_next[..., :-1, :])
    return torch.stack([n, ca, c, place_oxygen(ca, c, n_next)], -2)
