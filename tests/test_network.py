"""The network: SE(3) equivariance in float64, padding invariance, batch permutation, cost by
design."""

import pytest
import torch
from equivariance import assert_network_equivariant, move, random_motion

from protgen.geometry import so3
from protgen.geometry.rigid import Rigid
from protgen.geometry.world import WorldState
from protgen.network.config import PRESET_PARAMETERS, PRESETS
from protgen.network.frame_network import FrameNetwork


def _net(preset="tiny", seed=0):
    torch.manual_seed(seed)
    net = FrameNetwork(PRESETS[preset]).double()
    with torch.no_grad():  # zero-initialised heads would make some checks trivially true
        for block in net.blocks:
            block.update.weight.normal_(0, 0.1)
        net.rot_residual.weight.normal_(0, 0.1)
    return net


def _inputs(b, n, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = Rigid(
        so3.uniform((b, n), torch.float64, generator=g),
        8 * torch.randn(b, n, 3, generator=g, dtype=torch.float64),
    )
    t = torch.rand(b, generator=g, dtype=torch.float64)
    sc = 8 * torch.randn(b, n, 3, generator=g, dtype=torch.float64)
    return x, t, sc


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_outputs_are_invariant_and_x1_hat_equivariant_under_global_motions(preset):
    net = _net(preset)
    x, t, sc = _inputs(2, 17)
    mask = torch.ones(2, 17, dtype=torch.bool)
    mask[1, 12:] = False
    out = net(t, WorldState.of(x, mask), sc)
    for seed in range(3):
        motion = random_motion(10 + seed)
        o = net(t, WorldState.of(move(x, motion), mask), motion.apply(sc))
        assert_network_equivariant(out, o, motion, mask)


def test_padding_does_not_change_real_outputs():
    net = _net()
    x, t, sc = _inputs(1, 10)
    alone = net(t, WorldState.of(x), sc)
    g = torch.Generator().manual_seed(5)
    junk = Rigid(
        so3.uniform((1, 6), torch.float64, generator=g),
        50 * torch.randn(1, 6, 3, generator=g, dtype=torch.float64),
    )
    padded = Rigid.cat([x, junk], 1)
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[:, :10] = True
    out = net(
        t,
        WorldState.of(padded, mask),
        torch.cat([sc, torch.randn(1, 6, 3, dtype=torch.float64)], 1),
    )
    assert torch.allclose(out.rotvec[:, :10], alone.rotvec, atol=1e-10)
    assert torch.allclose(out.trans[:, :10], alone.trans, atol=1e-9)
    assert (out.rotvec[:, 10:] == 0).all() and (out.trans[:, 10:] == 0).all()


def test_permuting_batch_items_permutes_outputs():
    net = _net()
    x, t, sc = _inputs(4, 9)
    mask = torch.ones(4, 9, dtype=torch.bool)
    mask[2, 5:] = False
    perm = torch.tensor([2, 0, 3, 1])
    a = net(t, WorldState.of(x, mask), sc)
    b = net(t[perm], WorldState.of(x[perm], mask[perm]), sc[perm])
    assert torch.allclose(a.rotvec[perm], b.rotvec, atol=1e-10) and torch.allclose(
        a.trans[perm], b.trans, atol=1e-9
    )


def test_small_preset_costs_at_most_one_gflop_at_length_100():
    from torch.utils.flop_counter import FlopCounterMode

    net = FrameNetwork(PRESETS["small"])
    x = Rigid(so3.uniform((1, 100)), 10 * torch.randn(1, 100, 3))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.tensor([0.5]), WorldState.of(x), torch.randn(1, 100, 3))
    assert counter.get_total_flops() <= 1e9
    assert 15e6 <= FrameNetwork(PRESETS["base"]).parameter_count() <= 20e6  # FrameFlow scale


def test_preset_parameter_counts_in_help_are_true():
    with torch.device("meta"):
        assert {
            name: FrameNetwork(c).parameter_count() for name, c in PRESETS.items()
        } == PRESET_PARAMETERS


