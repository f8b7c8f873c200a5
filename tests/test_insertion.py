"""Process 3 (insertion): flow targets by finite differences, insertion targets by exact
expectations, the structured-order bias the Rao–Blackwellised form avoids, a toy of variable-length
chains whose oracle and learned generators reproduce the length law (with a negative control that
must fail), the gap head's invariance, the jump step, and sampling of emerging lengths end to
end."""

import math

import numpy as np
import pytest
import torch

from protgen.geometry import so3
from protgen.geometry.rigid import Rigid
from protgen.geometry.world import WorldState
from protgen.method.generator import FrameVelocity, Prediction
from protgen.method.insertion import InsertionProcess, gap_counts
from protgen.method.loss import LossConfig, generator_matching_loss
from protgen.method.process import ProcessConfig

CONFIG = ProcessConfig(name="insertion")


def _data(b=2, n=24, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return WorldState.of(
        Rigid(
            so3.uniform((b, n), dtype, generator=g),
            10 * torch.randn(b, n, 3, generator=g, dtype=dtype),
        )
    )


def test_flow_targets_are_finite_differences_of_the_visible_residues():
    process = InsertionProcess(CONFIG)
    x_1 = _data()
    t = torch.tensor([0.35, 0.6], dtype=torch.float64)
    path = process.sample_path(x_1, t, torch.Generator().manual_seed(1))
    y = path.y_t
    eps = 1e-6
    a, b = process._at(x_1, y.tau, y.birth, t - eps), process._at(x_1, y.tau, y.birth, t + eps)
    steady = a.visible & b.visible  # no residue born inside the difference window
    assert torch.equal(steady, y.visible)
    omega = so3.log(a.frames.rots.transpose(-1, -2) @ b.frames.rots) / (2 * eps)
    v = (b.frames.trans - a.frames.trans) / (2 * eps)
    target = process.target(path)
    for k in range(2):
        n = int(y.visible[k].sum())
        assert torch.allclose(target.omega[k, :n], omega[k][y.visible[k]], atol=1e-6)
        assert torch.allclose(target.v[k, :n], v[k][y.visible[k]], atol=1e-5)
    world = process.phi(y)
    assert torch.equal(
        world.index[0, : int(y.visible[0].sum())], torch.arange(int(y.visible[0].sum()))
    ), "visible residues renumbered"


def test_insertion_targets_have_the_schedules_exact_expectations():
    """Seed + i.i.d. times with κ(t) = t/0.8: E[visible] = 1 + (N − 1)κ(t), the counts sum to
    the hidden residues, and the residues born in (t, t + dt] are h(t)·dt·E[hidden] on average."""
    process = InsertionProcess(CONFIG)
    n, draws, t, dt = 40, 4000, 0.4, 0.01
    x_1 = _data(b=draws, n=n, dtype=torch.float32)
    rng = torch.Generator().manual_seed(3)
    path = process.sample_path(x_1, torch.full((draws,), t), rng)
    visible = path.y_t.visible
    counts = process.target(path).gap_counts
    kappa = t / CONFIG.insertion_end
    mean, sd = (
        visible.sum(-1).double().mean().item(),
        math.sqrt((n - 1) * kappa * (1 - kappa) / draws),
    )
    assert abs(mean - (1 + (n - 1) * kappa)) < 4 * sd
    assert torch.equal(counts.sum(-1).round(), (n - visible.sum(-1)).to(counts.dtype))
    born = ((path.y_t.tau > t) & (path.y_t.tau <= t + dt)).sum().item() / draws
    hazard = 1 / (CONFIG.insertion_end - t)  # h(t) = κ'/(1 − κ) = 1/(T − t)
    expected = hazard * dt * (n - visible.sum(-1)).double().mean().item()
    assert abs(born - expected) < 0.1 * expected + 4 * math.sqrt(expected / draws)


def test_per_residue_hazards_make_the_single_hazard_count_target_biased():
    """A structured reveal order — residues 0..9 revealed at hazard 3, the others at hazard 0.5 —
    inserts Σ h_i residues per unit time in a gap; h̄·count (Flowception's form with one hazard)
    misses it, the Rao–Blackwellised sum of hazards does not."""
    visible = torch.zeros(1, 20, dtype=torch.bool)
    visible[0, [0, 5, 19]] = True
    real = torch.ones(1, 20, dtype=torch.bool)
    hazards = torch.where(torch.arange(20) < 10, 3.0, 0.5)[None].double()
    exact = gap_counts(visible, real, hazards)[0]  # gap 1 holds residues 1..4, gap 2 residues 6..18
    assert exact[1].item() == pytest.approx(4 * 3.0) and exact[2].item() == pytest.approx(
        4 * 3.0 + 9 * 0.5
    )
    single = hazards.mean().item() * gap_counts(visible, real)[0]
    assert single[1].item() == pytest.approx(7.0) and single[2].item() == pytest.approx(22.75), (
        "biased in both gaps"
    )


# ---- a toy of variable-length chains: only the counts matter ----------------------------------

LENGTHS = torch.arange(2, 8)
WEIGHTS = torch.tensor([1, 3, 4, 3, 2, 1], dtype=torch.float64) / 14


def _posterior_hidden_per_gap(t: torch.Tensor, n: torch.Tensor, weights=WEIGHTS) -> torch.Tensor:
    """E[N − n | n visible at t] / (n + 1): the visible set is a uniform subset (seed uniform, the
    rest i.i.d. with κ(t)), so every gap holds the same expected share. t, n: (B,)."""
    kappa = float((t[0] / CONFIG.insertion_end).clamp(max=1.0))  # one time per call
    table = {}
    for m in n.unique().tolist():
        like = torch.tensor(
            [
                math.comb(int(big) - 1, int(m) - 1) * kappa ** (m - 1) * (1 - kappa) ** (big - m)
                if big >= m
                else 0.0
                for big in LENGTHS.tolist()
            ],
            dtype=torch.float64,
        )
        post = weights * like
        table[m] = (
            float((post * (LENGTHS - m)).sum() / post.sum()) / (m + 1) if post.sum() > 0 else 0.0
        )
    return torch.tensor([table[m] for m in n.tolist()], dtype=torch.float64)


class CountModel(torch.nn.Module):
    """Predicts the hidden residues per gap from (t, n) alone; the same for every gap."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(18, 64),
            torch.nn.SiLU(),
            torch.nn.Linear(64, 64),
            torch.nn.SiLU(),
            torch.nn.Linear(64, 1),
        ).double()

    def per_gap(self, t, n):
        """t, n: (B,) → (B,); the count n enters one-hot (1..16), the time also as
        −log(1 − κ(t))."""
        onehot = torch.nn.functional.one_hot(n.long().clamp(1, 16) - 1, 16).double()
        u = -torch.log1p(-(t / CONFIG.insertion_end).clamp(max=0.999))
        return torch.nn.functional.softplus(
            self.net(torch.cat([t[:, None], u[:, None], onehot], -1))
        )[:, 0]

    def forward(self, t, x_t: WorldState) -> Prediction:
        n = x_t.mask.sum(-1).double()
        counts = self.per_gap(t, n)[:, None].expand(-1, x_t.mask.shape[1] + 1)
        zero = torch.zeros(*x_t.mask.shape, 3, dtype=torch.float64)
        return Prediction(FrameVelocity(zero, zero, counts))


def _toy_batch(size, g):
    k = torch.multinomial(WEIGHTS, size, replacement=True, generator=g)
    lengths = LENGTHS[k]
    mask = torch.arange(int(LENGTHS.max()))[None] < lengths[:, None]
    return WorldState.of(
        Rigid(
            torch.eye(3, dtype=torch.float64).expand(size, int(LENGTHS.max()), 3, 3),
            torch.zeros(size, int(LENGTHS.max()), 3, dtype=torch.float64),
        ),
        mask,
    )


def _simulate_lengths(per_gap, count, g, steps=4000):
    """The sampler's insertion step (Poisson draws of p·count per gap, p the step's exact insertion
    probability) from the one-residue prior at t = 0, vectorised over chains (the same rule as
    InsertionProcess.insert, which the end-to-end test below runs). Tau-leaping is first-order in
    the step, hence the many steps."""
    n = torch.ones(count, dtype=torch.float64)
    process = InsertionProcess(CONFIG)
    for s in range(steps):
        t = s / steps
        rate = process.step_probability(t, 1 / steps) * per_gap(torch.full_like(n, t), n) * (n + 1)
        n = n + torch.poisson(rate, generator=g)
    return n.numpy()


def _chi2(a, b) -> float:
    """Two-sample χ² statistic of two samples of lengths over the bins 2..7 and 'other'."""
    bins = LENGTHS.tolist()
    table = np.array(
        [[(x == m).sum() for m in bins] + [np.isin(x, bins, invert=True).sum()] for x in (a, b)],
        dtype=float,
    )
    table = table[:, table.sum(0) > 0]
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    return float(((table - expected) ** 2 / expected).sum())


CRITICAL = 22.46  # χ² with 6 degrees of freedom (bins 2..7 and "other") at α = 0.001
SAMPLES = 1500


def test_the_length_law_of_a_toy_is_reproduced_by_the_oracle_and_the_learned_generator():
    """Two-sample χ² (n = m = 1,500, α = 0.001) of simulated lengths against data lengths. The
    negative control — insertion rates 25 % too low — gives a statistic of ~180 at this n (power
    ≈ 1); the learned generator, trained with protgen's Poisson loss, must pass like the oracle."""
    g = torch.Generator().manual_seed(0)
    data = LENGTHS[torch.multinomial(WEIGHTS, SAMPLES, replacement=True, generator=g)].numpy()
    oracle = _simulate_lengths(_posterior_hidden_per_gap, SAMPLES, g)
    assert _chi2(oracle, data) < CRITICAL
    wrong = _simulate_lengths(lambda t, n: 0.75 * _posterior_hidden_per_gap(t, n), SAMPLES, g)
    assert _chi2(wrong, data) > 3 * CRITICAL
    torch.manual_seed(0)
    model = CountModel()
    process = InsertionProcess(CONFIG)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 1500)
    for step in range(1500):
        loss = generator_matching_loss(
            process,
            model,
            _toy_batch(512, g),
            g,
            config=LossConfig(rot_weight=0.0, trans_weight=0.0),
        )
        opt.zero_grad()
        loss.total.backward()
        opt.step()
        schedule.step()
    with torch.no_grad():
        learned = _simulate_lengths(lambda t, n: model.per_gap(t, n), SAMPLES, g)
    assert _chi2(learned, data) < CRITICAL, np.bincount(learned.astype(int))


