"""Which shipped model samples which length: the weights declare the lengths they serve and their
rotation rate, `protgen sample` routes each length to its model, and the manifest names it."""

import csv
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from fixtures import training_set

from protgen.network.config import PRESETS
from protgen.training import checkpoint
from protgen.training.config import ModelConfig, TrainConfig
from protgen.training.loop import train

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """Two tiny weights files: "short" serving 20–40 residues at the learned rotation rate, and
    "default" (no declared lengths: any), trained from different seeds so their samples differ."""
    tmp = tmp_path_factory.mktemp("routes")
    ts = training_set(tmp)
    paths = {}
    for seed, name in enumerate(("short", "default")):
        config = TrainConfig(
            steps=2, batch_size=2, crop_length=40, warmup=1, val_every=10**6, seed=seed
        )
        run = train(ts.path, tmp / name, ModelConfig(PRESETS["tiny"]), config).checkpoint
        cmd = [
            sys.executable,
            str(SCRIPTS / "export_weights.py"),
            str(run),
            str(tmp / f"{name}.pt"),
        ]
        if name == "short":
            cmd += ["--serve-lengths", "20-40", "--rot-rate", "0"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        paths[name] = tmp / f"{name}.pt"
    return paths


def test_the_weights_keep_the_lengths_they_serve_and_their_rotation_rate(two_models):
    from protgen.sampling.config import default_rot_rate

    short, default = (checkpoint.load_model(two_models[k]) for k in ("short", "default"))
    assert short.checkpoint.serving == checkpoint.Serving((20, 40), 0.0)
    assert default.checkpoint.serving is None
    assert [short.checkpoint.serving.covers(n) for n in (19, 20, 40, 41)] == [0, 1, 1, 0]
    # 0 stored = the learned rate (None); nothing stored = the process's default, c = 5
    assert default_rot_rate(short) is None and default_rot_rate(default) == 5.0
    rated = replace(
        short, checkpoint=replace(short.checkpoint, serving=checkpoint.Serving(None, 3.0))
    )
    assert default_rot_rate(rated) == 3.0


def test_inspect_says_what_a_weights_file_serves(two_models, capsys):
    from protgen.cli.main import main

    main(["inspect", str(two_models["short"])])
    assert (
        "  serves: 20–40 residues, rotation rate 0 (the learned rate)\n" in capsys.readouterr().out
    )
    main(["inspect", str(two_models["default"])])
    assert "serves:" not in capsys.readouterr().out


def test_export_refuses_a_malformed_length_range(two_models, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "export_weights.py"),
            str(two_models["short"]),
            str(tmp_path / "x.pt"),
            "--serve-lengths",
            "128-40",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "need 1 ≤ MIN ≤ MAX" in done.stderr
    assert not (tmp_path / "x.pt").exists()


def test_sample_routes_each_length_to_the_model_that_serves_it(two_models, tmp_path, monkeypatch):
    """Without --checkpoint, 30 residues go to "short" (it serves 20–40) at its own learned rate,
    12 and 50 to "default" at c = 5; each file is what its model alone makes for that length and
    seed, and the manifest names the model and its file's fingerprint."""
    from protgen.cli.main import main

    monkeypatch.setattr(checkpoint, "default_checkpoint", lambda kind="default": two_models[kind])
    torch.set_num_threads(1)
    common = ["--num", "2", "--steps", "3", "--seed", "4"]
    main(["sample", "--lengths", "30,12,50", *common, "--out", str(tmp_path / "routed")])
    with open(tmp_path / "routed" / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["length"], r["model"], r["rot_rate"]) for r in rows] == [
        ("30", "short", ""),
        ("30", "short", ""),
        ("12", "default", "5.0"),
        ("12", "default", "5.0"),
        ("50", "default", "5.0"),
        ("50", "default", "5.0"),
    ]
    prints = {k: checkpoint.fingerprint(v) for k, v in two_models.items()}
    assert all(r["checkpoint"] == prints[r["model"]] for r in rows)
    for name, length, rate in (("short", "30", "0"), ("default", "50", "5")):
        out = tmp_path / name
        main(
            ["sample", "--checkpoint", str(two_models[name]), "--length", length, *common]
            + ["--rot-rate", rate, "--out", str(out)]
        )
        for i in range(2):
            alone = (out / f"len00{length}_000{i}.pdb").read_text()
            assert (tmp_path / "routed" / f"len00{length}_000{i}.pdb").read_text() == alone
        with open(out / "manifest.csv", newline="") as handle:
            assert {r["model"] for r in csv.DictReader(handle)} == {str(two_models[name])}
    # worker processes write the same files, each route in its own pool
    main(
        ["sample", "--lengths", "30,12,50", *common, "--workers", "2", "--out", str(tmp_path / "w")]
    )
    for row in rows:
        assert (tmp_path / "w" / row["file"]).read_text() == (
            tmp_path / "routed" / row["file"]
        ).read_text()
    # a named rate applies to every model of the run
    main(
        ["sample", "--lengths", "30,50", *common, "--rot-rate", "7", "--out", str(tmp_path / "c7")]
    )
    with open(tmp_path / "c7" / "manifest.csv", newline="") as handle:
        assert {(r["model"], r["rot_rate"]) for r in csv.DictReader(handle)} == {
            ("short", "7.0"),
            ("default", "7.0"),
        }


