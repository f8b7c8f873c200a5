"""Structure files ↔ backbone records: the only module that touches PDB, mmCIF and BinaryCIF.

Reading sniffs the content (gzip, BinaryCIF, mmCIF or PDB, with or without a file extension),
takes the first model and the first altloc, keeps insertion codes, standard amino acids (MSE and
common MD names map to their parents) and returns per-chain backbone atoms with a missing-atom
mask. Writing makes backbone-only files: chain A, residues 1..L, every residue named GLY (what
ProteinMPNN reads for a backbone), optional B-factors, several models for a trajectory.
"""

import gzip
import io
import os
import re
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protgen.errors import StructureError
from protgen.files import atomic_path

__all__ = [
    "Chain",
    "Structure",
    "read_structure",
    "write_backbone",
    "backbone_atom_array",
    "THREE_TO_ONE",
    "ONE_TO_THREE",
    "sniff_format",
]

THREE_TO_ONE = {
    "ALA": "A",
    "ARG": "R",
    "ASN": "N",
    "ASP": "D",
    "CYS": "C",
    "GLN": "Q",
    "GLU": "E",
    "GLY": "G",
    "HIS": "H",
    "ILE": "I",
    "LEU": "L",
    "LYS": "K",
    "MET": "M",
    "PHE": "F",
    "PRO": "P",
    "SER": "S",
    "THR": "T",
    "TRP": "W",
    "TYR": "Y",
    "VAL": "V",
}
ONE_TO_THREE = {one: three for three, one in THREE_TO_ONE.items()}
# Modified or force-field residue names whose backbone is that of a standard amino acid.
PARENT = {
    "MSE": "MET",
    "HSD": "HIS",
    "HSE": "HIS",
    "HSP": "HIS",
    "HID": "HIS",
    "HIE": "HIS",
    "HIP": "HIS",
    "CYX": "CYS",
    "CYM": "CYS",
    "ASH": "ASP",
    "GLH": "GLU",
    "LYN": "LYS",
}
BACKBONE = ("N", "CA", "C", "O")
WRITTEN_RESIDUE = "GLY"


@dataclass(frozen=True)
class Chain:
    """One polymer chain's amino-acid residues.

    chain_id: author chain ID; res_ids: (L,) int; ins_codes: (L,) str; res_names: (L,) parent
    three-letter names; sequence: one-letter, length L; atoms: Å, (L, 4, 3) float32 in the order
    N, CA, C, O (zeros where missing); atom_mask: (L, 4) bool, True where the atom exists.
    """

    chain_id: str
    res_ids: np.ndarray
    ins_codes: np.ndarray
    res_names: np.ndarray
    sequence: str
    atoms: np.ndarray
    atom_mask: np.ndarray

    def __len__(self) -> int:
        return len(self.sequence)


@dataclass(frozen=True)
class Structure:
    """A file's protein chains (first model) and what the file says about the experiment.

    resolution: Å, or None when the file states none; method: e.g. "X-RAY DIFFRACTION";
    model_count: models in the file (> 1 for NMR ensembles and trajectories).
    """

    path: str
    chains: tuple[Chain, ...]
    resolution: float | None
    method: str | None
    model_count: int


