"""ProMod3's structure database (Debian's ``promod3-data``): a validated, memory-mapped reader.

The file ``structure_db.dat`` holds ~21,000 experimental PDB chain segments with N, CA, C, O
coordinates and one-letter sequences. It is read without ProMod3: the layout below was worked out
from the file (little-endian) and every count it repeats is checked, so another version of the
format is refused with a one-line error instead of being misread.

=================  ==========================================================================
header             uint32 magic 1234, uint32 version 2, size-of-type checks: 77 bytes in all
entries            uint64 E, then E records: uint32 n + n bytes PDB id; uint32 n + n bytes chain
                   id; uint32 first residue's offset; uint16 length; int16 author number of the
                   first residue; float32[3] translation (Å) added to the stored coordinates
sequence           uint64 N, N bytes (one-letter codes)
coordinates        uint64 N, N × int16[4][3]: N, CA, C, O in units of 0.01 Å
dihedrals          uint64 N, N × int16[2]
two further        uint64 N, N × uint16 (twice)
DSSP               uint64 N, N bytes
profiles           uint64 N, N × 40 bytes (twice); the file ends exactly there
=================  ==========================================================================

A ``.deb`` of the package is accepted too: it is an ``ar`` archive whose ``data.tar.xz`` holds the
file; :func:`extract_from_deb` copies it out with the standard library.
"""

import lzma
import shutil
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protgen.data.structure import ONE_TO_THREE, Chain
from protgen.errors import StructureError

__all__ = [
    "StructureDB",
    "read_structure_db",
    "extract_from_deb",
    "is_structure_db",
    "DEB_MEMBER",
]

MAGIC, VERSION = 1234, 2
# Bytes 8..76: ProMod3's size-of-type checks, the same in every file of this format version.
_TYPE_CHECKS = bytes.fromhex(
    "04000000040000000200000008000000020000000600000058000000280000001800000006000000"
    "04000000010000000000803f01010001000000000000000100ffffffff"
)
_HEADER = struct.pack("<II", MAGIC, VERSION) + _TYPE_CHECKS
# (block name, bytes per residue) after the entries, in file order.
_BLOCKS = (
    ("sequence", 1),
    ("coordinates", 24),
    ("dihedrals", 4),
    ("uint16 block 1", 2),
    ("uint16 block 2", 2),
    ("DSSP", 1),
    ("profile 1", 40),
    ("profile 2", 40),
)
DEB_MEMBER = "usr/share/promod3/loop_data/structure_db.dat"


@dataclass(frozen=True)
class StructureDB:
    """A memory-mapped structure database.

    pdb_ids, chain_ids: (E,) str; offsets: (E,) int, first residue of each entry; lengths: (E,)
    int; first_res: (E,) int, author number of the first residue; translation: Å, (E, 3);
    sequence: (N,) uint8 one-letter codes; coords: 0.01 Å, (N, 4, 3) int16 (N, CA, C, O).
    """

    path: Path
    pdb_ids: np.ndarray
    chain_ids: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    first_res: np.ndarray
    translation: np.ndarray
    sequence: np.ndarray
    coords: np.ndarray

    def __len__(self) -> int:
        return len(self.pdb_ids)

    def name(self, k: int) -> str:
        """``PDBID_CHAIN`` of entry k."""
        return f"{self.pdb_ids[k]}_{self.chain_ids[k]}"

    def chain(self, k: int) -> Chain:
        """Entry k as a chain record: atoms in Å, (L, 4, 3) float32, all present."""
        lo, n = int(self.offsets[k]), int(self.lengths[k])
        atoms = self.coords[lo : lo + n].astype(np.float32) * 0.01 + self.translation[k].astype(
            np.float32
        )
        sequence = self.sequence[lo : lo + n].tobytes().decode("ascii")
        unknown = set(sequence) - set(ONE_TO_THREE)
        if unknown:
            raise StructureError(
                f"{self.path}#{self.name(k)}",
                f"non-standard residue codes {''.join(sorted(unknown))}",
            )
        return Chain(
            chain_id=str(self.chain_ids[k]),
            res_ids=int(self.first_res[k]) + np.arange(n),
            ins_codes=np.full(n, ""),
            res_names=np.array([ONE_TO_THREE[c] for c in sequence]),
            sequence=sequence,
            atoms=atoms,
            atom_mask=np.ones((n, 4), bool),
        )