# ---- the network head, the jump step and sampling ---------------------------------------------


def test_gap_counts_are_invariant_and_ignore_padding():
    from dataclasses import replace

    from protgen.network.config import PRESETS
    from protgen.network.frame_network import FrameNetwork

    torch.manual_seed(0)
    net = FrameNetwork(replace(PRESETS["tiny"], insertion=True)).double()
    x = _data(1, 12, seed=4)
    t = torch.tensor([0.3], dtype=torch.float64)
    counts = net(t, x).gap_counts
    assert counts.shape == (1, 13) and (counts > 0).all()
    motion = Rigid(
        so3.uniform((), torch.float64), torch.tensor([4.0, 1.0, -3.0], dtype=torch.float64)
    )
    moved = x.with_frames(
        Rigid(motion.rots.expand_as(x.frames.rots), motion.trans.expand_as(x.frames.trans)).compose(
            x.frames
        )
    )
    assert torch.allclose(net(t, moved).gap_counts, counts, atol=1e-10)
    padded = WorldState.of(
        Rigid.cat([x.frames, _data(1, 3, seed=9).frames], 1), torch.arange(15)[None] < 12
    )
    out = net(t, padded).gap_counts
    assert torch.allclose(out[:, :13], counts, atol=1e-10) and (out[:, 13:] == 0).all()


