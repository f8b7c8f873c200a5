"""What a new user meets: every bad input, permission problem, full disk and interrupt ends in one
line naming the problem (exit 1, or 130 when interrupted), and nothing the user made is lost.

Most cases run the command line in-process (``protgen.cli.main.main``) to stay fast; the
interrupt cases use real processes and signals.
"""

import csv
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from chains import HELIX, STRAND, ideal_chain
from fixtures import training_set

from protgen.cli.main import main
from protgen.data.structure import write_backbone


def run(capsys, *argv) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``protgen argv``, run in this process."""
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *phrases):
    """Exit 1 and a last stderr line 'protgen: error: …' holding every phrase (progress lines may
    come before it when stderr is not a terminal)."""
    lines = err.strip().splitlines()
    last = lines[-1] if lines else ""
    assert code == 1 and last.startswith("protgen: error:") and "Traceback" not in err, err
    for phrase in phrases:
        assert phrase in last, (phrase, last)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    return training_set(tmp_path_factory.mktemp("set"))


@pytest.fixture(scope="module")
def tiny_run(tiny_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    assert main_ok(
        [
            "train",
            "--data",
            tiny_set.path,
            "--out",
            out,
            "--preset",
            "tiny",
            "--steps",
            "4",
            "--batch-size",
            "2",
            "--crop-length",
            "40",
            "--warmup",
            "1",
            "--checkpoint-every",
            "2",
            "--threads",
            "1",
        ]
    )
    return out


def main_ok(argv) -> bool:
    main([str(a) for a in argv])
    return True


# ---- data loss -----------------------------------------------------------------------------


def test_build_force_replaces_only_a_training_set_or_an_empty_folder(capsys, tmp_path, tiny_set):
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    src = tiny_set.path.parent / "pdb"
    code, _, err = run(
        capsys, "data", "build", src, "--out", precious, "--force", "--max-rg-ratio", "10"
    )
    one_line_error(code, err, "neither a protgen training set nor empty")
    assert (precious / "thesis.tex").read_text() == "years of work"
    (tmp_path / "empty").mkdir()
    code, _, _ = run(
        capsys,
        "data",
        "build",
        src,
        "--out",
        tmp_path / "empty",
        "--force",
        "--max-rg-ratio",
        "10",
        "--cluster-method",
        "greedy",
    )
    assert code == 0 and (tmp_path / "empty" / "dataset.json").exists()
    code, _, _ = run(
        capsys,
        "data",
        "build",
        src,
        "--out",
        tmp_path / "empty",
        "--force",
        "--max-rg-ratio",
        "10",
        "--cluster-method",
        "greedy",
    )
    assert code == 0, "a training set may be replaced"


def test_sample_force_keeps_manifest_rows_of_files_that_still_exist(capsys, tmp_path, tiny_run):
    out = tmp_path / "s"
    common = [
        "sample",
        "--checkpoint",
        tiny_run,
        "--num",
        "2",
        "--steps",
        "2",
        "--out",
        out,
        "--threads",
        "1",
    ]
    assert run(capsys, *common, "--length", "12")[0] == 0
    assert run(capsys, *common, "--length", "15", "--force")[0] == 0
    with open(out / "manifest.csv", newline="") as handle:
        files = [r["file"] for r in csv.DictReader(handle)]
    assert files == ["len0012_0000.pdb", "len0012_0001.pdb", "len0015_0000.pdb", "len0015_0001.pdb"]
    (out / "len0012_0000.pdb").unlink()
    assert run(capsys, *common, "--length", "15", "--force")[0] == 0
    with open(out / "manifest.csv", newline="") as handle:
        assert [r["file"] for r in csv.DictReader(handle)] == [
            "len0012_0001.pdb",
            "len0015_0000.pdb",
            "len0015_0001.pdb",
        ]


# ---- one line instead of a traceback -------------------------------------------------------


def test_out_that_is_a_file_or_the_working_directory(capsys, tmp_path, tiny_set, monkeypatch):
    src = tiny_set.path.parent / "pdb"
    (tmp_path / "file").write_text("x")
    one_line_error(
        *run(capsys, "data", "build", src, "--out", tmp_path / "file")[::2],
        "is a file, not a directory",
    )
    one_line_error(
        *run(capsys, "eval", src, "--out", tmp_path / "file", "--mpnn", "off")[::2],
        "is a file, not a directory",
    )
    monkeypatch.chdir(tmp_path)
    one_line_error(
        *run(capsys, "data", "build", src, "--out", ".", "--force")[::2], "current directory"
    )


def test_unreadable_inputs_name_the_permission_problem(capsys, tmp_path, tiny_set, monkeypatch):
    """Root reads everything, so the permission check is exercised through os.access."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: Path(p) != locked and real_access(p, mode, **kw)
    )
    one_line_error(
        *run(capsys, "data", "build", locked, "--out", tmp_path / "o")[::2], "permission denied"
    )
    one_line_error(*run(capsys, "eval", locked, "--out", tmp_path / "e")[::2], "permission denied")
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: Path(p) != tiny_set.path and real_access(p, mode, **kw)
    )
    one_line_error(*run(capsys, "data", "info", tiny_set.path)[::2], "permission denied")
    one_line_error(
        *run(capsys, "train", "--data", tiny_set.path, "--out", tmp_path / "r")[::2],
        "permission denied",
    )