def test_interior_residues_look_the_same_at_every_length():
    """The "ends" position feature depends only on the clipped distances to the chain ends, so a
    network trained on crops never meets an unseen position at a longer length."""
    net = _net("tiny")
    short, long_ = WorldState.of(*_inputs(1, 80)[:1]), WorldState.of(*_inputs(1, 300)[:1])
    a, b = net._position(short, torch.float64), net._position(long_, torch.float64)
    assert (
        torch.equal(a[0, 40], b[0, 150])
        and torch.equal(a[0, 3], b[0, 3])
        and torch.equal(a[0, -2], b[0, -2])
    )
    assert not torch.equal(a[0, 3], a[0, 40])


def test_sparse_pairs_with_every_neighbour_equal_the_dense_network():
    from dataclasses import replace

    dense = _net("tiny")
    sparse = FrameNetwork(replace(PRESETS["tiny"], neighbours=64)).double()
    sparse.load_state_dict(dense.state_dict())
    x, t, sc = _inputs(2, 17)
    mask = torch.ones(2, 17, dtype=torch.bool)
    mask[1, 12:] = False
    a, b = dense(t, WorldState.of(x, mask), sc), sparse(t, WorldState.of(x, mask), sc)
    assert torch.allclose(a.rotvec[mask], b.rotvec[mask], atol=1e-10) and torch.allclose(
        a.trans[mask], b.trans[mask], atol=1e-9
    )


def test_sparse_network_is_equivariant_and_ignores_padding():
    from dataclasses import replace

    torch.manual_seed(0)
    net = FrameNetwork(replace(PRESETS["tiny"], neighbours=6)).double()
    with torch.no_grad():
        for block in net.blocks:
            block.update.weight.normal_(0, 0.1)
    x, t, sc = _inputs(1, 20)
    out = net(t, WorldState.of(x), sc)
    motion = random_motion(3)
    o = net(t, WorldState.of(move(x, motion)), motion.apply(sc))
    assert_network_equivariant(out, o, motion, torch.ones(1, 20, dtype=torch.bool))
    # padding placed on top of real residues
    junk = Rigid(so3.uniform((1, 5), torch.float64), torch.zeros(1, 5, 3, dtype=torch.float64))
    mask = torch.zeros(1, 25, dtype=torch.bool)
    mask[:, :20] = True
    padded = net(
        t,
        WorldState.of(Rigid.cat([x, junk], 1), mask),
        torch.cat([sc, torch.zeros(1, 5, 3, dtype=torch.float64)], 1),
    )
    assert torch.allclose(padded.rotvec[:, :20], out.rotvec, atol=1e-10)
    assert torch.allclose(padded.trans[:, :20], out.trans, atol=1e-9)
    assert torch.allclose(padded.x1_hat.trans[:, :20], out.x1_hat.trans, atol=1e-9)


@pytest.mark.parametrize("neighbours", [0, 6])
def test_self_conditioning_on_x1_hat_frames_is_equivariant_and_starts_as_the_model_without_it(
    neighbours,
):
    """x̂_1's relative rotations and directions enter as invariants: moving x_t and x̂_1 together
    moves x̂_1's prediction with them. Their read-in starts at zero, so a fine-tune from a model
    without them starts equal to it; with weights, the frames change the output."""
    from dataclasses import replace

    plain = _net()
    config = replace(PRESETS["tiny"], self_condition_frames=True, neighbours=neighbours)
    net = FrameNetwork(config).double()
    missing, unexpected = net.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["pairs.frames_linear.weight"] and not unexpected
    x, t, ca = _inputs(2, 17)
    g = torch.Generator().manual_seed(4)
    sc = Rigid(so3.uniform((2, 17), torch.float64, generator=g), ca)
    mask = torch.ones(2, 17, dtype=torch.bool)
    mask[1, 12:] = False
    reference = FrameNetwork(replace(PRESETS["tiny"], neighbours=neighbours)).double()
    reference.load_state_dict(plain.state_dict())
    assert torch.allclose(
        net(t, WorldState.of(x, mask), sc).rotvec,
        reference(t, WorldState.of(x, mask), ca).rotvec,
        atol=1e-12,
    )
    with torch.no_grad():
        net.pairs.frames_linear.weight.normal_(0, 1.0)
    out = net(t, WorldState.of(x, mask), sc)
    assert not torch.allclose(out.rotvec, net(t, WorldState.of(x, mask), ca).rotvec, atol=1e-6), (
        "the frames are read"
    )
    motion = random_motion(5)
    o = net(t, WorldState.of(move(x, motion), mask), move(sc, motion))
    assert_network_equivariant(out, o, motion, mask)
    # every residue a neighbour: the sparse path computes the same frame features
    if neighbours == 0:
        full = FrameNetwork(replace(config, neighbours=64)).double()
        full.load_state_dict(net.state_dict())
        assert torch.allclose(
            full(t, WorldState.of(x, mask), sc).rotvec[mask], out.rotvec[mask], atol=1e-10
        )


