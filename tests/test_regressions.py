"""The silent bugs found when protgen 0.1 was read, each held by a test that failed before."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from chains import HELIX, ideal_chain
from fixtures import HAIRPIN, training_set

from protgen.data.structure import write_backbone
from protgen.errors import CheckpointError, ProtgenError
from protgen.network.config import PRESETS
from protgen.training import checkpoint
from protgen.training.config import ModelConfig, TrainConfig
from protgen.training.loop import train

TINY = dict(batch_size=2, crop_length=40, warmup=1, checkpoint_every=3)


def test_summary_keeps_design_figures_when_the_first_structure_fails(tmp_path, monkeypatch):
    """0.1 took the summary's keys from the first row: a first failure dropped them all."""
    import protgen.evaluation.designability as designability
    from protgen.evaluation.config import EvalConfig
    from protgen.evaluation.evaluate import evaluate

    for k, shape in enumerate([HAIRPIN, [HELIX] * 30, [HELIX] * 35]):
        write_backbone(tmp_path / "in" / f"s{k}.pdb", ideal_chain(shape).astype(np.float32))
    calls = {"n": 0}

    class FakeMPNN:
        def __init__(self, mode="full"):
            pass

        @staticmethod
        def available():
            return True

        def design(self, pdb, num, temperature, seed):
            calls["n"] += 1
            if calls["n"] == 1:
                raise ProtgenError("ProteinMPNN failed on this backbone")
            return [
                designability.Design("ACDEFGHIKLMNPQRSTVWY"[: len(pdb.read_text()) % 20 + 1], 1.0)
            ] * num

    monkeypatch.setattr(designability, "ProteinMPNN", FakeMPNN)
    summary = evaluate(tmp_path / "in", tmp_path / "out", EvalConfig(mpnn="on"))
    assert {"full_mpnn_score", "full_seq_entropy"} <= set(summary.samples.means)
    assert any("ProteinMPNN failed" in reason for _, reason in summary.skipped)


def test_sampling_starts_at_the_checkpoints_t_min(tmp_path, monkeypatch):
    """0.1 had a second t_min in the sampler and ignored the checkpoint's."""
    from protgen.method.process import ProcessConfig
    from protgen.method.simulation import SimulationConfig
    from protgen.sampling import sampler
    from protgen.sampling.config import SampleConfig

    ts = training_set(tmp_path)
    run = train(
        ts.path,
        tmp_path / "run",
        ModelConfig(PRESETS["tiny"], ProcessConfig(t_min=0.2)),
        TrainConfig(steps=3, **TINY),
    )
    seen = {}
    real = sampler.simulate

    def spy(predict, x_0, t_0, *args, **kwargs):
        seen["t_0"] = t_0
        return real(predict, x_0, t_0, *args, **kwargs)

    monkeypatch.setattr(sampler, "simulate", spy)
    sampler.sample_backbones(
        checkpoint.load_model(run.checkpoint),
        10,
        [1],
        SampleConfig(simulation=SimulationConfig(steps=2)),
    )
    assert seen["t_0"] == 0.2


class _Exploit:
    def __reduce__(self):
        return (open, ("/tmp/protgen_exploit_ran", "w"))


def test_a_crafted_checkpoint_cannot_run_code(tmp_path):
    """0.1 loaded checkpoints with weights_only=False."""
    import os

    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "payload": _Exploit()}, path)
    if os.path.exists("/tmp/protgen_exploit_ran"):
        os.unlink("/tmp/protgen_exploit_ran")
    with pytest.raises(CheckpointError, match="not a readable protgen checkpoint"):
        checkpoint.load(path)
    assert not os.path.exists("/tmp/protgen_exploit_ran")


def test_training_keeps_the_jump_part_of_the_generator(tmp_path):
    """0.1's training step rebuilt the velocity without its insertion field."""
    import csv

    from protgen.method.process import ProcessConfig

    ts = training_set(tmp_path)
    config = ModelConfig(replace(PRESETS["tiny"], insertion=True), ProcessConfig(name="insertion"))
    train(ts.path, tmp_path / "run", config, TrainConfig(steps=2, log_every=1, **TINY))
    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert "rate" in rows[0] and all(float(r["rate"]) > 0 for r in rows)


def test_the_panel_cache_version_lives_in_one_constant(tmp_path, monkeypatch):
    """0.1 wrote the cache version twice; bumping the one constant recomputes both panels."""
    import protgen.evaluation.evaluate as module
    from protgen.evaluation import results
    from protgen.evaluation.config import EvalConfig

    ref = training_set(tmp_path, n_chains=3, val_fraction=0.0)
    write_backbone(tmp_path / "in" / "a.pdb", ideal_chain(HAIRPIN).astype(np.float32))
    config = EvalConfig(reference=str(ref.path), max_reference=2, mpnn="off")
    module.evaluate(tmp_path / "in", tmp_path / "out", config)
    calls = []
    real = module.panel_job
    monkeypatch.setattr(module, "panel_job", lambda atoms: calls.append(1) or real(atoms))
    module.evaluate(tmp_path / "in", tmp_path / "out", config)
    assert calls == []
    monkeypatch.setattr(results, "PANEL_VERSION", results.PANEL_VERSION + 1)
    module.evaluate(tmp_path / "in", tmp_path / "out", config)
    assert len(calls) == 3, "samples and reference chains alike"


def test_a_protgen_0_1_model_config_loads_with_the_values_it_was_trained_with():
    """0.1 stored loss weights inside the process and had no position, coupling, motif or insertion
    fields; they must read back as what 0.1 did (absolute positions, independent coupling)."""
    from protgen.errors import CheckpointError
    from protgen.training.config import model_config_from_dict

    old = {
        "network": {
            "node_dim": 128,
            "pair_dim": 32,
            "blocks": 4,
            "heads": 4,
            "head_dim": 16,
            "query_points": 4,
            "value_points": 8,
            "rbf": 16,
            "max_offset": 32,
            "pair_update": True,
            "node_layers": 0,
            "self_condition": True,
        },
        "process": {
            "name": "frames",
            "sigma": 10.0,
            "t_min": 0.01,
            "t_max": 0.99,
            "weight_clip": 0.9,
            "rot_weight": 0.5,
            "trans_weight": 1.0,
        },
    }
    config = model_config_from_dict(old)
    assert (
        config.network.position == "absolute"
        and config.network.node_layers == 0
        and not config.network.motif
    )
    assert (
        config.process.coupling == "independent"
        and config.process.name == "frames"
        and config.process.t_min == 0.01
    )
    assert (
        config.loss.weight_clip,
        config.loss.rot_weight,
        config.loss.trans_weight,
        config.loss.aux_weight,
    ) == (0.9, 0.5, 1.0, 0.0)
    with pytest.raises(CheckpointError, match="not readable by this protgen"):
        model_config_from_dict({**old, "network": {**old["network"], "future_field": 1}})