def test_one_unreadable_file_in_eval_is_skipped_and_reported(capsys, tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(3):
        write_backbone(folder / f"s{k}.pdb", ideal_chain(HELIX, 30).astype(np.float32))
    real = Path.read_bytes
    monkeypatch.setattr(
        Path,
        "read_bytes",
        lambda self: (
            (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
            if self.name == "s1.pdb"
            else real(self)
        ),
    )
    code, out, _ = run(capsys, "eval", folder, "--out", tmp_path / "e", "--mpnn", "off")
    assert code == 0 and "evaluated 2 structures" in out
    assert "s1.pdb (cannot read (Permission denied))" in (tmp_path / "e" / "report.md").read_text()


def test_config_values_of_the_wrong_type(capsys, tmp_path, tiny_set):
    (tmp_path / "c.toml").write_text('[train]\nsteps = "five"\n')
    one_line_error(
        *run(
            capsys,
            "train",
            "--data",
            tiny_set.path,
            "--out",
            tmp_path / "r",
            "--config",
            tmp_path / "c.toml",
        )[::2],
        "steps = 'five' is not of type int",
    )
    (tmp_path / "c.toml").write_text("[loss]\naux_weight = true\n")
    one_line_error(
        *run(
            capsys,
            "train",
            "--data",
            tiny_set.path,
            "--out",
            tmp_path / "r",
            "--config",
            tmp_path / "c.toml",
        )[::2],
        "aux_weight = True is not of type float",
    )
    (tmp_path / "c.toml").write_text('[loss]\ntime_density = "late"\n')
    one_line_error(
        *run(
            capsys,
            "train",
            "--data",
            tiny_set.path,
            "--out",
            tmp_path / "r",
            "--config",
            tmp_path / "c.toml",
        )[::2],
        "time_density 'late': choose one of uniform, mid",
    )


def test_a_set_without_training_clusters_warns_at_build_and_fails_at_train(capsys, tmp_path):
    folder = tmp_path / "pdb"
    folder.mkdir()
    write_backbone(folder / "one.pdb", ideal_chain(HELIX, 45).astype(np.float32))
    code, _, err = run(
        capsys,
        "data",
        "build",
        folder,
        "--out",
        tmp_path / "set",
        "--val-fraction",
        "0.99999",
        "--max-rg-ratio",
        "10",
        "--cluster-method",
        "greedy",
    )
    assert code == 0 and "warning: all 1 cluster(s) went to validation" in err
    one_line_error(
        *run(capsys, "train", "--data", tmp_path / "set", "--out", tmp_path / "r")[::2],
        "no training segments",
    )


def test_disk_full_while_writing_a_checkpoint_or_a_sample(
    capsys, tmp_path, tiny_set, tiny_run, monkeypatch
):
    import shutil

    import torch

    from protgen.data import structure

    def enforce_fail(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at inline_container.cc:672] . unexpected pos 1099 vs 1024"
        )

    monkeypatch.setattr(torch, "save", enforce_fail)
    monkeypatch.setattr(
        shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 1000)
    )
    code, _, err = run(
        capsys,
        "train",
        "--data",
        tiny_set.path,
        "--out",
        tmp_path / "r",
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--crop-length",
        "40",
        "--checkpoint-every",
        "1",
        "--threads",
        "1",
    )
    one_line_error(code, err, "the disk is full", "no checkpoint was written")
    monkeypatch.undo()

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(structure, "write_backbone", full)
    monkeypatch.setattr("protgen.sampling.sample.write_backbone", full)
    code, _, err = run(
        capsys,
        "sample",
        "--checkpoint",
        tiny_run,
        "--length",
        "12",
        "--num",
        "2",
        "--steps",
        "2",
        "--out",
        tmp_path / "s",
    )
    one_line_error(code, err, "the disk is full", "0 backbone(s) written so far are kept")


