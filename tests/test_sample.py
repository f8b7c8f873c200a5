"""protgen sample: files and manifest, reproducibility by seed, no silent overwrite, bad input."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from fixtures import training_set

from protgen.data.structure import read_structure
from protgen.errors import ConfigError
from protgen.network.config import PRESETS
from protgen.sampling.config import parse_lengths
from protgen.training.config import ModelConfig, TrainConfig
from protgen.training.loop import train


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ckpt")
    ts = training_set(tmp)
    config = TrainConfig(
        steps=3, batch_size=2, crop_length=40, warmup=1, val_every=10**6, checkpoint_every=3
    )
    return train(ts.path, tmp / "run", ModelConfig(PRESETS["tiny"]), config).checkpoint


def _sample(*args):
    return subprocess.run(
        [sys.executable, "-m", "protgen", "sample", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_a_length_listed_twice_gets_twice_the_samples_in_files_of_their_own():
    """Bug: `--lengths 12,12 --num 1` wrote len0012_0000 twice (the second overwrote the first)
    and listed it twice in the manifest. A repeated length now continues the numbering, and a
    length listed once keeps the names and seeds it had."""
    from protgen.sampling.config import SampleConfig, sample_seed
    from protgen.sampling.jobs import plan_jobs

    jobs, _ = plan_jobs(SampleConfig(lengths=(12, 20, 12), num=2, seed=5), "pdb", False)
    names = [j.name for j in jobs]
    assert len(set(names)) == len(names) == 6
    assert [(j.length, j.index) for j in jobs if j.length == 12] == [(12, i) for i in range(4)]
    assert all(j.seed == sample_seed(5, j.length, j.index) for j in jobs)
    once, _ = plan_jobs(SampleConfig(lengths=(12, 20), num=2, seed=5), "pdb", False)
    assert [(j.name, j.seed) for j in once] == [
        (j.name, j.seed) for j in jobs if j.length == 20 or j.index < 2
    ]


def test_files_manifest_and_reproducibility(tmp_path, tiny_checkpoint):
    common = [
        "--checkpoint",
        str(tiny_checkpoint),
        "--lengths",
        "12,20",
        "--num",
        "3",
        "--steps",
        "8",
        "--batch-size",
        "2",
    ]
    out = _sample(*common, "--out", str(tmp_path / "a"), "--seed", "7")
    assert out.returncode == 0, out.stderr
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == [
        "len0012_0000.pdb",
        "len0012_0001.pdb",
        "len0012_0002.pdb",
        "len0020_0000.pdb",
        "len0020_0001.pdb",
        "len0020_0002.pdb",
        "manifest.csv",
    ]
    with open(tmp_path / "a" / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["length"]) for r in rows] == [12, 12, 12, 20, 20, 20] and all(
        r["steps"] == "8" for r in rows
    )
    # a fixed-length model's default rotation schedule
    assert all(r["rot_rate"] == "5.0" for r in rows)
    assert len({r["checkpoint"] for r in rows}) == 1 and all(float(r["seconds"]) > 0 for r in rows)
    chain = read_structure(tmp_path / "a" / "len0020_0001.pdb").chains[0]
    assert len(chain) == 20 and chain.atom_mask.all() and set(chain.sequence) == {"G"}
    ca = chain.atoms[:, 1]
    assert np.isfinite(chain.atoms).all() and np.ptp(ca, axis=0).max() > 1.0
    # Same seed → identical files (even with another batch size); another seed → different files.
    assert (
        _sample(
            *common[:-2], "--batch-size", "3", "--out", str(tmp_path / "b"), "--seed", "7"
        ).returncode
        == 0
    )
    assert _sample(*common, "--out", str(tmp_path / "c"), "--seed", "8").returncode == 0
    same = (tmp_path / "a" / "len0020_0001.pdb").read_bytes() == (
        tmp_path / "b" / "len0020_0001.pdb"
    ).read_bytes()
    a_atoms = read_structure(tmp_path / "a" / "len0020_0001.pdb").chains[0].atoms
    b_atoms = read_structure(tmp_path / "b" / "len0020_0001.pdb").chains[0].atoms
    assert same or np.abs(a_atoms - b_atoms).max() <= 2e-3
    rerun = _sample(*common, "--out", str(tmp_path / "d"), "--seed", "7")
    assert rerun.returncode == 0
    assert all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "d" / f).read_bytes()
        for f in files
        if f.endswith(".pdb")
    )
    assert (tmp_path / "a" / "len0020_0001.pdb").read_bytes() != (
        tmp_path / "c" / "len0020_0001.pdb"
    ).read_bytes()


def test_stochastic_sampling_is_reproducible_per_seed_and_differs_from_the_ode(
    tmp_path, tiny_checkpoint
):
    common = [
        "--checkpoint",
        str(tiny_checkpoint),
        "--length",
        "16",
        "--num",
        "2",
        "--steps",
        "8",
        "--seed",
        "3",
    ]
    sde = ["--langevin", "2", "--noise-scale", "0.5"]
    for name, extra in (
        ("ode", []),
        ("a", [*sde, "--batch-size", "2"]),
        ("b", [*sde, "--batch-size", "1"]),
    ):
        out = _sample(*common, *extra, "--out", str(tmp_path / name))
        assert out.returncode == 0, out.stderr
    atoms = {
        n: read_structure(tmp_path / n / "len0016_0001.pdb").chains[0].atoms
        for n in ("ode", "a", "b")
    }
    # the noise is the sample's own, not its batch's
    assert np.abs(atoms["a"] - atoms["b"]).max() <= 2e-3
    assert np.abs(atoms["a"] - atoms["ode"]).max() > 0.1
    with open(tmp_path / "a" / "manifest.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    assert (row["langevin"], row["noise_scale"]) == ("2.0", "0.5")


def test_worker_processes_write_the_same_files_and_manifest_order(tmp_path, tiny_checkpoint):
    common = [
        "--checkpoint",
        str(tiny_checkpoint),
        "--lengths",
        "10,14",
        "--num",
        "2",
        "--steps",
        "5",
        "--batch-size",
        "1",
        "--threads",
        "1",
    ]
    assert _sample(*common, "--out", str(tmp_path / "one")).returncode == 0
    out = _sample(*common, "--workers", "2", "--out", str(tmp_path / "two"))
    assert out.returncode == 0, out.stderr
    names = ["len0010_0000.pdb", "len0010_0001.pdb", "len0014_0000.pdb", "len0014_0001.pdb"]
    assert all(
        (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes() for f in names
    )
    with open(tmp_path / "two" / "manifest.csv", newline="") as handle:
        assert [r["file"] for r in csv.DictReader(handle)] == names


def test_refuses_to_overwrite_unless_forced(tmp_path, tiny_checkpoint):
    args = [
        "--checkpoint",
        str(tiny_checkpoint),
        "--length",
        "10",
        "--num",
        "2",
        "--steps",
        "3",
        "--out",
        str(tmp_path / "o"),
    ]
    assert _sample(*args).returncode == 0
    before = (tmp_path / "o" / "len0010_0000.pdb").read_bytes()
    again = _sample(*args, "--seed", "5")
    assert again.returncode == 1 and "exists" in again.stderr and "--force" in again.stderr
    assert (tmp_path / "o" / "len0010_0000.pdb").read_bytes() == before
    assert _sample(*args, "--seed", "5", "--force").returncode == 0
    assert (tmp_path / "o" / "len0010_0000.pdb").read_bytes() != before


def test_trajectory_and_cif_output(tmp_path, tiny_checkpoint):
    out = _sample(
        "--checkpoint",
        str(tiny_checkpoint),
        "--length",
        "9",
        "--num",
        "1",
        "--steps",
        "4",
        "--trajectory",
        "--format",
        "cif",
        "--out",
        str(tmp_path / "t"),
    )
    assert out.returncode == 0, out.stderr
    s = read_structure(tmp_path / "t" / "len0009_0000_traj.cif")
    assert s.model_count == 5 and len(s.chains[0]) == 9
    assert len(read_structure(tmp_path / "t" / "len0009_0000.cif").chains[0]) == 9


@pytest.mark.parametrize(
    "args,message",
    [
        (["--length", "-5"], "outside 3..1000"),
        (["--length", "100000"], "outside 3..1000"),
        (["--lengths", "60:a"], "cannot read lengths"),
        (["--checkpoint", "/nonexistent.pt"], "no such checkpoint"),
        (["--num", "0"], "must be positive"),
        (["--langevin", "-1"], "must be ≥ 0"),
        (["--langevin", "200"], "need κ ≤ steps"),
        (["--workers", "0"], "must be positive"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, tiny_checkpoint, args, message):
    full = ["--checkpoint", str(tiny_checkpoint), *args] if "--checkpoint" not in args else args
    out = _sample(*full, "--out", str(tmp_path / "x"))
    assert out.returncode != 0 and message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_unwritable_directory_is_reported(tmp_path, tiny_checkpoint):
    (tmp_path / "file").write_text("x")
    out = _sample(
        "--checkpoint",
        str(tiny_checkpoint),
        "--length",
        "10",
        "--num",
        "1",
        "--out",
        str(tmp_path / "file" / "sub"),
    )
    assert out.returncode == 1 and "cannot write" in out.stderr


def test_length_ranges_include_their_stop():
    assert parse_lengths("60:200:20") == (60, 80, 100, 120, 140, 160, 180, 200)
    assert parse_lengths("50,70") == (50, 70)
    with pytest.raises(ConfigError):
        parse_lengths("60:200:0")


def test_clash_guidance_pushes_overlapping_segments_apart_equivariantly():
    """The nudge lowers the penalty of x̂_1, rotates with the input, and is off before t_start."""
    import torch

    from protgen.geometry import so3
    from protgen.geometry.rigid import Rigid
    from protgen.geometry.world import WorldState
    from protgen.method.generator import FrameVelocity
    from protgen.sampling.guidance import ClashGuidance, clash_penalty

    torch.manual_seed(0)
    ca = torch.cat(
        [
            torch.arange(8.0)[:, None] * torch.tensor([3.8, 0, 0]),
            torch.arange(8.0)[:, None] * torch.tensor([3.8, 0, 0]) + 1.0,
        ]
    )[None]
    x = WorldState.of(Rigid(so3.uniform((1, 16)), ca.clone()))

    class Fixed:
        x1_hat = ca

        def __call__(self, t, x_t):
            return FrameVelocity(torch.zeros(1, 16, 3), torch.zeros(1, 16, 3))

    guided = ClashGuidance(Fixed(), strength=0.05, t_start=0.6)
    t = torch.tensor([0.8])
    v = guided(t, x).v
    moved = ca + 0.2 * v  # the x̂_1 the nudged velocity reaches
    assert clash_penalty(moved, x.mask) < clash_penalty(ca, x.mask)
    assert (guided(torch.tensor([0.5]), x).v == 0).all()
    q = so3.uniform(())
    rotated = Fixed()
    rotated.x1_hat = ca @ q.T
    v_rot = ClashGuidance(rotated, 0.05, 0.6)(t, x).v
    assert torch.allclose(v_rot, v @ q.T, atol=1e-5)


def test_clash_guidance_does_not_bond_residues_across_a_chain_break():
    """Bug: CA–CA(next) terms joined array neighbours, so guidance pulled the ends of two chains
    of a /0 contig toward 3.8 Å. Two straight chains 20 Å apart, numbered with a jump: no
    penalty, no nudge; numbered consecutively they would be bonded."""
    import torch

    from protgen.geometry import so3
    from protgen.geometry.rigid import Rigid
    from protgen.geometry.world import WorldState
    from protgen.method.generator import FrameVelocity
    from protgen.sampling.guidance import ClashGuidance, clash_penalty

    chain = torch.arange(6.0)[:, None] * torch.tensor([3.8, 0, 0])
    ca = torch.cat([chain, chain + torch.tensor([0.0, 20.0, 0.0])])[None]
    index = torch.cat([torch.arange(6), 200 + torch.arange(6)])[None]
    mask = torch.ones(1, 12, dtype=torch.bool)
    assert clash_penalty(ca, mask, index) < 1e-9 and clash_penalty(ca, mask) > 100

    class Fixed:
        x1_hat = ca

        def __call__(self, t, x_t):
            return FrameVelocity(torch.zeros(1, 12, 3), torch.zeros(1, 12, 3))

    x = WorldState(Rigid(so3.uniform((1, 12)), ca.clone()), mask, index)
    guided = ClashGuidance(Fixed(), strength=0.05)
    assert guided(torch.tensor([0.8]), x).v.abs().max() < 1e-6
    one_chain = WorldState.of(x.frames, mask)
    assert guided(torch.tensor([0.8]), one_chain).v.abs().max() > 1.0


@pytest.mark.parametrize("kind", ["default", "short", "sparse", "motif", "insertion", "ss"])
def test_shipped_models_load_as_the_command_line_uses_them(kind):
    """Each model in protgen/weights loads with this code, at most 5 MB, with the network and
    process that `protgen sample` picks it for (--sparse: k = 48 nearest residues; --ss: the
    secondary-structure condition)."""
    from protgen.training.checkpoint import default_checkpoint, load_model

    path = default_checkpoint(kind)
    assert path.stat().st_size <= 5 * 10**6
    config = load_model(path).config
    assert config.network.neighbours == (48 if kind == "sparse" else 0)
    assert config.network.ss_condition == (kind == "ss")
    assert config.network.motif == (kind == "motif") and config.network.insertion == (
        kind == "insertion"
    )
    assert config.process.name == ("insertion" if kind == "insertion" else "frames")


def test_sparse_flag_samples_with_the_shipped_sparse_model(tmp_path):
    out = _sample(
        "--sparse", "--length", "30", "--num", "1", "--steps", "3", "--out", str(tmp_path / "s")
    )
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "s" / "manifest.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (
        row["length"] == "30"
        and len(read_structure(tmp_path / "s" / row["file"]).chains[0].atoms) == 30
    )


def test_manifest_rows_round_trip_and_older_manifests_still_read(tmp_path):
    """The manifest's schema is one record: rows written read back equal, and a manifest of an
    older protgen (without the sampler-option and motif columns) reads with empty defaults."""
    from protgen.sampling.manifest import ManifestRow, read_manifest, write_manifest

    rows = [
        ManifestRow("len0012_0000.pdb", 12, 0, 7, 100, 5.0, "abc", "short", 0.25, 0.0, 0.0, 1.0)
    ]
    scaffold = ManifestRow(
        "m_0000.pdb",
        30,
        0,
        9,
        50,
        None,
        "abc",
        "runs/m/checkpoint.pt",
        1.5,
        0.1,
        2.0,
        0.5,
        "/m.pdb",
        "3,A1-5",
        "4-8",
        "A1-5",
    )
    conditioned = ManifestRow(
        "len0005_0000.pdb",
        5,
        0,
        3,
        100,
        5.0,
        "abc",
        "ss",
        0.5,
        0.0,
        0.0,
        1.0,
        ss="HHE?L",
        guidance=2.0,
    )
    write_manifest(tmp_path / "manifest.csv", [*rows, scaffold, conditioned])
    assert read_manifest(tmp_path / "manifest.csv") == [*rows, scaffold, conditioned]
    text = (tmp_path / "manifest.csv").read_text().splitlines()
    assert text[1] == "len0012_0000.pdb,12,0,7,100,5.0,abc,short,0.250,0.0,0.0,1.0,,,,,,,"
    assert text[3].endswith(",1.0,,,,,HHE?L,,2.0")
    (tmp_path / "old.csv").write_text(
        "file,length,index,seed,steps,rot_rate,checkpoint,seconds\nx.pdb,20,1,3,100,,ff,0.5\n"
    )
    (old,) = read_manifest(tmp_path / "old.csv")
    assert (old.length, old.rot_rate, old.langevin, old.motif_positions) == (20, None, 0.0, None)
