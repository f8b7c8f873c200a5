"""Training: losses fall, resume reproduces an uninterrupted run, signals checkpoint, non-finite
steps are skipped, DDP ranks agree, and bad configs fail in one line."""

import csv
import os
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import training_set

from protgen.data.loader import collate
from protgen.errors import CheckpointError, ConfigError, ProtgenError
from protgen.method.process import ResidueFrameFlow
from protgen.network.config import PRESETS
from protgen.network.model import GeneratorModel
from protgen.training import checkpoint
from protgen.training.config import ModelConfig, TrainConfig
from protgen.training.loop import train
from protgen.training.validation import validation_loss as validate

TINY = ModelConfig(PRESETS["tiny"])
FAST = dict(
    batch_size=2, crop_length=40, warmup=5, log_every=1, val_every=10**6, checkpoint_every=5
)


def _terms(run, step: int) -> tuple[float, ...]:
    """The loss terms (rot, trans) logged at ``step``."""
    with open(Path(run) / "metrics.csv", newline="") as handle:
        return next(
            (float(r["rot"]), float(r["trans"]))
            for r in csv.DictReader(handle)
            if int(r["step"]) == step
        )


def _losses(run):
    with open(Path(run) / "metrics.csv", newline="") as handle:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(handle)}


def test_overfitting_one_chain_drives_the_loss_down_tenfold(tmp_path):
    ts = training_set(tmp_path, n_chains=1, val_fraction=0.0)
    batches = [collate([ts.segment_atoms(0)] * 4, ["x"] * 4)]
    before = GeneratorModel(TINY.network).eval()
    result = train(
        ts.path,
        tmp_path / "run",
        TINY,
        TrainConfig(
            steps=1500,
            lr=2e-3,
            ema_decay=0.99,
            **{**FAST, "batch_size": 4, "log_every": 50, "checkpoint_every": 1500},
        ),
    )
    after = checkpoint.load_model(result.checkpoint)
    start, end = (
        validate(before, ResidueFrameFlow(), batches, seed=0),
        validate(after.model, after.process, batches, seed=0),
    )
    # At small t the noise hides the data's orientation, an irreducible part of the loss for an
    # equivariant network; from t = 0.5 on the posterior concentrates and the loss must collapse.
    late = [0.5, 0.7, 0.9]
    assert sum(start[t] for t in late) / sum(end[t] for t in late) >= 10, (start, end)
    assert all(end[t] < start[t] for t in start)


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    ts = training_set(tmp_path)
    full = train(ts.path, tmp_path / "full", TINY, TrainConfig(steps=12, **FAST))
    train(ts.path, tmp_path / "part", TINY, TrainConfig(steps=5, **FAST))
    with pytest.raises(ProtgenError, match="--resume"):
        train(ts.path, tmp_path / "part", TINY, TrainConfig(steps=12, **FAST))
    resumed = train(ts.path, tmp_path / "part", TINY, TrainConfig(steps=12, **FAST), resume=True)
    a, b = _losses(tmp_path / "full"), _losses(tmp_path / "part")
    assert sorted(a) == sorted(b) == list(range(1, 13))
    for step in a:
        assert a[step] == pytest.approx(b[step], rel=1e-5, abs=1e-6)
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    state = checkpoint.load(tmp_path / "part" / "checkpoint.pt")
    assert state.step == 12 and state.data_fingerprint == ts.meta.fingerprint
    assert state.train_config == TrainConfig(steps=12, **FAST) and state.model_config == TINY
    assert state.model and state.ema and state.optimizer and len(state.rng) == 1
    assert (tmp_path / "part" / "loss.png").stat().st_size > 1000


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_or_sigterm_writes_a_checkpoint_that_resumes(tmp_path, stop):
    ts = training_set(tmp_path)
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "protgen",
        "train",
        "--data",
        str(ts.path),
        "--out",
        str(run),
        "--preset",
        "tiny",
        "--steps",
        "100000",
        "--batch-size",
        "2",
        "--crop-length",
        "40",
        "--checkpoint-every",
        "100000",
        "--log-every",
        "1",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.time() + 120
    while not (run / "metrics.csv").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(stop)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err  # interrupted: non-zero, after the checkpoint
    assert "stopped at step" in out
    step = checkpoint.load(run / "checkpoint.pt").step
    assert step >= 1
    result = train(ts.path, run, TINY, TrainConfig(steps=step + 2, **FAST), resume=True)
    assert result.step == step + 2