def test_checkpoint_paths_rates_and_threads(capsys, tmp_path, tiny_run):
    common = ["--length", "12", "--num", "1", "--steps", "2", "--threads", "1"]
    assert (
        run(capsys, "sample", "--checkpoint", tiny_run, *common, "--out", tmp_path / "a")[0] == 0
    ), "a run directory works"
    one_line_error(
        *run(capsys, "sample", "--checkpoint", tmp_path, *common, "--out", tmp_path / "b")[::2],
        "directory without checkpoint.pt",
    )
    one_line_error(
        *run(capsys, "sample", "--rot-rate", "-5", *common, "--out", tmp_path / "c")[::2],
        "--rot-rate must be ≥ 0",
    )
    one_line_error(
        *run(capsys, "sample", "--threads", "0", "--length", "12", "--out", tmp_path / "d")[::2],
        "--threads must be at least 1",
    )


# ---- training semantics ---------------------------------------------------------------------


def test_resume_keeps_its_settings_applies_allowed_flags_and_refuses_others(
    capsys, tmp_path, tiny_set
):
    out = tmp_path / "r"
    base = ["train", "--data", tiny_set.path, "--out", out, "--threads", "1"]
    assert (
        run(
            capsys,
            *base,
            "--preset",
            "tiny",
            "--steps",
            "3",
            "--batch-size",
            "2",
            "--crop-length",
            "40",
            "--warmup",
            "1",
        )[0]
        == 0
    )
    code, stdout, _ = run(capsys, *base, "--resume")
    from protgen.training import checkpoint

    assert code == 0 and checkpoint.load(out).train_config.steps == 3, (
        "no --steps: the stored target stays"
    )
    one_line_error(
        *run(capsys, *base, "--resume", "--batch-size", "4")[::2],
        "--batch-size cannot change on --resume",
    )
    one_line_error(
        *run(capsys, *base, "--resume", "--preset", "small")[::2],
        "--resume continues the stored model",
    )
    code, stdout, err = run(capsys, *base, "--resume", "--steps", "5", "--lr", "0.001")
    assert code == 0 and checkpoint.load(out).step == 5
    assert "resuming at step 3 with steps 3 → 5; lr 0.0002 → 0.001" in stdout
    assert "training  5/5" in err and "/2 " not in err, (
        "progress counts from the absolute step, not from 0 of 2"
    )


def test_time_limit_checkpoints_exits_zero_and_resume_finishes(capsys, tmp_path, tiny_set):
    from protgen.training import checkpoint

    out = tmp_path / "r"
    base = ["train", "--data", tiny_set.path, "--out", out, "--threads", "1"]
    code, stdout, _ = run(
        capsys,
        *base,
        "--preset",
        "tiny",
        "--steps",
        "50",
        "--batch-size",
        "2",
        "--crop-length",
        "40",
        "--warmup",
        "1",
        "--time-limit",
        "0.00001",
    )
    stopped_at = checkpoint.load(out).step
    assert code == 0 and "time limit (1e-05 min) reached at step" in stdout and stopped_at < 50
    code, stdout, _ = run(capsys, *base, "--resume", "--time-limit", "0")
    assert code == 0 and checkpoint.load(out).step == 50 and "time limit" not in stdout
    one_line_error(
        *run(capsys, *base, "--resume", "--time-limit", "-1")[::2],
        "--time-limit -1: need minutes ≥ 0",
    )


def test_warm_up_longer_than_the_run_is_warned(capsys, tmp_path, tiny_set):
    code, _, err = run(
        capsys,
        "train",
        "--data",
        tiny_set.path,
        "--out",
        tmp_path / "r",
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--crop-length",
        "40",
        "--threads",
        "1",
    )
    assert (
        code == 0
        and "warning: the warm-up (500 steps) is not shorter than the run (2 steps)" in err
    )