def test_the_jump_step_places_new_residues_from_the_world_state():
    process = InsertionProcess(ProcessConfig(name="insertion", birth_sigma=0.0))
    x = WorldState.of(
        Rigid(torch.eye(3).expand(1, 2, 3, 3), torch.tensor([[[0.0, 0, 0], [10.0, 0, 0]]]))
    )
    counts = torch.tensor([[0.0, 1e6, 0.0]])  # only the middle gap has hidden residues
    grown = process.insert(x, counts, 0.5, 1e-3, [torch.Generator().manual_seed(0)])
    n = int(grown.mask.sum())
    assert (
        n > 3
        and torch.equal(grown.frames.trans[0, 0], x.frames.trans[0, 0])
        and torch.equal(grown.frames.trans[0, n - 1], x.frames.trans[0, 1])
    )
    xs = grown.frames.trans[0, :n, 0]
    assert (xs[1:] > xs[:-1]).all(), "new residues evenly between their neighbours, in order"
    assert process.insert(x, counts, 0.9, 1e-3, [torch.Generator()]) is x, (
        "no insertions after the insertion end"
    )
    birth = grown.birth[0, :n]
    assert birth[0] == 0 and birth[-1] == 0 and torch.allclose(birth[1:-1], torch.tensor(0.501)), (
        "the residues of the start at 0, new ones at t + dt"
    )
    again = process.insert(
        grown,
        counts[:, :1].expand(1, n + 1).contiguous(),
        0.6,
        1e-3,
        [torch.Generator().manual_seed(1)],
    )
    assert torch.equal(
        again.birth[0, : int(again.mask.sum())][again.birth[0, : int(again.mask.sum())] < 0.55],
        birth,
    ), "earlier births are kept"


