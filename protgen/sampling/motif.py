"""Motif scaffolding: RFdiffusion's contig syntax, the motif read from a structure file, and the
conditioned world state a sample starts from.

A contig lists the output chain from N to C terminus: scaffold segments (``10`` or ``5-20``
residues, the length drawn per sample) and motif segments (``A16-35``: residues 16..35 of chain A
of the motif file, author numbering; an end may carry an insertion code, ``H82A`` or ``H80-82C``),
separated by ``,`` or ``/``; ``/0`` followed by a space (or a lone ``0``) starts a new chain. A
motif range is every residue from its first to its last end in the file's order, insertion codes
included (``H80-85`` of an antibody holds 82A, 82B and 82C). ``--total-length 60-80`` bounds the
whole length.
Example: ``"5-20,A16-35,10-25,A52-71,5-20"``. The motif residues keep their frames from the file
(centred at their CA centroid) at every step; the scaffold is generated around them.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from protgen.data.structure import read_structure
from protgen.errors import ConfigError, StructureError
from protgen.geometry.backbone import backbone_to_frames
from protgen.geometry.rigid import Rigid
from protgen.geometry.world import WorldState

__all__ = [
    "Scaffold",
    "MotifSegment",
    "Contig",
    "Motif",
    "Layout",
    "parse_contig",
    "read_motif",
    "CHAIN_GAP",
]

CHAIN_GAP = 200  # residue-number jump between chains: beyond the network's clipped offsets (±32)


@dataclass(frozen=True)
class Scaffold:
    """A generated segment of min_length..max_length residues."""

    min_length: int
    max_length: int


@dataclass(frozen=True)
class MotifSegment:
    """Residues start..end (author numbers, inclusive; each end with its insertion code, "" for
    none) of a chain of the motif file: every residue between the ends in the file's order."""

    chain: str
    start: int
    end: int
    start_ins: str = ""
    end_ins: str = ""

    def __str__(self) -> str:
        first, last = f"{self.start}{self.start_ins}", f"{self.end}{self.end_ins}"
        return f"{self.chain}{first}" if first == last else f"{self.chain}{first}-{last}"


@dataclass(frozen=True)
class Contig:
    """The parsed contig: chains, each a list of segments; total length bounds."""

    chains: tuple[tuple[Scaffold | MotifSegment, ...], ...]
    min_total: int = 1
    max_total: int = 10**6

    @property
    def motif_segments(self) -> list[MotifSegment]:
        return [s for chain in self.chains for s in chain if isinstance(s, MotifSegment)]


_SCAFFOLD = re.compile(r"^(\d+)(?:-(\d+))?$")
_MOTIF = re.compile(r"^([A-Za-z])(-?\d+)([A-Za-z]?)(?:-(-?\d+)([A-Za-z]?))?$")


def parse_contig(text: str, total_length: str | None = None) -> Contig:
    """Parse a contig string (and optional total length "a-b" or "n"); raises ConfigError naming
    the first token at fault."""
    if not text or not text.strip():
        raise ConfigError('empty contig; e.g. --contig "5-20,A16-35,10-25"')
    chains, current = [], []
    tokens = [t for t in re.split(r"[,/\s]+", text.strip().strip("[]")) if t]
    for position, token in enumerate(tokens, 1):
        if token == "0":  # RFdiffusion's "/0 ": a chain break
            if not current:
                raise ConfigError(
                    f"contig {text!r}: chain break at token {position} has no segment before it"
                )
            chains.append(tuple(current))
            current = []
            continue
        scaffold, motif = _SCAFFOLD.match(token), _MOTIF.match(token)
        if scaffold:
            low = int(scaffold.group(1))
            high = int(scaffold.group(2) or low)
            if high < low:
                raise ConfigError(
                    f"contig {text!r}: scaffold range {token!r} (token {position}) runs backwards"
                )
            current.append(Scaffold(low, high))
        elif motif:
            chain, start, start_ins, end, end_ins = motif.groups()
            if end is None:
                end, end_ins = start, start_ins
            segment = MotifSegment(chain, int(start), int(end), start_ins, end_ins)
            if (segment.end, segment.end_ins) < (segment.start, segment.start_ins):
                raise ConfigError(
                    f"contig {text!r}: motif range {token!r} (token {position}) runs backwards"
                )
            current.append(segment)
        else:
            raise ConfigError(
                f"contig {text!r}: cannot read token {position} {token!r} (scaffold: 10 or 5-20; "
                "motif: A16-35; chain break: /0)"
            )
    if current:
        chains.append(tuple(current))
    contig = Contig(tuple(chains))
    if not contig.motif_segments:
        raise ConfigError(f"contig {text!r} names no motif segment (e.g. A16-35)")
    if total_length:
        match = _SCAFFOLD.match(total_length.strip())
        if not match:
            raise ConfigError(f"--total-length {total_length!r}: use n or a-b, e.g. 60-80")
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        contig = Contig(contig.chains, low, high)
    return contig


@dataclass(frozen=True)
class Motif:
    """Motif residues read from a file: per segment, atoms Å (n, 4, 3) and the author numbers."""

    path: str
    segments: dict[MotifSegment, np.ndarray]


def read_motif(path: str | Path, contig: Contig) -> Motif:
    """The motif segments of ``contig`` from a PDB/mmCIF file: every residue from a segment's first
    end to its last in the file's order (insertion codes included); each must have all four
    backbone atoms and no residue number in the range may be missing. Raises ConfigError naming
    the first residue at fault."""
    try:
        structure = read_structure(path)
    except StructureError as error:
        raise ConfigError(f"--motif {error}") from None
    chains = {c.chain_id: c for c in structure.chains}
    out = {}
    for segment in contig.motif_segments:
        chain = chains.get(segment.chain)
        if chain is None:
            raise ConfigError(
                f"--motif {path}: no protein chain {segment.chain} (chains: "
                f"{', '.join(chains) or 'none'}) for {segment}"
            )
        out[segment] = _segment_atoms(path, chain, segment)
    return Motif(str(path), out)