def sniff_format(data: bytes) -> str:
    """'bcif', 'cif' or 'pdb' from (already decompressed) content; raises ValueError otherwise."""
    if not data.strip():
        raise ValueError("empty file")
    if data[0] in range(0x80, 0x90) or data[0] in (0xDE, 0xDF):
        return "bcif"
    if b"\x00" in data[:4096]:
        raise ValueError("binary content, not a PDB, mmCIF or BinaryCIF file")
    head = data[:65536].decode("utf-8", errors="replace")
    for line in head.splitlines():
        if line.strip() and not line.startswith("#"):
            if line.startswith("data_"):
                return "cif"
            break
    if re.search(r"^(ATOM  |HETATM|HEADER|MODEL |CRYST1|REMARK|EXPDTA|COMPND|TITLE )", head, re.M):
        return "pdb"
    raise ValueError("not a PDB, mmCIF or BinaryCIF file (no ATOM records or data_ block)")


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise StructureError(path, "no such file")
    if path.is_dir():
        raise StructureError(path, "is a directory, not a structure file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise StructureError(path, f"cannot read ({error.strerror or error})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as error:
            raise StructureError(path, f"truncated or corrupt gzip data ({error})") from None
    return data


def _resolution_and_method(fmt: str, source) -> tuple[float | None, str | None]:
    if fmt == "pdb":
        text = "\n".join(source.lines[:2000])
        res = re.search(r"^REMARK   2 RESOLUTION\.\s+([0-9.]+)\s+ANGSTROM", text, re.M)
        method = re.search(r"^EXPDTA\s+(.+)$", text, re.M)
        return (float(res.group(1)) if res else None, method.group(1).strip() if method else None)
    block = source.block
    resolution = None
    for category, field in (
        ("refine", "ls_d_res_high"),
        ("em_3d_reconstruction", "resolution"),
        ("reflns", "d_resolution_high"),
    ):
        if category in block and field in block[category]:
            try:
                resolution = float(block[category][field].as_array(str)[0])
                break
            except ValueError:
                continue
    method = None
    if "exptl" in block and "method" in block["exptl"]:
        method = str(block["exptl"]["method"].as_array(str)[0])
    return resolution, method


def _parse(path: Path, data: bytes):
    import biotite.structure.io.pdb as pdb
    import biotite.structure.io.pdbx as pdbx

    fmt = sniff_format(data)
    if fmt == "pdb":
        source = pdb.PDBFile.read(io.StringIO(data.decode("utf-8", errors="replace")))
        model_count = source.get_model_count()
        array = source.get_structure(model=1, altloc="first")
    else:
        if fmt == "cif":
            source = pdbx.CIFFile.read(io.StringIO(data.decode("utf-8", errors="replace")))
        else:
            source = pdbx.BinaryCIFFile.read(io.BytesIO(data))
        model_count = pdbx.get_model_count(source)
        array = pdbx.get_structure(source, model=1, altloc="first")
    return array, model_count, *_resolution_and_method(fmt, source)


def _chains(array) -> tuple[Chain, ...]:
    import biotite.structure as struc

    names = np.array([PARENT.get(n, n) for n in array.res_name])
    array = array[np.isin(names, list(THREE_TO_ONE))]
    names = np.array([PARENT.get(n, n) for n in array.res_name])
    if array.array_length() == 0:
        return ()
    starts = struc.get_residue_starts(array, add_exclusive_stop=True)
    chains: list[Chain] = []
    by_chain: dict[str, list[int]] = {}
    for k in range(len(starts) - 1):
        by_chain.setdefault(str(array.chain_id[starts[k]]), []).append(k)
    for chain_id, residues in by_chain.items():
        atoms = np.zeros((len(residues), 4, 3), np.float32)
        mask = np.zeros((len(residues), 4), bool)
        for i, k in enumerate(residues):
            lo, hi = starts[k], starts[k + 1]
            for j, atom in enumerate(BACKBONE):
                hit = np.nonzero(array.atom_name[lo:hi] == atom)[0]
                if len(hit):
                    atoms[i, j] = array.coord[lo + hit[0]]
                    mask[i, j] = True
        first = starts[np.array(residues)]
        res_names = names[first]
        chains.append(
            Chain(
                chain_id=chain_id,
                res_ids=array.res_id[first].astype(int),
                ins_codes=array.ins_code[first].astype(str),
                res_names=res_names,
                sequence="".join(THREE_TO_ONE[n] for n in res_names),
                atoms=atoms,
                atom_mask=mask,
            )
        )
    return tuple(chains)


def read_structure(path: str | os.PathLike) -> Structure:
    """Read a PDB/mmCIF/BinaryCIF file (gzipped or not, any extension) into protein chains.

    Raises :class:`StructureError` naming the file and the reason for anything unreadable or
    without a single amino-acid residue with backbone atoms.
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        sniff_format(data)
    except ValueError as error:
        raise StructureError(path, str(error)) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # biotite warns about guessed elements of every file
            array, model_count, resolution, method = _parse(path, data)
    except StructureError:
        raise
    except Exception as error:  # biotite raises many types for damaged files; name them all one way
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise StructureError(path, f"cannot parse ({reason})") from None
    chains = _chains(array)
    if not chains or not any(c.atom_mask[:, 1].any() for c in chains):
        raise StructureError(path, "no amino-acid residues with backbone atoms (not a protein?)")
    return Structure(str(path), chains, resolution, method, model_count)


def backbone_atom_array(
    atoms: np.ndarray,
    b_factors: np.ndarray | None = None,
    chain_ids: np.ndarray | None = None,
    res_ids: np.ndarray | None = None,
    sequence: str | None = None,
):
    """A biotite AtomArray (atoms (L, 4, 3)) or AtomArrayStack ((T, L, 4, 3)) of a backbone: atoms
    N, CA, C, O; residues numbered 1..L (or res_ids (L,)) named GLY (or after a one-letter
    sequence); optional B-factors (L,) and chain IDs (L,) (default A)."""
    import biotite.structure as struc

    length = atoms.shape[-3]
    n_atoms = length * 4
    array = (
        struc.AtomArray(n_atoms) if atoms.ndim == 3 else struc.AtomArrayStack(len(atoms), n_atoms)
    )
    array.coord = atoms.reshape(*atoms.shape[:-3], n_atoms, 3).astype(np.float32)
    array.chain_id = (
        np.full(n_atoms, "A")
        if chain_ids is None
        else np.repeat(np.asarray(chain_ids, dtype="<U4"), 4)
    )
    array.res_id = np.repeat(
        np.arange(1, length + 1) if res_ids is None else np.asarray(res_ids), 4
    )
    names = (
        [WRITTEN_RESIDUE] * length
        if sequence is None
        else [ONE_TO_THREE.get(c, "UNK") for c in sequence]
    )
    array.res_name = np.repeat(np.array(names), 4)
    array.atom_name = np.tile(np.array(BACKBONE), length)
    array.element = np.tile(np.array(["N", "C", "C", "O"]), length)
    array.hetero = np.zeros(n_atoms, bool)
    b = np.zeros(length) if b_factors is None else np.asarray(b_factors, float)
    array.set_annotation("b_factor", np.repeat(b, 4))
    return array


def write_backbone(
    path: str | os.PathLike,
    atoms: np.ndarray,
    b_factors: np.ndarray | None = None,
    fmt: str | None = None,
    chain_ids: np.ndarray | None = None,
    res_ids: np.ndarray | None = None,
    sequence: str | None = None,
    ca_only: bool = False,
) -> Path:
    """Write a backbone-only structure atomically (temporary file, then rename).

    atoms: Å, (L, 4, 3) for one model or (T, L, 4, 3) for a trajectory (one model per frame), in
    the order N, CA, C, O. b_factors: (L,) values for the B-factor column. fmt: 'pdb' or 'cif'
    (default from the extension, else 'pdb'). chain_ids: (L,) chain of each residue (default A);
    res_ids: (L,) residue numbers (default 1..L); sequence: one-letter residue names (default GLY).
    ca_only: write the CA atoms alone (a CA trace; N, C and O may then be NaN).
    """
    import biotite.structure.io.pdb as pdb
    import biotite.structure.io.pdbx as pdbx

    path = Path(path)
    atoms = np.asarray(atoms)
    if atoms.ndim not in (3, 4) or atoms.shape[-2:] != (4, 3):
        raise ValueError(f"atoms must be (L, 4, 3) or (T, L, 4, 3), got {atoms.shape}")
    fmt = fmt or ("cif" if path.suffix.lower() in (".cif", ".mmcif") else "pdb")
    array = backbone_atom_array(atoms, b_factors, chain_ids, res_ids, sequence)
    if ca_only:
        array = array[..., array.atom_name == "CA"]
    if fmt == "pdb":
        out = pdb.PDBFile()
        out.set_structure(array)
    elif fmt == "cif":
        out = pdbx.CIFFile()
        pdbx.set_structure(out, array)
    else:
        raise ValueError(f"unknown structure format {fmt!r} (use 'pdb' or 'cif')")
    with atomic_path(path) as tmp, open(tmp, "w") as handle:
        out.write(handle)
    return path