def test_the_api_samples_a_length_with_the_model_the_command_line_picks(two_models, monkeypatch):
    import protgen

    monkeypatch.setattr(checkpoint, "default_checkpoint", lambda kind="default": two_models[kind])
    torch.set_num_threads(1)
    routed = protgen.sample(length=30, num=1, steps=3, seed=2)
    alone = protgen.sample(
        protgen.load_model(two_models["short"]), length=30, num=1, steps=3, seed=2, rot_rate=0
    )
    other = protgen.sample(
        protgen.load_model(two_models["default"]), length=30, num=1, steps=3, seed=2, rot_rate=0
    )
    assert (routed == alone).all() and not (routed == other).all()


def test_shipped_routing_serves_short_chains_with_the_short_model():
    """The shipped short-chain model declares 40–128 residues; every other length goes to
    default.pt."""
    from protgen.sampling.routes import shipped_checkpoint_for

    assert checkpoint.load(checkpoint.default_checkpoint("short")).serving.lengths == (40, 128)
    picked = {n: shipped_checkpoint_for(n)[0] for n in (39, 40, 100, 128, 129, 300)}
    assert picked == {
        39: "default",
        40: "short",
        100: "short",
        128: "short",
        129: "default",
        300: "default",
    }


def test_a_length_no_route_or_two_routes_sample_is_refused(two_models, tmp_path):
    from protgen.errors import ConfigError
    from protgen.sampling.config import SampleConfig
    from protgen.sampling.directory import sample_to_directory
    from protgen.sampling.routes import Route

    config = SampleConfig(lengths=(30, 50), num=1)
    short = Route(two_models["short"], "short", (30,))
    with pytest.raises(ConfigError, match="50 residues: no model of the run"):
        sample_to_directory([short], tmp_path / "a", config)
    anyone = Route(two_models["default"], "default", None)
    with pytest.raises(ConfigError, match="30 residues: several models"):
        sample_to_directory([short, anyone], tmp_path / "b", config)
    loaded = checkpoint.load_model(two_models["short"])
    with pytest.raises(ConfigError, match="trained= is for one checkpoint"):
        sample_to_directory([short], tmp_path / "c", config, trained=loaded)
    assert not any((tmp_path / d).exists() for d in "abc")


def test_a_stored_serving_record_that_could_not_have_been_written_is_one_line(two_models, tmp_path):
    from protgen.errors import CheckpointError

    payload = torch.load(two_models["short"], weights_only=True)
    for bad in ({"lengths": [128, 40]}, {"rot_rate": float("nan")}, {"rot_rate": -1.0}, [1, 2]):
        torch.save({**payload, "serving": bad}, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError) as error:
            checkpoint.load(tmp_path / "bad.pt")
        assert "not a complete protgen checkpoint" in str(error.value)
        assert "\n" not in str(error.value)


def test_the_manifest_names_shipped_files_by_name_and_others_by_path():
    from protgen.sampling.routes import model_name

    assert model_name(checkpoint.default_checkpoint("motif")) == "motif"
    assert model_name("runs/x/checkpoint.pt") == "runs/x/checkpoint.pt"
