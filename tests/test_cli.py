"""The command line: help, version, and one-line errors without tracebacks."""

import subprocess
import sys

import protgen


def _run(*args):
    return subprocess.run([sys.executable, "-m", "protgen", *args], capture_output=True, text=True)


def test_help_and_version():
    assert "Latent Process Generator Matching" in _run("--help").stdout
    out = _run("--version")
    assert out.returncode == 0 and protgen.__version__ in out.stdout


def test_unknown_flag_is_one_clear_line():
    out = _run("--frobnicate")
    assert (
        out.returncode != 0
        and "unrecognized arguments" in out.stderr
        and "Traceback" not in out.stderr
    )


def test_data_build_and_info_and_one_line_errors(tmp_path):
    import numpy as np
    from chains import HELIX, ideal_chain

    from protgen.data.structure import write_backbone

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.pdb").write_bytes(b"")
    out = _run("data", "build", str(tmp_path / "in"), "--out", str(tmp_path / "set"))
    # progress lines come first when stderr is not a terminal
    last = out.stderr.strip().splitlines()[-1]
    assert (
        out.returncode == 1 and last.startswith("protgen: error:") and "bad.pdb: empty file" in last
    )
    write_backbone(tmp_path / "in" / "helix.pdb", ideal_chain(HELIX, 45).astype(np.float32))
    out = _run(
        "data",
        "build",
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "set"),
        "--max-rg-ratio",
        "10",
        "--cluster-method",
        "greedy",
    )
    assert out.returncode == 0, out.stderr
    info = _run("data", "info", str(tmp_path / "set"))
    assert (
        "segments: 1" in info.stdout
        and "sequence clusters: 1" in info.stdout
        and "1  empty file" in info.stdout
    )
    out = _run("eval", str(tmp_path / "in" / "nothing"), "--out", str(tmp_path / "e"))
    assert out.returncode == 1 and "not a directory of structures" in out.stderr


def test_readme_set_up_is_two_commands_and_gives_the_cpu_only_route():
    """The README keeps exactly two set-up commands and says how to keep CUDA out (the pin alone
    does not); `protgen sample`'s first command writes into an ignored folder."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in setup.splitlines() if line.startswith("    ")]
    assert commands == [
        "pip install . && protgen sample --length 100 --num 5 --out samples",
        'pip install -e ".[test]" && python -m pytest',
    ]
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in setup
    assert "does not keep CUDA out" in setup
    assert "samples/" in (root / ".gitignore").read_text().splitlines()


def test_sparse_speed_ups_agree_between_help_and_readme():
    """--help and the README quote the same --sparse speed-ups (the Benchmarks' 2× and 5×)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    help_text = " ".join(_run("sample", "--help").stdout.split())
    pattern = r"~(\d+)[×x] faster at 300 residues, ~(\d+)[×x] at 1,000"
    assert (
        re.search(pattern, help_text).groups()
        == re.search(pattern, readme).groups()
        == (
            "2",
            "5",
        )
    )
