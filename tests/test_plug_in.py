"""Where things plug in (README): a new latent process is one class registered by name. A toy
jump process, registered at test time under a name that is not "insertion", trains (the trainer
gives its network the gap head because its length emerges), and samples with a length that
emerges through the Python API and the command line (one-residue start, learned rotation rate,
--length refused) — everything asks the process for its capabilities, never its name."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from fixtures import training_set

import protgen
from protgen.cli.main import main
from protgen.geometry.rigid import Rigid
from protgen.geometry.world import WorldState
from protgen.method import registry
from protgen.method.generator import FrameVelocity
from protgen.method.insertion import compact, gap_counts
from protgen.method.paths import uniform_times
from protgen.method.process import JumpProcess, PathSample, ProcessConfig
from protgen.training import checkpoint


@dataclass(frozen=True)
class Prefix:
    """The toy's latent at t: the data and which residues are visible (B, N) bool."""

    x_1: WorldState
    visible: torch.Tensor


class TailGrowth:
    """A toy jump process: a chain grows at its C-terminal end only. Of a data chain of N
    residues, the first 1 + ⌊(N − 1)·min(t/T, 1)⌋ are visible at t, each at its data frame (zero
    velocity); every hidden residue waits in the last gap. The sampler appends Poisson(p·count)
    residues to the end, 3.8 Å along x from the last one."""

    emerging_length = True
    supports_motif = False
    gaussian_positions = False
    end = 0.8  # T

    def __init__(self, config: ProcessConfig):
        self.config = config

    @property
    def start_time(self) -> float:
        return 0.0

    def sample_time(self, batch, rng=None, device=None):
        return uniform_times(self.config.t_min, self.config.t_max, batch, rng, device)

    def world_prior(self, like: WorldState, rng=None) -> WorldState:
        batch = like.mask.shape[0]
        return WorldState.of(Rigid(torch.eye(3).expand(batch, 1, 3, 3), torch.zeros(batch, 1, 3)))

    def _at(self, x_1: WorldState, t: torch.Tensor) -> Prefix:
        length = x_1.mask.sum(-1, keepdim=True)
        shown = 1 + ((length - 1) * (t[:, None] / self.end).clamp(max=1)).floor()
        return Prefix(x_1, torch.arange(x_1.mask.shape[1])[None] < shown)

    def sample_path(self, x_1: WorldState, t: torch.Tensor, rng=None) -> PathSample:
        zeros, ones = torch.zeros_like(t), torch.ones_like(t)
        return PathSample(t, self._at(x_1, zeros), self._at(x_1, ones), self._at(x_1, t))

    def phi(self, y: Prefix) -> WorldState:
        return compact(y.x_1.frames, y.visible)

    def target(self, path: PathSample) -> FrameVelocity:
        x_t = self.phi(path.y_t)
        zero = torch.zeros(*x_t.mask.shape, 3, dtype=x_t.frames.trans.dtype)
        counts = gap_counts(path.y_t.visible, path.y_t.x_1.mask).to(zero.dtype)
        return FrameVelocity(zero, zero, counts)

    def clean_frames(self, path: PathSample, x_1: WorldState) -> Rigid:
        return self.phi(path.y_t).frames

    def insert(self, x: WorldState, counts, t: float, dt: float, rngs) -> WorldState:
        p = min(1.0, dt / max(self.end - t, dt)) if t < self.end else 0.0
        chains = []
        for k, rng in enumerate(rngs):
            n = int(x.mask[k].sum())
            new = int(torch.poisson(torch.tensor(p * float(counts[k, n])), generator=rng))
            last = x.frames.trans[k, n - 1]
            steps = torch.arange(1, new + 1, dtype=last.dtype)[:, None] * torch.tensor([3.8, 0, 0])
            trans = torch.cat([x.frames.trans[k, :n], last + steps])
            chains.append(Rigid(torch.eye(3).expand(n + new, 3, 3).clone(), trans))
        length = max(len(c.trans) for c in chains)
        mask = torch.zeros(len(chains), length, dtype=torch.bool)
        rots = torch.eye(3).repeat(len(chains), length, 1, 1)
        trans = torch.zeros(len(chains), length, 3)
        for k, c in enumerate(chains):
            rots[k, : len(c.trans)], trans[k, : len(c.trans)], mask[k, : len(c.trans)] = (
                c.rots,
                c.trans,
                True,
            )
        return WorldState.of(Rigid(rots, trans), mask)


def _is_jump_process(process: JumpProcess) -> bool:
    """Every member the JumpProcess protocol declares is present."""
    members = {n for n in vars(JumpProcess) if not n.startswith("_")}
    members |= set(getattr(JumpProcess, "__annotations__", {}))
    return all(hasattr(process, n) for n in members | {"insert", "clean_frames"})


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(registry.PROCESSES, "tail_growth", TailGrowth)


def test_the_toy_is_a_jump_process_made_by_its_name(registered):
    process = registry.make_process(ProcessConfig(name="tail_growth"))
    assert isinstance(process, TailGrowth) and _is_jump_process(process)
    assert process.emerging_length and not process.supports_motif


def test_a_registered_toy_jump_process_trains_and_samples_with_an_emerging_length(
    registered, tmp_path, capsys
):
    ts = training_set(tmp_path)
    common = ["--batch-size", "2", "--crop-length", "40", "--warmup", "1", "--threads", "1"]
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
            "tail_growth",
            "--steps",
            "2",
            *common,
        ]
    )
    trained = protgen.load_model(tmp_path / "run")
    assert isinstance(trained.process, TailGrowth) and trained.config.network.insertion, (
        "an emerging length gets the gap head"
    )
    grown = protgen.sample(trained, num=4, steps=12, seed=1)
    lengths = [len(a) for a in grown]
    assert isinstance(grown, list) and max(lengths) > 1 and len(set(lengths)) > 1, lengths
    assert all(np.isfinite(a).all() and a.shape[1:] == (4, 3) for a in grown)
    sample = ["sample", "--checkpoint", str(tmp_path / "run"), "--num", "4", "--steps", "12"]
    main([*sample, "--seed", "1", "--out", str(tmp_path / "s"), "--threads", "1"])
    rows = (tmp_path / "s" / "manifest.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == [f"ins_{k:04d}.pdb" for k in range(4)]
    # the learned rotation rate, as for every model whose length emerges; the API's lengths
    assert [r.split(",")[5] for r in rows] == [""] * 4
    assert [int(r.split(",")[1]) for r in rows] == lengths
    with pytest.raises(SystemExit):
        main([*sample, "--length", "30", "--out", str(tmp_path / "x")])
    assert "lets the length emerge" in capsys.readouterr().err
    assert checkpoint.load_model(tmp_path / "run").process.start_time == 0.0