def _residue_label(chain, k: int) -> str:
    return f"{chain.chain_id}{int(chain.res_ids[k])}{chain.ins_codes[k]}"


def _segment_atoms(path, chain, segment: MotifSegment) -> np.ndarray:
    """Atoms (n, 4, 3) of the residues of one segment, in the file's order."""
    ends, numbers = [], set(chain.res_ids.tolist())
    for number, ins in ((segment.start, segment.start_ins), (segment.end, segment.end_ins)):
        hits = np.nonzero((chain.res_ids == number) & (chain.ins_codes == ins))[0]
        if not len(hits):
            absent = [n for n in range(segment.start, number) if n not in numbers]
            label = f"{segment.chain}{absent[0]}" if absent else f"{segment.chain}{number}{ins}"
            raise ConfigError(f"--motif {path}: residue {label} of {segment} is not in the file")
        ends.append(int(hits[0]))
    first, last = ends
    if last < first:
        raise ConfigError(
            f"--motif {path}: {segment} runs backwards in the file's order "
            f"({_residue_label(chain, last)} comes before {_residue_label(chain, first)})"
        )
    present = set(chain.res_ids[first : last + 1].tolist())  # numbers between the ends
    for number in range(segment.start, segment.end + 1):
        if number not in present:
            raise ConfigError(
                f"--motif {path}: residue {segment.chain}{number} of {segment} is not in the file"
            )
    for k in range(first, last + 1):
        if not chain.atom_mask[k].all():
            raise ConfigError(
                f"--motif {path}: residue {_residue_label(chain, k)} of {segment} lacks backbone "
                "atoms"
            )
    return chain.atoms[first : last + 1].astype(np.float32)


@dataclass(frozen=True)
class Layout:
    """One sample's chain: per residue the motif atoms (or None), its residue number (index,
    with a jump between chains), its chain, and the contig with drawn scaffold lengths."""

    motif_atoms: np.ndarray  # (L, 4, 3), zeros on scaffold residues
    fixed: np.ndarray  # (L,) bool
    index: np.ndarray  # (L,) int
    chain: np.ndarray  # (L,) str, "A", "B", ...
    description: str  # e.g. "7,A16-35,12,A52-71,9"
    motif_positions: str  # 1-based output positions of the motif segments, "8-27;40-59"
    motif_residues: str  # the motif file's residues, "A16-35;A52-71"

    def __len__(self) -> int:
        return len(self.fixed)


def draw_layout(
    contig: Contig, motif: Motif, rng: np.random.Generator, tries: int = 2000
) -> Layout:
    """Scaffold lengths drawn uniformly per segment until the total length is within bounds."""
    fixed_length = sum(len(a) for a in motif.segments.values())
    for _ in range(tries):
        lengths = [
            int(rng.integers(s.min_length, s.max_length + 1)) if isinstance(s, Scaffold) else None
            for chain in contig.chains
            for s in chain
        ]
        total = fixed_length + sum(n for n in lengths if n is not None)
        if contig.min_total <= total <= contig.max_total:
            return _layout(contig, motif, iter(lengths))
    raise ConfigError(
        "no scaffold lengths of the contig give a total length in "
        f"{contig.min_total}..{contig.max_total} (the motif alone has {fixed_length} residues)"
    )


def _layout(contig: Contig, motif: Motif, lengths) -> Layout:
    atoms, fixed, index, chain_ids, parts, positions, residues = [], [], [], [], [], [], []
    number = 0
    for c, chain in enumerate(contig.chains):
        if c:
            number += CHAIN_GAP
            parts.append("0")
        for segment in chain:
            n = next(lengths)
            if n == 0:  # a scaffold drawn with no residues
                continue
            if isinstance(segment, Scaffold):
                block, is_fixed = np.zeros((n, 4, 3), np.float32), False
                parts.append(str(n))
            else:
                block, is_fixed = motif.segments[segment], True
                positions.append(f"{len(fixed) + 1}-{len(fixed) + len(block)}")
                residues.append(str(segment))
                parts.append(str(segment))
            atoms.append(block)
            fixed += [is_fixed] * len(block)
            index += list(range(number, number + len(block)))
            chain_ids += [chr(ord("A") + c)] * len(block)
            number += len(block)
    return Layout(
        np.concatenate(atoms),
        np.array(fixed),
        np.array(index),
        np.array(chain_ids),
        ",".join(parts).replace(",0,", "/0 "),
        ";".join(positions),
        ";".join(residues),
    )


def conditioned_state(layouts: list[Layout], device="cpu") -> WorldState:
    """The world state of a batch of equal-length layouts: motif frames centred at the motif's CA
    centroid, fixed flags, residue numbers; scaffold frames are placeholders for the prior."""
    atoms = torch.tensor(np.stack([l.motif_atoms for l in layouts]))
    fixed = torch.tensor(np.stack([l.fixed for l in layouts]))
    centre = (atoms[:, :, 1] * fixed[..., None]).sum(1, keepdim=True) / fixed.sum(1)[:, None, None]
    frames = backbone_to_frames(atoms - centre[:, :, None] * fixed[..., None, None])
    eye = torch.eye(3).expand_as(frames.rots)
    frames = Rigid(
        torch.where(fixed[..., None, None], frames.rots, eye), frames.trans * fixed[..., None]
    )
    index = torch.tensor(np.stack([l.index for l in layouts]))
    mask = torch.ones_like(fixed)
    return WorldState(frames, mask, index, fixed).to(device)
