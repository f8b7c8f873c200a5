"""The Python API: the same structures as the command line for the same seed, and the helpers
around them (biotite arrays, files, the quality panel, evaluation of arrays)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from fixtures import training_set

import protgen
from protgen.data.structure import read_structure
from protgen.network.config import PRESETS
from protgen.training.config import ModelConfig, TrainConfig
from protgen.training.loop import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    ts = training_set(tmp)
    train(
        ts.path,
        tmp / "run",
        ModelConfig(PRESETS["tiny"]),
        TrainConfig(steps=3, batch_size=2, crop_length=40, warmup=1, checkpoint_every=3),
    )
    return tmp / "run"


def test_api_samples_are_the_command_lines_samples(run_dir, tmp_path):
    model = protgen.load_model(run_dir)
    atoms = protgen.sample(model, length=14, num=2, seed=5, steps=4)
    assert atoms.shape == (2, 14, 4, 3) and np.isfinite(atoms).all()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "protgen",
            "sample",
            "--checkpoint",
            str(run_dir),
            "--length",
            "14",
            "--num",
            "2",
            "--seed",
            "5",
            "--steps",
            "4",
            "--out",
            str(tmp_path / "cli"),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    for k in range(2):
        written = read_structure(tmp_path / "cli" / f"len0014_{k:04d}.pdb").chains[0].atoms
        assert np.abs(written - atoms[k]).max() < 1e-3  # PDB files hold 3 decimals


def test_helpers_write_convert_and_measure(run_dir, tmp_path):
    atoms = protgen.sample(protgen.load_model(run_dir), length=12, num=3, steps=2)
    array = protgen.to_atom_array(atoms[0])
    assert array.array_length() == 48 and set(array.atom_name) == {"N", "CA", "C", "O"}
    protgen.write(tmp_path / "one.cif", atoms[0])
    assert read_structure(tmp_path / "one.cif").chains[0].atoms.shape == (12, 4, 3)
    assert protgen.quality(atoms[0]).length == 12
    summary = protgen.evaluate(list(atoms), tmp_path / "eval", mpnn="off")
    assert summary.samples.count == 3 and (tmp_path / "eval" / "report.md").exists()


def test_import_is_cheap():
    code = (
        "import sys, protgen; print(sorted(m for m in ('torch', 'biotite', 'matplotlib') if m in "
        "sys.modules))"
    )
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "[]"
    )
