"""Small ProMod3 structure databases for the tests: the writer that mirrors
protgen.data.promod3's reader (protgen itself only reads them)."""

import struct
from pathlib import Path

import numpy as np

from protgen.data.promod3 import _BLOCKS, _HEADER


def write_structure_db(
    path: str | Path, entries: list[tuple[str, str, int, np.ndarray, str]]
) -> Path:
    """Write a structure database in protgen.data.promod3's layout.

    entries: (pdb_id, chain_id, first author residue number, atoms Å (L, 4, 3), sequence).
    Dihedrals, the uint16 blocks and profiles are written as zeros; DSSP as 'C'.
    """
    parts = [_HEADER, struct.pack("<Q", len(entries))]
    offset = 0
    for pdb_id, chain_id, first, atoms, _ in entries:
        parts += [
            struct.pack("<I", len(pdb_id)),
            pdb_id.encode(),
            struct.pack("<I", len(chain_id)),
            chain_id.encode(),
        ]
        parts.append(struct.pack("<IHh3f", offset, len(atoms), first, 0.0, 0.0, 0.0))
        offset += len(atoms)
    n = offset
    sequence = "".join(e[4] for e in entries).encode()
    coords = (
        np.concatenate([np.round(np.asarray(e[3]) * 100) for e in entries]).astype("<i2")
        if entries
        else np.zeros((0, 4, 3), "<i2")
    )
    for (name, width), content in zip(
        _BLOCKS, (sequence, coords.tobytes(), None, None, None, b"C" * n, None, None)
    ):
        parts += [struct.pack("<Q", n), content if content is not None else bytes(n * width)]
    path = Path(path)
    path.write_bytes(b"".join(parts))
    return path