def test_non_finite_steps_are_skipped_then_stop_the_run(tmp_path, monkeypatch):
    ts = training_set(tmp_path)
    import protgen.training.loop as module

    real = module.generator_matching_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):  # five good steps, one bad, one good, then bad for ever
        loss = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 6 or calls["n"] > 7:
            return replace(loss, total=loss.total * float("nan"))
        return loss

    monkeypatch.setattr(module, "generator_matching_loss", poisoned)
    with pytest.raises(ProtgenError, match="4 non-finite losses or gradients in a row at step 6"):
        train(ts.path, tmp_path / "run", TINY, TrainConfig(steps=50, max_nonfinite=4, **FAST))
    assert calls["n"] == 11
    state = checkpoint.load(tmp_path / "run" / "checkpoint.pt")
    assert state.step == 5 and state.skipped_steps == 0
    assert all(torch.isfinite(v).all() for v in state.model.values())


_DDP_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from protgen.network.config import PRESETS
from protgen.training.config import ModelConfig, TrainConfig
from protgen.training.loop import train
config = TrainConfig(
    steps=4, batch_size=2, crop_length=40, warmup=2, log_every=1, val_every=10**6,
    checkpoint_every=4,
)
r = train(sys.argv[1], sys.argv[2], ModelConfig(PRESETS["tiny"]), config)
rank = torch.distributed.get_rank()
torch.save(r.model.state_dict(), f"{sys.argv[2]}/rank{rank}.pt")
"""


def test_two_ddp_ranks_on_cpu_end_with_identical_weights(tmp_path):
    ts = training_set(tmp_path, n_chains=8, val_fraction=0.0)
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        str(script),
        str(ts.path),
        str(tmp_path / "run"),
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = torch.load(tmp_path / "run" / "rank0.pt"), torch.load(tmp_path / "run" / "rank1.pt")
    initial = GeneratorModel(TINY.network).state_dict()
    assert any(not torch.equal(a[k], initial[k]) for k in a), "weights did not train"
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert checkpoint.load(tmp_path / "run" / "checkpoint.pt").step == 4


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "protgen", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_bad_inputs_fail_in_one_line(tmp_path):
    ts = training_set(tmp_path)
    (tmp_path / "bad.toml").write_text("[train]\nstepz = 3\n")
    out = _cli(
        "train",
        "--data",
        str(ts.path),
        "--out",
        str(tmp_path / "r"),
        "--config",
        str(tmp_path / "bad.toml"),
    )
    assert (
        out.returncode == 1
        and "unknown key(s) stepz" in out.stderr
        and len(out.stderr.strip().splitlines()) == 1
    )
    out = _cli("train", "--data", str(tmp_path), "--out", str(tmp_path / "r"))
    assert (
        out.returncode == 1
        and "not a protgen training set" in out.stderr
        and len(out.stderr.strip().splitlines()) == 1
    )
    train(ts.path, tmp_path / "run", TINY, TrainConfig(steps=2, **FAST))
    state = checkpoint.load(tmp_path / "run" / "checkpoint.pt")
    other = replace(state, model_config=replace(state.model_config, network=PRESETS["small"]))
    checkpoint.save(tmp_path / "other.pt", other)
    with pytest.raises(CheckpointError, match="incompatible"):
        checkpoint.load_model(tmp_path / "other.pt")
    torch.save({**state.to_payload(), "format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format 99"):
        checkpoint.load_model(tmp_path / "future.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        checkpoint.load(tmp_path / "garbage.pt")


def test_ema_warms_up_then_averages():
    from protgen.training.ema import EMA

    net = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema = EMA(net, decay=0.999)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net, step=0)  # decay min(0.999, 1/10): the first average is mostly the new weights
    assert torch.allclose(ema.shadow["weight"], torch.full((1, 2), 0.9))
    for step in range(1, 20000):
        ema.update(net, step)
    assert torch.allclose(ema.shadow["weight"], torch.ones(1, 2), atol=1e-6)


def test_chain_process_is_a_config_field_that_trains_and_samples(tmp_path):
    from protgen.method.process import ProcessConfig
    from protgen.method.simulation import SimulationConfig
    from protgen.sampling.config import SampleConfig
    from protgen.sampling.directory import sample_to_directory

    ts = training_set(tmp_path)
    config = ModelConfig(PRESETS["tiny"], ProcessConfig(name="chain"))
    result = train(ts.path, tmp_path / "run", config, TrainConfig(steps=6, **FAST))
    trained = checkpoint.load_model(result.checkpoint)
    assert (
        trained.checkpoint.model_config.process.name == "chain"
        and type(trained.process).__name__ == "ChainFrameFlow"
    )
    rows = sample_to_directory(
        result.checkpoint,
        tmp_path / "samples",
        SampleConfig(lengths=(15,), num=2, simulation=SimulationConfig(steps=5)),
    )
    assert len(rows) == 2 and (tmp_path / "samples" / "len0015_0001.pdb").exists()


def test_bf16_autocast_trains_close_to_float32(tmp_path):
    """--bf16: the same seed gives the same batches and noise, so the losses differ only by bfloat16
    rounding — close to float32's but not identical once the zero-initialised frame updates have
    moved (autocast is really on)."""
    ts = training_set(tmp_path)
    runs = {}
    for bf16 in (False, True):
        result = train(
            ts.path, tmp_path / f"bf16_{bf16}", TINY, TrainConfig(steps=3, bf16=bf16, **FAST)
        )
        assert result.step == 3
        runs[bf16] = _losses(tmp_path / f"bf16_{bf16}")
    assert checkpoint.load(tmp_path / "bf16_True").train_config.bf16 is True
    assert all(np.isfinite(v) for r in runs.values() for v in r.values())
    # the total alone may agree to 6 digits
    terms = {bf16: _terms(tmp_path / f"bf16_{bf16}", 3) for bf16 in (False, True)}
    assert terms[False] != terms[True], terms
    assert all(abs(a - b) < 0.05 * abs(a) for a, b in zip(terms[False], terms[True])), terms


def test_init_from_a_dense_run_fine_tunes_a_sparse_network_from_its_weights(tmp_path):
    """--neighbours changes which pairs the network reads, not its parameters: a fine-tune may
    switch it, starts from the source's (EMA) weights, stores the new config, and samples sparse.
    A network of another size still fails in one line."""
    ts = training_set(tmp_path)
    train(ts.path, tmp_path / "dense", TINY, TrainConfig(steps=3, **FAST))
    source = checkpoint.load_model(tmp_path / "dense")
    common = [
        "--data",
        str(ts.path),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--crop-length",
        "40",
        "--warmup",
        "1",
        "--val-every",
        "1000000",
        "--threads",
        "1",
    ]
    out = _cli(
        "train",
        *common,
        "--out",
        str(tmp_path / "sparse"),
        "--init-from",
        str(tmp_path / "dense"),
        "--neighbours",
        "8",
        "--lr",
        "1e-12",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    tuned = checkpoint.load_model(tmp_path / "sparse")
    assert tuned.config.network == replace(source.config.network, neighbours=8)
    a, b = source.model.network.state_dict(), tuned.model.network.state_dict()
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), (
        "two steps at lr 1e-12 keep the source's weights"
    )
    out = _cli(
        "sample",
        "--checkpoint",
        str(tmp_path / "sparse"),
        "--length",
        "30",
        "--num",
        "1",
        "--steps",
        "3",
        "--out",
        str(tmp_path / "pdb_out"),
    )
    assert out.returncode == 0 and len(list((tmp_path / "pdb_out").glob("*.pdb"))) == 1, out.stderr[
        -2000:
    ]
    out = _cli(
        "train",
        *common,
        "--out",
        str(tmp_path / "bigger"),
        "--init-from",
        str(tmp_path / "dense"),
        "--preset",
        "small",
    )
    assert (
        out.returncode == 1
        and "network differs" in out.stderr
        and len(out.stderr.strip().splitlines()) == 1
    ), out.stderr
    out = _cli("train", *common, "--out", str(tmp_path / "neg"), "--neighbours", "-1")
    assert (
        out.returncode == 1
        and "--neighbours -1" in out.stderr
        and len(out.stderr.strip().splitlines()) == 1
    ), out.stderr


def test_denoising_diagnostics_score_an_oracle_exactly_and_feed_the_second_pass_the_first():
    """A model that returns the truth scores RMSD 0, helix recall 1 and every CA–CA(next) in range
    on ideal helices (3.80 Å); one that returns the truth only when fed a previous x̂_1 scores so
    only with self-conditioning on, and its noised x_t at t = 0.5 has CA–CA(next) out of range."""
    from types import SimpleNamespace

    from chains import HELIX, ideal_chain

    from protgen.method.process import ProcessConfig
    from protgen.method.registry import make_process
    from protgen.training.validation import denoising_diagnostics

    batch = collate(
        [
            ideal_chain([HELIX] * 30).astype(np.float32),
            ideal_chain([HELIX] * 24).astype(np.float32),
        ],
        ["a", "b"],
    )
    truth, fed, returned = batch.x_1.frames, [], []

    def oracle(t, x_t, self_cond=None):
        return SimpleNamespace(x1_hat=truth)

    def needs_self_condition(t, x_t, self_cond=None):
        fed.append(self_cond)
        returned.append(truth if self_cond is not None else x_t.frames)
        return SimpleNamespace(x1_hat=returned[-1])

    process = make_process(ProcessConfig())
    (d,) = denoising_diagnostics(oracle, process, [batch], seed=0, times=(0.5,))
    assert d.rmsd < 1e-3 and d.helix_recall == 1.0 and d.clashes_per_100 == 0.0
    assert d.ca_ca_in_range == 1.0
    (one,) = denoising_diagnostics(needs_self_condition, process, [batch], seed=0, times=(0.5,))
    (two,) = denoising_diagnostics(
        needs_self_condition, process, [batch], seed=0, times=(0.5,), self_condition=True
    )
    assert one.rmsd > 1.0 and one.helix_recall < 0.5 and two.rmsd < 1e-3 and two.helix_recall == 1.0
    assert one.ca_ca_in_range < 0.5 and two.ca_ca_in_range == 1.0
    assert fed[0] is None and fed[1] is None and fed[2] is returned[1], (
        "one pass sees no x̂_1; with self-conditioning the second is fed the first's"
    )


def test_init_from_grows_sequence_layers_starting_as_the_source_network(tmp_path):
    """--init-from with more sequence-transformer layers per block (node_layers 0 → 2): the new
    layers start as the identity, so the grown network's x̂_1 equals the source's on any state; it
    then trains them (their outputs move off zero). Fewer layers than the source fail in one
    line."""
    from protgen.geometry import so3
    from protgen.geometry.rigid import Rigid
    from protgen.geometry.world import WorldState

    ts = training_set(tmp_path)
    train(ts.path, tmp_path / "small", TINY, TrainConfig(steps=3, **FAST))
    (tmp_path / "grow.toml").write_text('preset = "tiny"\n[network]\nnode_layers = 2\n')
    common = [
        "--data",
        str(ts.path),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--crop-length",
        "40",
        "--warmup",
        "1",
        "--val-every",
        "1000000",
        "--threads",
        "1",
    ]
    out = _cli(
        "train",
        *common,
        "--out",
        str(tmp_path / "grown"),
        "--init-from",
        str(tmp_path / "small"),
        "--config",
        str(tmp_path / "grow.toml"),
        "--lr",
        "1e-12",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    source, grown = (
        checkpoint.load_model(tmp_path / "small"),
        checkpoint.load_model(tmp_path / "grown"),
    )
    assert grown.config.network == replace(source.config.network, node_layers=2)
    assert grown.model.network.parameter_count() > source.model.network.parameter_count()
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[1, 25:] = False
    frames = Rigid(
        so3.exp(torch.randn(2, 30, 3, generator=g)), 10 * torch.randn(2, 30, 3, generator=g)
    )
    x_t = WorldState(frames, mask, torch.arange(30).expand(2, 30))
    t = torch.tensor([0.3, 0.8])
    with torch.no_grad():
        a, b = source.model.network(t, x_t).x1_hat, grown.model.network(t, x_t).x1_hat
    assert torch.allclose(a.trans[mask], b.trans[mask], atol=1e-4) and torch.allclose(
        a.rots[mask], b.rots[mask], atol=1e-5
    )
    out = _cli(
        "train",
        *common,
        "--out",
        str(tmp_path / "trained"),
        "--init-from",
        str(tmp_path / "small"),
        "--config",
        str(tmp_path / "grow.toml"),
        "--lr",
        "1e-2",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    state = checkpoint.load_model(tmp_path / "trained").model.network.state_dict()
    assert state["blocks.0.seq.layers.1.linear2.weight"].abs().max() > 0, "the new layers train"
    (tmp_path / "shrink.toml").write_text('preset = "tiny"\n[network]\nnode_layers = 1\n')
    out = _cli(
        "train",
        *common,
        "--out",
        str(tmp_path / "shrunk"),
        "--init-from",
        str(tmp_path / "grown"),
        "--config",
        str(tmp_path / "shrink.toml"),
    )
    assert (
        out.returncode == 1
        and "node_layers 2 vs 1" in out.stderr
        and len(out.stderr.strip().splitlines()) == 1
    ), out.stderr


@pytest.mark.parametrize("process", ["frames", "insertion"])
def test_every_chain_weighs_one_over_the_chains_per_step_whatever_its_length(
    tmp_path, monkeypatch, process
):
    """Whole steps: a step holds batch_size chains in pair-budget micro-batches, and its objective
    is the plain mean over those chains — probed with a loss linear in a per-chain value c_i:
    the gradient is Σ_i weight_i·c_i, which must be mean(c) for c = 1 and for c = N_i (so no
    weight depends on the chain's length; Process 3's network cannot see that length)."""
    from protgen.training import loop

    ts = training_set(tmp_path, n_chains=8, val_fraction=0.0)
    model_config = replace(
        TINY,
        process=replace(TINY.process, name=process),
        network=replace(TINY.network, insertion=process == "insertion"),
    )
    config = TrainConfig(
        batch_size=5, crop_length=60, max_pairs=2 * 50**2, grad_clip=1e9, self_condition_prob=0.0
    )
    seen, value = [], {}

    def probe(model, module, process, batch, rng, self_condition, autocast, config):
        lengths = batch.mask.sum(-1).float()
        seen.append(lengths)
        scalar = next(module.parameters()).flatten()[0]
        per_chain = value["c"](lengths)
        return loop.LossTerms(scalar * per_chain.mean(), flow=per_chain.mean().detach())

    monkeypatch.setattr(loop, "_loss_on", probe)
    for c in (torch.ones_like, lambda n: n):
        value["c"] = c
        run = loop._Run(
            tmp_path / "run",
            ts,
            model_config,
            config,
            GeneratorModel(model_config.network),
            0,
            1,
            torch.device("cpu"),
        )
        for _ in range(4):
            seen.clear()
            run._step(nullcontext)
            lengths = torch.cat(seen)
            assert len(lengths) == 5 and len(seen) >= 1  # every step: exactly batch_size chains
            assert all(len(n) * int(n.max()) ** 2 <= config.max_pairs or len(n) == 1 for n in seen)
            grad = next(run.module.parameters()).grad.flatten()[0]
            assert grad.item() == pytest.approx(c(lengths).mean().item(), rel=1e-5)


def test_whole_steps_resume_and_log_how_often_clipping_acted(tmp_path):
    """A whole-step run resumed mid-way reproduces the uninterrupted run's losses; metrics.csv
    records the share of steps whose gradient was clipped, validation.csv the training hours."""
    ts = training_set(tmp_path)
    config = TrainConfig(
        steps=6,
        **{**FAST, "batch_size": 3, "max_pairs": 2 * 45**2, "val_every": 3, "val_chains": 2},
    )
    full = train(ts.path, tmp_path / "full", TINY, config)
    assert full.step == 6
    train(ts.path, tmp_path / "half", TINY, replace(config, steps=3))
    train(ts.path, tmp_path / "half", None, config, resume=True)
    assert _losses(tmp_path / "half") == _losses(tmp_path / "full")
    with open(tmp_path / "full" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(0.0 <= float(r["clipped"]) <= 1.0 for r in rows) and all(
        float(r["steps_per_s"]) > 0 for r in rows
    )
    for run in ("full", "half"):  # training hours and core-hours accumulate across the resume
        with open(tmp_path / run / "validation.csv", newline="") as handle:
            val = list(csv.DictReader(handle))
        assert [int(r["step"]) for r in val] == [3, 6]
        assert 0 < float(val[0]["hours"]) < float(val[1]["hours"]) and 0 < float(
            val[0]["core_hours"]
        ) < float(val[1]["core_hours"])


def test_steps_per_second_count_training_time_only_and_the_last_row_its_own_steps(
    tmp_path, monkeypatch
):
    """metrics.csv's rates are steps over the training time since the previous row. Each step is
    made to take ≥ 0.25 s and each validation and checkpoint 3 s: a row that counted validation or
    checkpoint time would read < 2 / 3.5 steps/s, and a last row (one step, log_every 2) that
    divided log_every steps by its time would read twice the others."""
    from protgen.training import loop

    def slow(original, seconds):
        def run(self, *args, **kwargs):
            time.sleep(seconds)
            return original(self, *args, **kwargs)

        return run

    monkeypatch.setattr(loop._Run, "_step", slow(loop._Run._step, 0.25))
    monkeypatch.setattr(loop._Run, "validate", slow(loop._Run.validate, 3.0))
    monkeypatch.setattr(loop._Run, "snapshot", slow(loop._Run.snapshot, 3.0))
    ts = training_set(tmp_path)
    config = TrainConfig(
        steps=5, **{**FAST, "log_every": 2, "val_every": 2, "checkpoint_every": 2, "val_chains": 2}
    )
    started = time.monotonic()
    train(ts.path, tmp_path / "run", TINY, config)
    assert time.monotonic() - started > 4 * 3.0  # the slow validations and checkpoints did run
    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        rates = {int(r["step"]): float(r["steps_per_s"]) for r in csv.DictReader(handle)}
    assert list(rates) == [2, 4, 5]
    assert all(0.9 < rate <= 4.0 for rate in rates.values()), rates
    assert rates[5] < 1.5 * min(rates[2], rates[4]), rates


def test_a_run_saved_before_whole_steps_resumes_as_it_was_trained(tmp_path):
    """A checkpoint of protgen ≤ 0.2 — its train config without whole_steps and val_chains, the
    file without training seconds or the noise generator's device — resumes with one pair-budget
    batch per step: the losses of an uninterrupted run trained that way."""
    from protgen.training.config import train_config_from_dict
    from protgen.training.loop import train_run
    from protgen.training.resolve import RunRequest

    assert train_config_from_dict({"steps": 10}).whole_steps is False
    assert TrainConfig().whole_steps is True
    ts = training_set(tmp_path)
    old = TrainConfig(
        steps=4, whole_steps=False, val_chains=0, **{**FAST, "batch_size": 3, "max_pairs": 4050}
    )
    train(ts.path, tmp_path / "full", TINY, old)
    train(ts.path, tmp_path / "half", TINY, replace(old, steps=2))
    path = tmp_path / "half" / "checkpoint.pt"
    payload = torch.load(path, weights_only=True)
    for key in ("whole_steps", "val_chains"):
        del payload["train_config"][key]
    del payload["train_seconds"], payload["cpu_seconds"], payload["rng"][0]["device"]
    torch.save(payload, path)
    train_run(ts.path, tmp_path / "half", RunRequest(train={"steps": 4}, resume=True))
    assert checkpoint.load(path).train_config == old
    a, b = _losses(tmp_path / "full"), _losses(tmp_path / "half")
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    assert all(a[step] == pytest.approx(b[step], rel=1e-5, abs=1e-6) for step in a)


def test_a_resumed_run_applies_a_new_weight_decay_even_over_zero(tmp_path):
    """Bug: the decaying parameter group was recognised by a non-zero decay, so a run stored with
    weight_decay 0 kept 0 whatever --resume asked (and announced the change)."""
    ts = training_set(tmp_path)
    train(ts.path, tmp_path / "run", TINY, TrainConfig(steps=2, weight_decay=0.0, **FAST))
    resumed = TrainConfig(steps=3, weight_decay=0.1, **FAST)
    train(ts.path, tmp_path / "run", None, resumed, resume=True)
    groups = checkpoint.load(tmp_path / "run").optimizer["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]


@pytest.mark.parametrize("field", ["log_every", "checkpoint_every", "val_every"])
def test_zero_steps_between_logs_checkpoints_or_validations_is_refused(tmp_path, field):
    """Bug: 0 passed the checks and the run crashed after its first step (a modulo by zero)."""
    ts = training_set(tmp_path)
    with pytest.raises(ConfigError, match="--log-every, --checkpoint-every and --val-every ≥ 1"):
        train(ts.path, tmp_path / "run", TINY, TrainConfig(steps=2, **{**FAST, field: 0}))
    flag = "--" + field.replace("_", "-")
    out = _cli("train", "--data", str(ts.path), "--out", str(tmp_path / "cli"), flag, "0")
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "cli").exists()


def test_resuming_under_another_number_of_processes_is_refused(tmp_path):
    """Bug: extra ranks took the last rank's noise and data stream. Here a checkpoint of two
    processes is resumed by one."""
    ts = training_set(tmp_path)
    train(ts.path, tmp_path / "run", TINY, TrainConfig(steps=2, **FAST))
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    state["rng"] = state["rng"] * 2
    torch.save(state, tmp_path / "run" / "checkpoint.pt")
    with pytest.raises(ConfigError, match="trained by 2 process.*resumed by 1.*nproc_per_node 2"):
        train(ts.path, tmp_path / "run", None, TrainConfig(steps=3, **FAST), resume=True)


def test_resuming_on_another_kind_of_device_restarts_the_noise_generator(tmp_path, capsys):
    """Bug: a CUDA generator's state (16 bytes) was restored into a CPU generator, or a CPU one's
    into a CUDA generator: a size error. Here a checkpoint saved on CUDA resumes on the CPU."""
    ts = training_set(tmp_path)
    train(ts.path, tmp_path / "run", TINY, TrainConfig(steps=2, **FAST))
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    state["rng"][0]["noise"] = torch.zeros(16, dtype=torch.uint8)  # a CUDA generator's state
    state["rng"][0]["device"] = "cuda"
    torch.save(state, tmp_path / "run" / "checkpoint.pt")
    result = train(ts.path, tmp_path / "run", None, TrainConfig(steps=4, **FAST), resume=True)
    assert result.step == 4
    assert "noise generator ran on cuda; on cpu it restarts from a seed" in capsys.readouterr().err
    assert checkpoint.load(tmp_path / "run").rng[0].device == "cpu"


def test_loss_png_plots_every_logged_term_and_the_diagnostics_at_any_time():
    """Bug: loss.png listed the terms it plotted by name and left out Process 3's rate; its
    diagnostics panel read t = 0.5 and 0.7 only, so other diagnostic times left it blank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from protgen.training.logs import figure

    steps = [10.0, 20.0, 30.0]
    metrics = {"step": steps, "loss": [3.0, 2.0, 1.0], "rot": [1.0] * 3, "trans": [1.0] * 3}
    metrics["rate"] = [0.5, 0.4, 0.3]
    val = {"step": steps, "t=0.5": [1.0] * 3}
    for t in ("0.3", "0.9"):
        val |= {f"rmsd@{t}": [2.0] * 3, f"strand_recall@{t}": [0.5] * 3}
        val |= {f"clashes_per_100@{t}": [9.0] * 3}
    fig = figure(metrics, val)
    training, _, diagnostics = fig.axes[:3]
    assert [line.get_label() for line in training.lines] == ["loss", "rot", "trans", "rate"]
    labels = [text.get_text() for text in diagnostics.get_legend().get_texts()]
    assert (
        len(labels) == 6 and "x̂₁ CA RMSD, Å (t=0.3)" in labels and "strand recall (t=0.9)" in labels
    )
    plt.close(fig)


def test_config_json_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """Bug: config.json was written in place; a failure mid-write left half of it."""
    ts = training_set(tmp_path)
    train(ts.path, tmp_path / "run", TINY, TrainConfig(steps=2, **FAST))
    before = (tmp_path / "run" / "config.json").read_bytes()
    real = Path.write_text

    def half_a_text(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_a_text)
    with pytest.raises(OSError):
        train(ts.path, tmp_path / "run", None, TrainConfig(steps=3, **FAST), resume=True)
    assert (tmp_path / "run" / "config.json").read_bytes() == before
