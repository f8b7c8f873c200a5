"""ProMod3 structure databases: layout round trip, every corruption named in one line, .deb
unpacking with the standard library, builds that merge a database with PDB files, and the real
file when it is present."""

import io
import lzma
import os
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
from chains import HELIX, STRAND, ideal_chain
from fixtures import HAIRPIN
from structure_db import write_structure_db

from protgen.data.dataset import BuildConfig, build, find_structure_files
from protgen.data.promod3 import DEB_MEMBER, extract_from_deb, read_structure_db
from protgen.data.segment import SegmentConfig
from protgen.data.structure import write_backbone
from protgen.errors import StructureError

REAL_DB = os.environ.get("PROTGEN_PROMOD3_DB", "")


def _entries():
    """Four chains: a helix, a strand, a hairpin, and a 20-residue helix (too short to keep)."""
    rng = np.random.default_rng(1)
    shapes = [
        ("1ABC", "A", [HELIX] * 50),
        ("2XYZ", "B", [STRAND] * 45),
        ("3HHH", "A", HAIRPIN),
        ("4SML", "C", [HELIX] * 20),
    ]
    out = []
    for k, (pdb_id, chain, shape) in enumerate(shapes):
        atoms = ideal_chain(shape) + rng.normal(0, 30, 3)
        sequence = "".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), len(atoms)))
        out.append((pdb_id, chain, 5 + k, atoms, sequence))
    return out


def test_entry_translations_are_added_to_the_stored_coordinates(tmp_path):
    """Each entry stores coordinates relative to its float32 translation (the file's own layout;
    centred training sets are unaffected by it either way)."""
    entries = _entries()[:1]
    path = write_structure_db(tmp_path / "db.dat", entries)
    data = bytearray(path.read_bytes())
    at = 85 + 4 + 4 + 4 + 1 + 8  # entry 0's translation
    data[at : at + 12] = struct.pack("<3f", 10.0, -20.0, 30.0)
    path.write_bytes(bytes(data))
    atoms = read_structure_db(path).chain(0).atoms
    assert np.abs(atoms - (entries[0][3] + np.array([10.0, -20.0, 30.0]))).max() < 0.006


def test_layout_round_trip(tmp_path):
    entries = _entries()
    db = read_structure_db(write_structure_db(tmp_path / "db.dat", entries))
    assert len(db) == 4 and db.name(1) == "2XYZ_B"
    for k, (pdb_id, chain_id, first, atoms, sequence) in enumerate(entries):
        chain = db.chain(k)
        assert chain.sequence == sequence and chain.chain_id == chain_id
        assert chain.res_ids[0] == first and chain.atom_mask.all()
        assert np.abs(chain.atoms - atoms).max() <= 0.005 + 1e-4  # stored in units of 0.01 Å


def _corrupt(data: bytes, kind: str) -> bytes:
    if kind == "magic":
        return struct.pack("<I", 4321) + data[4:]
    if kind == "version":
        return data[:4] + struct.pack("<I", 3) + data[8:]
    if kind == "type checks":
        return data[:20] + b"\x09" + data[21:]
    if kind == "truncated":
        return data[: len(data) - 1000]
    if kind == "trailing":
        return data + b"\x00" * 8
    if kind == "count":  # the coordinate block's count no longer repeats the sequence block's
        n = struct.unpack_from("<Q", data, _sequence_block(data))[0]
        at = _sequence_block(data) + 8 + n
        return data[:at] + struct.pack("<Q", n + 1) + data[at + 8 :]
    if kind == "entry":  # entry 0 claims more residues than the file has
        return (
            data[: 85 + 4 + 4 + 4 + 1 + 4]
            + struct.pack("<H", 60000)
            + data[85 + 4 + 4 + 4 + 1 + 4 + 2 :]
        )
    raise ValueError(kind)


def _sequence_block(data: bytes) -> int:
    """Byte offset of the sequence block's count (after the header and the entry records)."""
    pos, (entries,) = 85, struct.unpack_from("<Q", data, 77)
    for _ in range(entries):
        for _ in range(2):
            pos += 4 + struct.unpack_from("<I", data, pos)[0]
        pos += 8 + 12
    return pos