def test_a_late_residue_runs_the_rotation_schedule_on_its_own_clock():
    """Rotations toward a fixed x̂_1 under the schedule close the fraction c·dt/(1 − τ) of the
    remaining geodesic per Euler step: from t = 0.5, a residue there from the start keeps
    (1 − c·dt)^K of its angle and one born at τ = 0.5 (1 − 2c·dt)^K — the seed's exp(−c) over its
    own lifetime, where a shared clock would leave it exp(−c/2). A step never passes x̂_1."""
    from protgen.method.simulation import SimulationConfig, simulate

    target = so3.uniform((1, 2), torch.float64, generator=torch.Generator().manual_seed(3))
    start = target @ so3.exp(
        torch.tensor([[[0.0, 0.0, 2.0], [0.0, 0.0, 2.0]]], dtype=torch.float64)
    )
    x_0 = WorldState(
        Rigid(start, torch.zeros(1, 2, 3, dtype=torch.float64)),
        torch.ones(1, 2, dtype=torch.bool),
        torch.arange(2)[None],
        birth=torch.tensor([[0.0, 0.5]], dtype=torch.float64),
    )

    def oracle(t, x_t):  # the exact velocity toward the fixed target rotations
        omega = so3.log(x_t.frames.rots.transpose(-1, -2) @ target) / (1 - t)[:, None, None]
        return FrameVelocity(omega, torch.zeros_like(omega))

    for steps, c in ((50, 5.0), (2, 5.0)):
        x, _ = simulate(oracle, x_0, 0.5, SimulationConfig(steps, rot_rate=c))
        angle = so3.log(x.frames.rots.transpose(-1, -2) @ target).norm(dim=-1)[0]
        dt = 0.5 / steps
        expected = (
            2.0
            * torch.tensor([max(1 - c * dt, 0.0), max(1 - 2 * c * dt, 0.0)], dtype=torch.float64)
            ** steps
        )
        assert torch.allclose(angle, expected, rtol=1e-6, atol=1e-9), (steps, angle, expected)