def test_sparse_neighbours_hold_the_chain_window_first_then_the_nearest_in_space():
    """Early in the path x_t is mostly noise: the residues next along the chain are neighbours
    wherever they lie; the rest of the K are the nearest in space; padding never is one."""
    from protgen.network.neighbours import Neighbours

    g = torch.Generator().manual_seed(0)
    ca = 30 * torch.randn(1, 40, 3, generator=g, dtype=torch.float64)
    mask = torch.ones(1, 40, dtype=torch.bool)
    mask[0, 35:] = False
    index = torch.arange(40)[None]
    nbr = Neighbours.nearest(ca, mask, 8, index, window=2)
    dist = torch.cdist(ca, ca)
    for i in range(35):
        chosen = set(nbr.index[0, i][nbr.mask[0, i]].tolist())
        window = {j for j in range(i - 2, i + 3) if 0 <= j < 35}
        rest = [j for j in dist[0, i].argsort().tolist() if j < 35 and j not in window][
            : 8 - len(window)
        ]
        assert chosen == window | set(rest), i
    assert not nbr.mask[0, 35:].any() and (nbr.index[0, :35][nbr.mask[0, :35]] < 35).all()
    # fewer than the window: nearest along the chain first
    few = Neighbours.nearest(ca, mask, 3, index, window=2)
    assert set(few.index[0, 10].tolist()) == {9, 10, 11}


@pytest.mark.parametrize("slab_rows", [1, 3, 17])
def test_inference_by_slabs_computes_what_the_whole_pair_tensors_do(monkeypatch, slab_rows):
    """Without autograd on the CPU the dense pair track runs a slab of rows at a time: the same
    outputs as whole tensors (autograd on), with padding, x̂_1 frames read in and slabs that do not
    divide the length."""
    from dataclasses import replace

    from protgen.network import block, pairs

    torch.manual_seed(0)
    net = FrameNetwork(replace(PRESETS["tiny"], self_condition_frames=True)).double()
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.1 * torch.randn_like(param))  # the zero-initialised heads and read-in too
    x, t, _ = _inputs(2, 17)
    sc, _, _ = _inputs(2, 17, seed=2)
    mask = torch.ones(2, 17, dtype=torch.bool)
    mask[1, 12:] = False
    state = WorldState.of(x, mask)
    whole = net(t, state, sc)
    monkeypatch.setattr(pairs, "SLAB_FLOATS", slab_rows * 17 * net.config.pair_dim)
    calls, slabs = [], pairs.slabs
    for module in (pairs, block):  # the features' slabs and the blocks' pair updates'
        monkeypatch.setattr(module, "slabs", lambda *a: calls.append(a) or slabs(*a))
    with torch.no_grad():
        sliced = net(t, state, sc)
    # the features and every block but the last (no pair update there)
    assert len(calls) == net.config.blocks
    for a, b in [
        (whole.rotvec, sliced.rotvec),
        (whole.trans, sliced.trans),
        (whole.x1_hat.trans, sliced.x1_hat.trans),
    ]:
        assert torch.allclose(a, b, atol=1e-10)
    step = slab_rows * torch.get_num_threads()  # SLAB_FLOATS is per thread
    assert slabs(2, 17, 17 * net.config.pair_dim) == [
        (k, slice(s, min(17, s + step))) for k in (0, 1) for s in range(0, 17, step)
    ]
