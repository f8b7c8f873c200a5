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