def test_an_insertion_model_trains_and_samples_lengths_within_bounds(tmp_path, capsys):
    import csv

    from fixtures import training_set

    from protgen.cli.main import main
    from protgen.data.structure import read_structure

    ts = training_set(tmp_path)
    main(
        [
            "train",
            "--data",
            str(ts.path),
            "--out",
            str(tmp_path / "run"),
            "--preset",
            "tiny",
            "--process",
            "insertion",
            "--steps",
            "4",
            "--batch-size",
            "2",
            "--crop-length",
            "40",
            "--warmup",
            "1",
            "--threads",
            "1",
        ]
    )
    main(
        [
            "sample",
            "--checkpoint",
            str(tmp_path / "run"),
            "--num",
            "3",
            "--steps",
            "20",
            "--min-length",
            "3",
            "--max-length",
            "400",
            "--out",
            str(tmp_path / "s"),
            "--threads",
            "1",
        ]
    )
    with open(tmp_path / "s" / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["file"] for r in rows] == ["ins_0000.pdb", "ins_0001.pdb", "ins_0002.pdb"]
    # an insertion model samples with the learned rotation rate by default
    assert all(r["rot_rate"] == "" for r in rows)
    for row in rows:
        assert 3 <= int(row["length"]) <= 400 and len(
            read_structure(tmp_path / "s" / row["file"]).chains[0]
        ) == int(row["length"])
    # Worker processes: the same samples as one process with the same batches, redraws included.
    bounds = sorted(int(r["length"]) for r in rows)
    bounded = [
        "--num",
        "3",
        "--steps",
        "20",
        "--min-length",
        str(bounds[0]),
        "--max-length",
        str(bounds[1]),
        "--batch-size",
        "1",
        "--threads",
        "1",
    ]
    main(
        ["sample", "--checkpoint", str(tmp_path / "run"), *bounded, "--out", str(tmp_path / "one")]
    )
    main(
        [
            "sample",
            "--checkpoint",
            str(tmp_path / "run"),
            *bounded,
            "--workers",
            "2",
            "--out",
            str(tmp_path / "two"),
        ]
    )
    for name in ("ins_0000.pdb", "ins_0001.pdb", "ins_0002.pdb"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    with open(tmp_path / "two" / "manifest.csv", newline="") as handle:
        assert all(bounds[0] <= int(r["length"]) <= bounds[1] for r in csv.DictReader(handle))
    for flags, message in (
        (["--length", "50"], "lets the length emerge"),
        (["--process", "frames"], "does not match"),
    ):
        with pytest.raises(SystemExit) as stop:
            main(
                [
                    "sample",
                    "--checkpoint",
                    str(tmp_path / "run"),
                    *flags,
                    "--out",
                    str(tmp_path / "x"),
                ]
            )
        assert stop.value.code == 1 and message in capsys.readouterr().err


def test_the_sampler_grows_chains_from_t_0_with_the_oracle_rates():
    """The real sampling path — simulate with InsertionProcess.insert as its jump step, from the
    process's start time — driven by the toy's exact expected counts, reproduces the mean length."""
    from protgen.method.simulation import SimulationConfig, simulate

    process = InsertionProcess(CONFIG)
    assert process.start_time == 0.0
    chains = 200
    x_0 = process.world_prior(
        WorldState.of(Rigid(torch.eye(3).expand(chains, 1, 3, 3), torch.zeros(chains, 1, 3))),
        torch.Generator().manual_seed(0),
    )

    def oracle(t, x_t):
        n = x_t.mask.sum(-1).double()
        counts = _posterior_hidden_per_gap(t.double(), n)[:, None].expand(-1, x_t.mask.shape[1] + 1)
        zero = torch.zeros(*x_t.mask.shape, 3)
        return FrameVelocity(zero, zero, counts.float())

    rngs = [torch.Generator().manual_seed(k) for k in range(chains)]
    x, _ = simulate(
        oracle,
        x_0,
        process.start_time,
        SimulationConfig(steps=400, rot_rate=None),
        jump=lambda x, c, t, dt: process.insert(x, c, t, dt, rngs),
    )
    lengths = x.mask.sum(-1).double()
    expected = float((WEIGHTS * LENGTHS).sum())
    assert abs(lengths.mean().item() - expected) < 4 * lengths.std().item() / chains**0.5 + 0.1


# ---- the first steps, the clocks and self-conditioning across insertions -----------------------


def test_training_times_cover_the_range_the_sampler_starts_in():
    """The sampler starts at t = 0: training draws times on [0, t_max] with 15 % of them (and
    18 % in all) in the first steps' [0, 0.05] (protgen 0.2 drew none below t_min = 0.01)."""
    from protgen.method.insertion import EARLY_TIMES

    process = InsertionProcess(CONFIG)
    t = process.sample_time(200_000, torch.Generator().manual_seed(0))
    assert process.start_time == 0.0 and t.min() >= 0.0 and t.max() <= CONFIG.t_max
    assert (t < 0.01).float().mean() > 0.03, "the first sampler step lies inside the training law"
    early = (t < EARLY_TIMES).float().mean().item()
    assert early == pytest.approx(0.15 + 0.4 * 0.05 / CONFIG.t_max + 0.45 * 0.0129, abs=0.005)


def test_a_late_share_puts_that_share_of_times_after_the_last_birth_and_keeps_the_rest():
    """late_share s draws s of the times uniformly on [insertion_end, t_max] and scales the other
    components by 1 − s: P(t > T) = s + (1 − s)·0.4·(t_max − T)/t_max (the clock and early
    components never pass T) and the early share is (1 − s) times its old value; s = 0 is the
    previous law draw for draw (pinned values); s outside [0, 1) is refused in one line."""
    from dataclasses import replace

    from protgen.errors import ConfigError
    from protgen.method.insertion import EARLY_TIMES

    s, end = 0.15, CONFIG.insertion_end
    late = InsertionProcess(replace(CONFIG, late_share=s))
    t = late.sample_time(200_000, torch.Generator().manual_seed(0))
    after = (t > end).float().mean().item()
    assert after == pytest.approx(
        s + (1 - s) * 0.4 * (CONFIG.t_max - end) / CONFIG.t_max, abs=0.004
    )
    assert t.max() <= CONFIG.t_max and t.min() >= 0.0
    tail = t[t > end]
    assert tail.mean().item() == pytest.approx((end + CONFIG.t_max) / 2, abs=0.002), "uniform there"
    # s = 0: protgen 0.2's law draw for draw (its first six times at seed 3, pinned)
    none = InsertionProcess(replace(CONFIG, late_share=0.0))
    before = [0.7831342816, 0.0200734418, 0.7590436935, 0.0266852807, 0.0087802624, 0.0595151298]
    got = none.sample_time(6, torch.Generator().manual_seed(3)).tolist()
    assert got == pytest.approx(before, abs=1e-8)
    early = (t < EARLY_TIMES).float().mean().item()
    assert early == pytest.approx(
        (1 - s) * (0.15 + 0.4 * EARLY_TIMES / CONFIG.t_max + 0.45 * 0.0129), abs=0.004
    ), "the other shares shrink by 1 - s"
    with pytest.raises(ConfigError, match="late_share"):
        InsertionProcess(replace(CONFIG, late_share=1.0))


def test_the_gap_head_reads_the_insertion_clock_and_starts_as_the_head_it_extends():
    """insertion_end > 0 adds κ(t) features through a zero-initialised layer: at initialisation
    the counts equal the clockless head's; once trained (weights moved), they change with t
    even where the trunk's features do not."""
    from dataclasses import replace

    from protgen.network.config import PRESETS
    from protgen.network.gap_head import GapHead

    torch.manual_seed(0)
    plain = GapHead(replace(PRESETS["tiny"], insertion=True)).double()
    clocked = GapHead(replace(PRESETS["tiny"], insertion=True, insertion_end=0.8)).double()
    missing, _ = clocked.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["clock.bias", "clock.weight"]
    s, mask = torch.randn(2, 9, 32, dtype=torch.float64), torch.ones(2, 9, dtype=torch.bool)
    early, late = torch.zeros(2, dtype=torch.float64), torch.full((2,), 0.5, dtype=torch.float64)
    assert torch.equal(clocked(s, mask, early), plain(s, mask))
    with torch.no_grad():
        clocked.clock.weight.normal_()
    assert not torch.allclose(clocked(s, mask, early), clocked(s, mask, late))


def test_phi_keeps_the_insertion_times_and_the_birth_clock_starts_at_zero_and_is_invariant():
    """Φ's world state carries each visible residue's insertion time (the seed's 0); a network
    with the birth clock starts equal to one without it, reads the times once trained, and stays
    equivariant (the clock is a scalar per residue)."""
    from dataclasses import replace

    from protgen.network.config import PRESETS
    from protgen.network.frame_network import FrameNetwork

    process = InsertionProcess(CONFIG)
    x_1 = _data(2, 16, seed=2)
    t = torch.tensor([0.3, 0.7], dtype=torch.float64)
    path = process.sample_path(x_1, t, torch.Generator().manual_seed(5))
    x_t = process.phi(path.y_t)
    y = path.y_t
    for k in range(2):
        taus = y.tau[k][y.visible[k]]
        n = int(x_t.mask[k].sum())
        assert torch.equal(x_t.birth[k, :n], taus) and (taus <= t[k]).all() and (taus == 0).any()
    torch.manual_seed(0)
    plain = FrameNetwork(replace(PRESETS["tiny"], insertion=True)).double()
    clocked = FrameNetwork(replace(PRESETS["tiny"], insertion=True, birth_clock=True)).double()
    clocked.load_state_dict(plain.state_dict(), strict=False)
    assert torch.equal(clocked(t, x_t).rotvec, plain(t, x_t).rotvec)
    with torch.no_grad():
        clocked.birth_embedding.weight.normal_()
        for block in clocked.blocks:
            block.update.weight.normal_(0, 0.1)
    out = clocked(t, x_t)
    assert not torch.allclose(out.rotvec, clocked(t, replace(x_t, birth=None)).rotvec)
    motion = Rigid(
        so3.uniform((), torch.float64), torch.tensor([2.0, -5.0, 1.0], dtype=torch.float64)
    )
    moved = x_t.with_frames(
        Rigid(
            motion.rots.expand_as(x_t.frames.rots), motion.trans.expand_as(x_t.frames.trans)
        ).compose(x_t.frames)
    )
    assert torch.allclose(clocked(t, moved).rotvec, out.rotvec, atol=1e-9)


def test_self_conditioning_survives_an_insertion():
    """After a jump, the next network call still gets x̂_1: each chain's older residues keep the
    x̂_1 they had, in order, and a newborn's is its birth frame (protgen 0.2 restarted
    self-conditioning whenever any chain of the batch grew)."""
    from protgen.sampling.self_conditioning import SelfConditioned

    class Recorder(torch.nn.Module):
        config = type("C", (), {"self_condition": True})()

        def __init__(self):
            super().__init__()
            self.inputs = []

        def forward(self, t, x_t, self_cond=None):
            self.inputs.append(self_cond)
            shift = Rigid(x_t.frames.rots, x_t.frames.trans + 1.0)  # x̂_1: x_t moved by 1 Å
            zero = torch.zeros(*x_t.mask.shape, 3)
            return Prediction(FrameVelocity(zero, zero), shift)

    process = InsertionProcess(ProcessConfig(name="insertion", birth_sigma=0.0))
    x = WorldState.of(Rigid(so3.uniform((2, 3)), torch.randn(2, 3, 3) * 5))
    model = Recorder()
    predict = SelfConditioned(model)
    predict(torch.full((2,), 0.4), x)
    first = predict.x1_frames
    counts = torch.tensor([[0.0, 1e6, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    rngs = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
    grown = process.insert(x, counts, 0.4, 1e-3, rngs)
    predict.carry(grown, grown.birth > 0.4 + 1e-3 / 2)
    predict(torch.full((2,), 0.401), grown)
    fed = model.inputs[-1]
    assert fed is not None, "self-conditioning restarted"
    n0 = int(grown.mask[0].sum())
    newborn = grown.birth[0, :n0] > 0.4005
    assert n0 > 3 and newborn.sum() == n0 - 3
    assert torch.equal(fed.trans[0, :n0][~newborn], first.trans[0])
    assert torch.equal(fed.trans[0, :n0][newborn], grown.frames.trans[0, :n0][newborn])
    assert torch.equal(fed.trans[1, :3], first.trans[1]), "a chain that did not grow keeps its x̂_1"
