"""Structure I/O: round trips through every format, and one clear error for every kind of bad
file."""

import gzip

import numpy as np
import pytest
from chains import HELIX, STRAND, ideal_chain

from protgen.data.structure import read_structure, write_backbone
from protgen.errors import StructureError


@pytest.fixture
def helix():
    return ideal_chain(HELIX, 25).astype(np.float32)


@pytest.mark.parametrize("name", ["x.pdb", "x.cif"])
def test_write_read_round_trip(tmp_path, helix, name):
    b = np.linspace(0, 99, len(helix))
    path = write_backbone(tmp_path / name, helix, b_factors=b)
    s = read_structure(path)
    (chain,) = s.chains
    assert chain.chain_id == "A" and chain.sequence == "G" * 25
    assert list(chain.res_ids) == list(range(1, 26)) and chain.atom_mask.all()
    np.testing.assert_allclose(chain.atoms, helix, atol=2e-3)
    assert not list(tmp_path.glob(".*tmp"))


def test_trajectory_is_multi_model_and_first_model_is_read(tmp_path, helix):
    traj = np.stack([helix, helix + 5.0, helix - 5.0])
    s = read_structure(write_backbone(tmp_path / "t.pdb", traj))
    assert s.model_count == 3
    np.testing.assert_allclose(s.chains[0].atoms, helix, atol=2e-3)


def test_gzip_binarycif_and_no_extension_are_sniffed(tmp_path, helix):
    import biotite.structure.io.pdbx as pdbx

    text = write_backbone(tmp_path / "a.pdb", helix).read_bytes()
    (tmp_path / "noext").write_bytes(gzip.compress(text))
    assert len(read_structure(tmp_path / "noext").chains[0]) == 25
    cif = pdbx.CIFFile.read(str(write_backbone(tmp_path / "a.cif", helix)))
    bcif = pdbx.BinaryCIFFile()
    pdbx.set_structure(bcif, pdbx.get_structure(cif, model=1))
    bcif.write(str(tmp_path / "a.bcif"))
    (tmp_path / "a_bcif_gz").write_bytes(gzip.compress((tmp_path / "a.bcif").read_bytes()))
    for name in ("a.bcif", "a_bcif_gz"):
        np.testing.assert_allclose(
            read_structure(tmp_path / name).chains[0].atoms, helix, atol=2e-3
        )


def _pdb_line(serial, name, res, chain, resid, xyz, icode=" ", altloc=" ", het=False, occ=1.0):
    rec = "HETATM" if het else "ATOM  "
    return (
        f"{rec}{serial:5d} {name:<4s}{altloc}{res:>3s} {chain}{resid:4d}{icode}   "
        f"{xyz[0]:8.3f}{xyz[1]:8.3f}{xyz[2]:8.3f}{occ:6.2f}{0.0:6.2f}          {name[0]:>2s}"
    )


def test_altloc_insertion_codes_mse_and_missing_atoms(tmp_path):
    atoms = ideal_chain(STRAND, 4)
    lines, k = [], 1
    specs = [
        ("ALA", 1, " ", False),
        ("MSE", 2, " ", True),
        ("GLY", 2, "A", False),
        ("SER", 3, " ", False),
    ]
    for i, (res, resid, icode, het) in enumerate(specs):
        for j, name in enumerate(("N", "CA", "C", "O")):
            if res == "SER" and name == "O":
                continue
            lines.append(
                _pdb_line(
                    k,
                    name,
                    res,
                    "B",
                    resid,
                    atoms[i, j],
                    icode=icode,
                    het=het,
                    altloc="A" if i == 0 else " ",
                )
            )
            k += 1
            if i == 0:
                lines.append(
                    _pdb_line(k, name, res, "B", resid, atoms[i, j] + 3.0, altloc="B", occ=0.5)
                )
                k += 1
    (tmp_path / "m.pdb").write_text("\n".join(lines) + "\nEND\n")
    (chain,) = read_structure(tmp_path / "m.pdb").chains
    assert chain.sequence == "AMGS" and chain.chain_id == "B"
    assert list(chain.ins_codes) == ["", "", "A", ""]
    np.testing.assert_allclose(chain.atoms[0], atoms[0], atol=2e-3)  # first altloc
    assert chain.atom_mask[3].tolist() == [True, True, True, False]


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"", "empty"),
        (b"\x00\x01\x02\x03binary\x00" * 50, "binary"),
        (gzip.compress(b"ATOM      1  N   GLY A   1" * 100)[:40], "gzip"),
        (b"hello, this is a text file\nwith two lines\n", "not a PDB"),
        (
            b"ATOM      1  P    DA A   1       1.000   2.000   3.000  1.00  0.00"
            b"           P\nEND\n",
            "amino-acid",
        ),
    ],
    ids=["empty", "binary", "truncated-gzip", "text", "dna-only"],
)
def test_bad_files_raise_one_clear_error(tmp_path, content, reason):
    path = tmp_path / "bad.pdb"
    path.write_bytes(content)
    with pytest.raises(StructureError, match=reason) as info:
        read_structure(path)
    assert "bad.pdb" in str(info.value)


def test_missing_file_and_truncated_text(tmp_path, helix):
    with pytest.raises(StructureError, match="no such file"):
        read_structure(tmp_path / "nope.pdb")
    text = write_backbone(tmp_path / "a.pdb", helix).read_text()
    (tmp_path / "cut.pdb").write_text(text[: len(text) // 2 + 17])
    try:
        s = read_structure(tmp_path / "cut.pdb")
        assert 0 < len(s.chains[0]) <= 25
    except StructureError as error:
        assert "cut.pdb" in str(error)


def test_every_shared_file_parses_or_fails_clearly_and_round_trips(shared_pdb, tmp_path):
    files = [p for p in shared_pdb.rglob("*") if p.is_file()]
    parsed = 0
    for path in files:
        try:
            s = read_structure(path)
        except StructureError as error:
            assert str(path) in str(error)
            continue
        parsed += 1
        for chain in s.chains:
            assert chain.atoms.shape == (len(chain), 4, 3) and len(chain.res_ids) == len(chain)
        chain = max(s.chains, key=lambda c: int(c.atom_mask.all(-1).sum()))
        complete = chain.atoms[chain.atom_mask.all(-1)]
        if len(complete):
            back = read_structure(write_backbone(tmp_path / "rt.pdb", complete)).chains[0].atoms
            np.testing.assert_allclose(back, complete, atol=1.5e-3)
    assert parsed > 0.95 * len(files)
