"""manifest.csv: one row per sampled backbone, what made it — written by ``protgen sample``, read
by ``protgen eval`` (motif columns) and by later runs into the same folder."""

import csv
import io
from dataclasses import dataclass, fields
from pathlib import Path

from protgen.files import atomic_path

__all__ = ["ManifestRow", "MANIFEST_FIELDS", "read_manifest", "write_manifest"]


@dataclass(frozen=True)
class ManifestRow:
    """One sampled backbone."""

    file: str  # the structure file, relative to the manifest's folder
    length: int  # residues
    index: int  # the sample's index (per length; per run for scaffolds and emerging lengths)
    seed: int  # the sample's own seed
    steps: int  # Euler steps
    rot_rate: float | None  # the rotation schedule's c; None: the learned rate
    checkpoint: str  # fingerprint of the model's file
    # the model: a shipped model's name (short, default, motif, ...) or the checkpoint path given
    model: str
    seconds: float  # sampling time per sample of its batch
    clash_guidance: float  # η; 0 = off
    langevin: float  # κ; 0 = the ODE
    noise_scale: float  # η of the stochastic sampler
    # scaffolds: the motif's structure file, relative to the manifest's folder (absolute only
    # where no relative path exists; older manifests hold the path as given)
    motif_file: str | None = None
    contig: str | None = None  # scaffolds: the contig with the drawn scaffold lengths
    motif_positions: str | None = None  # scaffolds: 1-based output ranges, "8-27;40-59"
    motif_residues: str | None = None  # scaffolds: the motif file's residues, "A16-35;A52-71"
    # secondary-structure condition: the requested states (H, E, L; ? unconstrained), where the
    # string came from (--ss-from FILE[:CHAIN]; empty for --ss) and the guidance weight w
    ss: str | None = None
    ss_source: str | None = None
    guidance: float | None = None

    def to_row(self) -> dict[str, str]:
        """The CSV row (None as an empty cell, seconds to the millisecond)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = "" if value is None else f"{value:.3f}" if f.name == "seconds" else value
        return out

    @staticmethod
    def from_row(row: dict[str, str]) -> "ManifestRow":
        """A CSV row (cells a manifest lacks read as empty); a cell that does not parse raises
        ValueError."""
        values = {}
        for name in MANIFEST_FIELDS:
            cell = row.get(name) or ""
            if name in _INTS:
                values[name] = int(cell or 0)
            elif name in _FLOATS:
                values[name] = float(cell or 0.0)
            elif name in ("rot_rate", "guidance"):
                values[name] = float(cell) if cell else None
            else:
                values[name] = cell or (None if name in _OPTIONAL else "")
        return ManifestRow(**values)


_INTS = ("length", "index", "seed", "steps")
_FLOATS = ("seconds", "clash_guidance", "langevin", "noise_scale")
_OPTIONAL = ("motif_file", "contig", "motif_positions", "motif_residues", "ss", "ss_source")
MANIFEST_FIELDS = tuple(f.name for f in fields(ManifestRow))


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """The rows of a manifest.csv. A file without a ``file`` column raises KeyError; rows whose
    cells do not parse are left out."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if "file" not in (reader.fieldnames or ()):
            raise KeyError("file")
        rows = []
        for row in reader:
            try:
                rows.append(ManifestRow.from_row(row))
            except ValueError:
                continue
    return rows


def write_manifest(path: str | Path, rows: list[ManifestRow]) -> None:
    """manifest.csv, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS)
    writer.writeheader()
    writer.writerows(row.to_row() for row in rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())
