"""Frames and Φ: round trip, SE(3) equivariance, ideal geometry, O placement against real O."""

import math

import numpy as np
import pytest
import torch
from chains import HELIX, STRAND, ideal_chain
from equivariance import move, random_motion

from protgen.geometry import so3
from protgen.geometry.backbone import backbone_to_frames, dihedral, frames_to_backbone
from protgen.geometry.rigid import Rigid


def _random_frames(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Rigid(
        so3.uniform(shape, torch.float64, generator=g),
        10 * torch.randn(*shape, 3, generator=g, dtype=torch.float64),
    )


def _angle(a, b, c):
    u, w = a - b, c - b
    return torch.rad2deg(torch.acos((u * w).sum(-1) / u.norm(dim=-1) / w.norm(dim=-1)))


def test_frames_of_phi_are_the_frames():
    f = _random_frames((3, 40))
    g = backbone_to_frames(frames_to_backbone(f))
    assert torch.allclose(g.rots, f.rots, atol=1e-12) and torch.allclose(
        g.trans, f.trans, atol=1e-12
    )


def test_phi_is_se3_equivariant():
    f = _random_frames((2, 30), seed=1)
    motion = random_motion(2)
    assert torch.allclose(
        frames_to_backbone(move(f, motion)), motion.apply(frames_to_backbone(f)), atol=1e-10
    )


def test_ideal_bond_lengths_and_angles_including_the_carbonyl():
    atoms = torch.from_numpy(ideal_chain(HELIX, 20))
    x = frames_to_backbone(backbone_to_frames(atoms))
    n, ca, c, o = x.unbind(-2)
    assert torch.allclose(
        (ca - n).norm(dim=-1), torch.tensor(1.459, dtype=torch.float64), atol=2e-3
    )
    assert torch.allclose(
        (c - ca).norm(dim=-1), torch.tensor(1.526, dtype=torch.float64), atol=1e-3
    )
    assert torch.allclose((o - c).norm(dim=-1), torch.tensor(1.231, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(_angle(ca, c, o), torch.tensor(120.5, dtype=torch.float64), atol=1e-6)
    # O lies in the peptide plane CA(i), C(i), N(i+1), trans to N(i+1).
    torsion = dihedral(ca[:-1], n[1:], c[:-1], o[:-1])
    assert torch.allclose(torsion.abs(), torch.tensor(math.pi, dtype=torch.float64), atol=1e-6)


def test_terminal_oxygen_follows_psi():
    f = _random_frames((5,), seed=3)
    for psi in (-1.0, 2.0):
        x = frames_to_backbone(f, mask=torch.tensor([True, True, False, True, True]), psi_last=psi)
        # Residue 1 is followed by padding and residue 4 is last: O from ψ, so N–CA–C–O = ψ + π.
        for i in (1, 4):
            got = dihedral(x[i, 0], x[i, 1], x[i, 2], x[i, 3])
            assert math.isclose(
                math.remainder(got.item() - psi - math.pi, 2 * math.pi), 0.0, abs_tol=1e-9
            )
        assert (x[2] == 0).all()


@pytest.mark.parametrize("phi_psi", [HELIX, STRAND])
def test_oxygen_matches_an_ideal_chain_built_independently(phi_psi):
    atoms = torch.from_numpy(ideal_chain(phi_psi, 12))
    x = frames_to_backbone(backbone_to_frames(atoms))
    assert (x[:-1, 3] - atoms[:-1, 3]).norm(dim=-1).max() < 0.03


def test_oxygen_from_next_n_matches_real_structures(shared_pdb):
    from protgen.data.structure import read_structure

    errors = []
    for path in sorted(shared_pdb.glob("proteinmpnn_inputs/*"))[:3] + sorted(
        shared_pdb.glob("biotite_tests/1l2y*")
    ):
        for chain in read_structure(path).chains:
            ok = chain.atom_mask.all(-1)
            pair = ok[:-1] & ok[1:]
            a = torch.from_numpy(chain.atoms).double()
            x = frames_to_backbone(backbone_to_frames(a))
            from protgen.geometry.backbone import place_oxygen

            o = place_oxygen(a[:-1, 1], a[:-1, 2], a[1:, 0])
            errors.append((o - a[:-1, 3]).norm(dim=-1)[torch.from_numpy(pair)].numpy())
            assert x.shape == a.shape
    errors = np.concatenate(errors)
    assert len(errors) > 200
    assert np.median(errors) < 0.1


def test_each_chain_of_a_multi_chain_state_ends_with_its_own_terminal_oxygen():
    """Bug: "has a next residue" was read from the mask alone, so the last residue of chain A
    placed its O toward chain B's first N. Two chains numbered with a jump (as a contig's /0 makes
    them) give the atoms of each chain built alone."""
    a, b = _random_frames((1, 6), seed=4), _random_frames((1, 5), seed=5)
    joined = Rigid.cat([a, b], 1)
    index = torch.cat([torch.arange(6), 200 + torch.arange(5)])[None]
    atoms = frames_to_backbone(joined, index=index)
    alone = torch.cat([frames_to_backbone(a), frames_to_backbone(b)], 1)
    assert torch.allclose(atoms, alone, atol=1e-12)
    # without the numbering the O of residue 5 would point at chain B
    assert not torch.allclose(frames_to_backbone(joined)[0, 5, 3], alone[0, 5, 3], atol=0.1)


def test_oxygen_placed_from_n_ca_c_is_the_chains_own_and_phi_s_at_a_break():
    """add_oxygen rebuilds every O of an ideal chain from its N, CA, C (inner residues exactly;
    the last from ψ = 135°, as Φ does), and after a broken peptide uses the terminal rule."""
    from protgen.geometry.backbone import add_oxygen

    atoms = torch.tensor(ideal_chain([HELIX] * 10 + [STRAND] * 10))
    placed = add_oxygen(atoms[:, :3])
    assert torch.allclose(placed[:-1], atoms[:-1], atol=1e-9)
    # Φ's residue is ideal (CA–C 1.526 Å against the chain's 1.525): equal to a few mÅ
    last = frames_to_backbone(backbone_to_frames(atoms))[-1, 3]
    assert torch.allclose(placed[-1, 3], last, atol=5e-3)
    moved = atoms.clone()
    moved[10:] += torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64)  # a break after residue 9
    placed = add_oxygen(moved[:, :3])
    terminal = frames_to_backbone(backbone_to_frames(moved[:10]))[-1, 3]
    assert torch.allclose(placed[9, 3], terminal, atol=5e-3)
    assert abs((placed[9, 3] - placed[9, 2]).norm().item() - 1.231) < 1e-9