def is_structure_db(path: str | Path) -> bool:
    """True for a file that starts like a ProMod3 structure database (magic and version)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(8) == _HEADER[:8]
    except OSError:
        return False


class _Cursor:
    """Reads little-endian fields from a byte buffer and names the file and field on failure."""

    def __init__(self, path: Path, buffer):
        self.path, self.buffer, self.pos = path, buffer, 0

    def fail(self, what: str):
        raise StructureError(
            self.path, f"not a ProMod3 structure database of the known layout: {what}"
        )

    def unpack(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buffer):
            self.fail(f"file ends inside {what} at byte {self.pos} (truncated?)")
        values = struct.unpack_from(fmt, self.buffer, self.pos)
        self.pos += size
        return values

    def text(self, what: str, limit: int = 64) -> str:
        (n,) = self.unpack("<I", what)
        if n > limit:
            self.fail(f"{what} has length {n} at byte {self.pos - 4}")
        raw = bytes(self.buffer[self.pos : self.pos + n])
        if len(raw) != n:
            self.fail(f"file ends inside {what} (truncated?)")
        self.pos += n
        return raw.decode("ascii", errors="replace")


def read_structure_db(path: str | Path) -> StructureDB:
    """Memory-map and validate a structure database: magic, version, type checks, every count
    that the blocks repeat, entry ranges, and the exact end of the file. Raises StructureError."""
    path = Path(path)
    if not path.is_file():
        raise StructureError(path, "no such file")
    size = path.stat().st_size
    if size < len(_HEADER) + 8:
        raise StructureError(
            path, f"not a ProMod3 structure database of the known layout: {size} bytes is too short"
        )
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    cursor = _Cursor(path, raw)
    magic, version = cursor.unpack("<II", "the header")
    if magic != MAGIC:
        cursor.fail(f"magic number {magic}, expected {MAGIC}")
    if version != VERSION:
        cursor.fail(f"format version {version}, this reader knows version {VERSION}")
    if bytes(raw[8 : len(_HEADER)]) != _TYPE_CHECKS:
        cursor.fail(
            "the size-of-type checks in bytes 8–76 differ (written on another platform or version)"
        )
    cursor.pos = len(_HEADER)
    (entries,) = cursor.unpack("<Q", "the entry count")
    if entries * 33 > size:
        cursor.fail(f"entry count {entries} cannot fit in {size} bytes")
    pdb_ids, chain_ids, offsets, lengths, first_res, translation = [], [], [], [], [], []
    for k in range(entries):
        pdb_ids.append(cursor.text(f"the PDB id of entry {k}"))
        chain_ids.append(cursor.text(f"the chain id of entry {k}"))
        offset, length, first = cursor.unpack("<IHh", f"entry {k}")
        translation.append(cursor.unpack("<3f", f"entry {k}'s translation"))
        offsets.append(offset), lengths.append(length), first_res.append(first)
    offsets_a, lengths_a = np.array(offsets, np.int64), np.array(lengths, np.int64)
    blocks = {}
    for name, width in _BLOCKS:
        (n,) = cursor.unpack("<Q", f"the residue count of the {name} block")
        if name != "sequence" and n != blocks["sequence"][1]:
            cursor.fail(
                f"the {name} block counts {n} residues, the sequence block {blocks['sequence'][1]}"
            )
        if cursor.pos + n * width > size:
            cursor.fail(
                f"the {name} block needs {n * width} bytes at byte {cursor.pos}, the file has "
                f"{size - cursor.pos} left (truncated?)"
            )
        blocks[name] = (cursor.pos, n)
        cursor.pos += n * width
    if cursor.pos != size:
        cursor.fail(
            f"{size - cursor.pos} bytes after the last block (the layout ends at byte {cursor.pos})"
        )
    total = blocks["sequence"][1]
    ends = offsets_a + lengths_a
    if entries and (ends.max() > total or (lengths_a == 0).any()):
        bad = int(np.argmax((ends > total) | (lengths_a == 0)))
        cursor.fail(
            f"entry {bad} ({pdb_ids[bad]}_{chain_ids[bad]}) covers residues "
            f"{offsets[bad]}..{ends[bad]} of {total}"
        )
    start = blocks["sequence"][0]
    sequence = raw[start : start + total]
    start = blocks["coordinates"][0]
    coords = np.ndarray((total, 4, 3), dtype="<i2", buffer=raw, offset=start)
    return StructureDB(
        path,
        np.array(pdb_ids),
        np.array(chain_ids),
        offsets_a,
        lengths_a,
        np.array(first_res, np.int64),
        np.array(translation, np.float32).reshape(-1, 3),
        sequence,
        coords,
    )


def extract_from_deb(deb: str | Path, dest: str | Path) -> Path:
    """Copy the structure database out of a ``promod3-data`` .deb (ar → data.tar.* → member) into
    ``dest`` (a file path) with the standard library only; returns ``dest``."""
    deb, dest = Path(deb), Path(dest)
    with open(deb, "rb") as handle:
        if handle.read(8) != b"!<arch>\n":
            raise StructureError(deb, "not a Debian package (no ar archive signature)")
        while True:
            header = handle.read(60)
            if len(header) < 60:
                raise StructureError(deb, "no data.tar member in the package (truncated?)")
            name = header[:16].decode("ascii", errors="replace").strip().rstrip("/")
            try:
                size = int(header[48:58].decode("ascii").strip())
            except ValueError:
                raise StructureError(deb, "corrupt ar member header") from None
            if name.startswith("data.tar"):
                break
            handle.seek(size + size % 2, 1)
        if not name.endswith((".xz", ".gz", ".tar")):
            raise StructureError(deb, f"package member {name} is not compressed with xz or gzip")
        member = _Limited(handle, size)
        stream = lzma.open(member) if name.endswith(".xz") else member
        mode = "r|gz" if name.endswith(".gz") else "r|"
        try:
            with tarfile.open(fileobj=stream, mode=mode) as tar:
                for info in tar:
                    if info.name.lstrip("./") == DEB_MEMBER:
                        source = tar.extractfile(info)
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        with open(dest, "wb") as out:
                            shutil.copyfileobj(source, out, 1 << 22)
                        return dest
        except (tarfile.TarError, lzma.LZMAError, EOFError) as error:
            raise StructureError(deb, f"corrupt package archive ({error})") from None
    raise StructureError(deb, f"the package holds no {DEB_MEMBER} (not promod3-data?)")


class _Limited:
    """A read-only view of the next ``size`` bytes of a file (one ar member)."""

    def __init__(self, handle, size: int):
        self.handle, self.left = handle, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.handle.read(n)
        self.left -= len(data)
        return data

    def readable(self) -> bool:
        return True
