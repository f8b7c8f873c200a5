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
    assert out.returncode != 0 and "unrecognized arguments" in out.stderr and "Traceback" not in out.stderr
