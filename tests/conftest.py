"""Shared test set-up: one torch thread, float64 helpers, fixtures built from ideal geometry."""

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

SHARED_PDB = Path(
    os.environ.get(
        "PROTGEN_SHARED_PDB", Path(__file__).resolve().parents[2] / "shared" / "data" / "pdb"
    )
)


@pytest.fixture
def shared_pdb() -> Path:
    """The shared folder of real structures; the test is skipped where it is absent."""
    if not SHARED_PDB.is_dir():
        pytest.skip(f"no shared structure data at {SHARED_PDB}")
    return SHARED_PDB


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """protgen's user cache (the reference sets' results) goes to a folder of this test session."""
    monkeypatch.setenv("PROTGEN_CACHE", str(tmp_path_factory.getbasetemp() / "user-cache"))