def _interrupt(cmd, ready, timeout=120) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(
        [sys.executable, "-m", "protgen", *map(str, cmd)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.time() + timeout
    while not ready() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_ctrl_c_during_a_parallel_eval_prints_one_line(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(40):
        write_backbone(
            folder / f"s{k:02d}.pdb", ideal_chain([HELIX, STRAND][k % 2], 60 + k).astype(np.float32)
        )
    done = _interrupt(
        ["eval", folder, "--out", tmp_path / "e", "--workers", "2", "--mpnn", "off"],
        lambda: (tmp_path / "e" / "cache.jsonl").exists(),
    )
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == "protgen: interrupted"


# ---- friction ----------------------------------------------------------------------------------


def test_flags_that_do_not_fit_the_run_or_the_model(capsys, tmp_path, tiny_set, tiny_run):
    train = ["train", "--data", tiny_set.path, "--out", tiny_run, "--threads", "1", "--resume"]
    one_line_error(
        *run(capsys, *train, "--init-from", tiny_run)[::2], "cannot be combined with --resume"
    )
    one_line_error(
        *run(capsys, *train, "--process", "insertion")[::2], "--resume continues the stored model"
    )
    write_backbone(tmp_path / "motif.pdb", ideal_chain([HELIX] * 20).astype(np.float32))
    sample = ["sample", "--checkpoint", tiny_run, "--num", "1", "--steps", "2", "--threads", "1"]
    one_line_error(
        *run(capsys, *sample, "--min-length", "20", "--out", tmp_path / "a")[::2],
        "bound the emerging length of an insertion model",
    )
    one_line_error(
        *run(capsys, *sample, "--motif", tmp_path / "motif.pdb", "--out", tmp_path / "b")[::2],
        "needs both --motif FILE and --contig",
    )
    one_line_error(
        *run(capsys, *sample, "--sparse", "--out", tmp_path / "c")[::2],
        "a --checkpoint's own network decides",
    )
    one_line_error(
        *run(
            capsys,
            "sample",
            *sample[3:],
            "--sparse",
            "--process",
            "insertion",
            "--out",
            tmp_path / "d",
        )[::2],
        "--sparse is a fixed-length model",
    )
    assert not any((tmp_path / d).exists() for d in "abcd"), "a refused command writes nothing"


def test_inspect_shows_configs_fingerprints_and_the_training_summary(capsys, tiny_run, tiny_set):
    code, out, err = run(capsys, "inspect", tiny_run)
    assert code == 0 and not err
    assert (
        "network: 22,435 parameters" in out
        and "process: name frames" in out
        and "checkpoint at step 4" in out
    )
    assert f"data fingerprint: {tiny_set.meta.fingerprint}" in out
    code, out, _ = run(capsys, "inspect", tiny_run, "--json")
    import json

    info = json.loads(out)
    assert (
        code == 0
        and info["step"] == 4
        and info["data_fingerprint"] == tiny_set.meta.fingerprint
        and "model" not in info
    )


def test_progress_off_a_terminal_prints_steps_and_the_final_line_once(capsys, tmp_path, tiny_run):
    code, _, err = run(
        capsys,
        "sample",
        "--checkpoint",
        tiny_run,
        "--length",
        "12",
        "--num",
        "1",
        "--steps",
        "5",
        "--threads",
        "1",
        "--out",
        tmp_path / "s",
    )
    lines = [line for line in err.splitlines() if line.startswith("sampling")]
    assert code == 0 and lines and "\r" not in err, err
    # (steps done, files written)
    states = [(line.split()[1], line.rsplit("  ", 1)[-1]) for line in lines]
    assert states[-1] == ("5/5", "1/1 written") and len(states) == len(set(states)), lines


def test_default_threads_are_half_the_cores_per_process(monkeypatch):
    from protgen.cli import threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert threads.default_threads() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads.default_threads() == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert threads.default_threads() == 1


def test_eval_real_chains_are_distinct_and_too_few_are_warned(capsys, tmp_path, tiny_set):
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(3):
        write_backbone(folder / f"s{k}.pdb", ideal_chain([HELIX] * (40 + 5 * k)).astype(np.float32))
    code, _, err = run(
        capsys,
        "eval",
        folder,
        "--out",
        tmp_path / "e",
        "--reference",
        tiny_set.path,
        "--max-reference",
        "50",
        "--mpnn",
        "off",
        "--threads",
        "1",
    )
    import json

    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    segments = len(tiny_set.records)
    assert code == 0 and f"the reference set has only {segments} segments" in err
    assert summary["reference_distinct_chains"] == summary["reference"]["count"] == segments
    assert f"real chains: {segments} distinct chains" in (tmp_path / "e" / "report.md").read_text()