@pytest.mark.parametrize(
    "kind, message",
    [
        ("magic", "magic number 4321"),
        ("version", "format version 3"),
        ("type checks", "size-of-type checks"),
        ("truncated", "truncated"),
        ("trailing", "8 bytes after the last block"),
        ("count", "coordinates block counts"),
        ("entry", "entry 0 (1ABC_A) covers residues"),
    ],
)
def test_each_corruption_is_one_line_naming_file_and_fault(tmp_path, kind, message):
    good = write_structure_db(tmp_path / "good.dat", _entries()).read_bytes()
    bad = tmp_path / "bad.dat"
    bad.write_bytes(_corrupt(good, kind))
    with pytest.raises(StructureError) as error:
        read_structure_db(bad)
    text = str(error.value)
    assert "\n" not in text and str(bad) in text and message in text, text


def _deb(path: Path, member: Path) -> Path:
    """A minimal promod3-data .deb: ar archive with debian-binary, control and data.tar.xz."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        tar.add(member, arcname="./" + DEB_MEMBER)
    parts = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", lzma.compress(b"")),
        ("data.tar.xz", lzma.compress(tar_bytes.getvalue())),
    ]
    out = bytearray(b"!<arch>\n")
    for name, body in parts:
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n".encode()
        out += body + (b"\n" if len(body) % 2 else b"")
    path.write_bytes(bytes(out))
    return path


def test_deb_is_unpacked_with_the_standard_library(tmp_path):
    dat = write_structure_db(tmp_path / "db.dat", _entries())
    deb = _deb(tmp_path / "promod3-data_test_all.deb", dat)
    assert extract_from_deb(deb, tmp_path / "out.dat").read_bytes() == dat.read_bytes()
    (tmp_path / "junk.deb").write_bytes(b"not an archive")
    with pytest.raises(StructureError, match="not a Debian package"):
        extract_from_deb(tmp_path / "junk.deb", tmp_path / "x.dat")


def test_build_merges_a_database_and_pdb_files(tmp_path):
    (tmp_path / "src").mkdir()
    dat = write_structure_db(tmp_path / "src" / "db.dat", _entries())
    write_backbone(tmp_path / "src" / "extra.pdb", ideal_chain(HELIX, 60).astype(np.float32))
    (tmp_path / "src" / "notes.dat").write_text("not a database: ignored by the folder walk")
    assert sorted(p.name for p in find_structure_files([tmp_path / "src"])) == [
        "db.dat",
        "extra.pdb",
    ]
    deb = _deb(tmp_path / "pkg.deb", dat)
    config = BuildConfig(
        SegmentConfig(max_rg_ratio=10.0), cluster_method="greedy", val_fraction=0.0
    )
    for source in ([tmp_path / "src"], [deb, tmp_path / "src" / "extra.pdb"]):
        ts = build(source, tmp_path / "set", config, force=True)
        ids = [r.id for r in ts.records]
        assert {"1ABC_A", "2XYZ_B", "3HHH_A"} <= set(ids) and len(ids) == 4, ids
        assert any(
            "4SML_C" in source and "length 20 outside 40..512" in reason
            for source, reason in ts.skipped()
        )
        k = ids.index("2XYZ_B")
        assert np.abs(ts.segment_atoms(k) - _entries()[1][3]).max() < 0.01
    assert not list(tmp_path.glob(".set*")), "the scratch copy of the unpacked database is removed"
    assert ts.records[k].source == f"{deb}#2XYZ_B", "sources cite the .deb, not the scratch copy"
    fingerprint = ts.meta.fingerprint
    again = build([deb, tmp_path / "src" / "extra.pdb"], tmp_path / "set2", config)
    assert again.meta.fingerprint == fingerprint, "the same build of a .deb twice: the same set"


@pytest.fixture
def real_db() -> Path:
    if not REAL_DB or not Path(REAL_DB).is_file():
        pytest.skip(
            "set PROTGEN_PROMOD3_DB to structure_db.dat (or the promod3-data .deb) to test the "
            "real file"
        )
    return Path(REAL_DB)


def test_the_real_database_reads_with_the_documented_counts_and_geometry(real_db, tmp_path):
    if real_db.suffix == ".deb":
        real_db = extract_from_deb(real_db, tmp_path / "structure_db.dat")
    db = read_structure_db(real_db)
    assert len(db) == 21119 and int(db.lengths.sum()) == 4561225
    atoms = np.concatenate([db.chain(k).atoms for k in range(0, len(db), 50)])
    n, ca, c, o = (atoms[:, i] for i in range(4))
    assert np.median(np.linalg.norm(ca - n, axis=-1)) == pytest.approx(1.458, abs=0.005)
    assert np.median(np.linalg.norm(c - ca, axis=-1)) == pytest.approx(1.525, abs=0.005)
    assert np.median(np.linalg.norm(o - c, axis=-1)) == pytest.approx(1.232, abs=0.005)
