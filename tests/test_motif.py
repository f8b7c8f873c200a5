"""Motif scaffolding: contig syntax, the conditional process (motif frames fixed along the path),
the conditional network's equivariance, and the hard constraint end to end (train, sample, eval)."""

import csv
import math

import numpy as np
import pytest
import torch
from chains import HELIX, STRAND, ideal_chain
from equivariance import assert_network_equivariant, move, random_motion
from fixtures import training_set

from protgen.data.structure import read_structure, write_backbone
from protgen.errors import ConfigError
from protgen.geometry import so3
from protgen.geometry.backbone import TERMINAL_PSI, dihedral
from protgen.geometry.rigid import Rigid
from protgen.geometry.world import WorldState
from protgen.method.process import ChainFrameFlow, ResidueFrameFlow
from protgen.network.config import PRESETS
from protgen.network.frame_network import FrameNetwork
from protgen.sampling.motif import MotifSegment, Scaffold, draw_layout, parse_contig, read_motif


def test_contigs_parse_ranges_motifs_and_chain_breaks():
    c = parse_contig("5-20,A16-35,10-25,A52-71,5-20")
    assert c.chains == (
        (
            Scaffold(5, 20),
            MotifSegment("A", 16, 35),
            Scaffold(10, 25),
            MotifSegment("A", 52, 71),
            Scaffold(5, 20),
        ),
    )
    c = parse_contig("[10-40/A163-181/10-40/0 B5-12]", total_length="60-90")
    assert (
        len(c.chains) == 2
        and c.chains[1] == (MotifSegment("B", 5, 12),)
        and (c.min_total, c.max_total) == (60, 90)
    )
    assert parse_contig("A7,12").chains == ((MotifSegment("A", 7, 7), Scaffold(12, 12)),)


@pytest.mark.parametrize(
    "text, fault",
    [
        ("5-20,A16-35,9x", "token 3 '9x'"),
        ("20-5,A1-4", "runs backwards"),
        ("10-20", "names no motif segment"),
        ("A9-3", "runs backwards"),
        ("", "empty contig"),
        ("/0 A1-5", "chain break at token 1"),
    ],
)
def test_bad_contigs_are_one_line_errors_naming_the_fault(text, fault):
    with pytest.raises(ConfigError) as error:
        parse_contig(text)
    assert fault in str(error.value) and "\n" not in str(error.value)


@pytest.fixture
def motif_file(tmp_path):
    """Chain A: 50 helical residues numbered 1..50; chain B: a 45-residue strand numbered
    101..145."""
    a, b = (
        ideal_chain(HELIX, 50).astype(np.float32),
        ideal_chain(STRAND, 45).astype(np.float32) + 30,
    )
    path = write_backbone(
        tmp_path / "motif.pdb", np.concatenate([a, b]), chain_ids=np.array(["A"] * 50 + ["B"] * 45)
    )
    text = path.read_text().splitlines()
    renumbered = [
        line[:22] + f"{int(line[22:26]) + 50:4d}" + line[26:]
        if line.startswith("ATOM") and line[21] == "B"
        else line
        for line in text
    ]
    path.write_text("\n".join(renumbered) + "\n")
    return path


def test_motifs_are_read_and_missing_residues_named(motif_file):
    contig = parse_contig("4,A10-19,6-8,0 B101-105")
    motif = read_motif(motif_file, contig)
    assert motif.segments[MotifSegment("A", 10, 19)].shape == (10, 4, 3)
    layout = draw_layout(contig, motif, np.random.default_rng(0))
    assert (
        layout.fixed.sum() == 15 and len(layout) in (25, 26, 27) and set(layout.chain) == {"A", "B"}
    )
    assert layout.index[-1] - layout.index[0] > 200, "chains are separated in the numbering"
    assert (
        layout.motif_positions == "5-14;" + layout.motif_positions.split(";")[1]
        and layout.motif_residues == "A10-19;B101-105"
    )
    for contig_text, fault in (("A45-60", "residue A51"), ("C1-3", "no protein chain C")):
        with pytest.raises(ConfigError, match=fault):
            read_motif(motif_file, parse_contig(contig_text))
    with pytest.raises(ConfigError, match="total length in 100..120"):
        draw_layout(parse_contig("5,A10-19", "100-120"), motif, np.random.default_rng(0))


@pytest.fixture
def kabat_file(tmp_path):
    """Chain H: a 14-residue helix numbered 80, 81, 82, 82A, 82B, 82C, 83, ..., 90 (Kabat-style
    insertion codes, as in antibodies such as 1NCB)."""
    labels = [(80, ""), (81, ""), (82, ""), (82, "A"), (82, "B"), (82, "C")]
    labels += [(n, "") for n in range(83, 91)]
    path = write_backbone(
        tmp_path / "kabat.pdb",
        ideal_chain(HELIX, len(labels)).astype(np.float32),
        chain_ids=np.array(["H"] * len(labels)),
    )
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("ATOM"):
            number, code = labels[int(line[22:26]) - 1]
            line = line[:22] + f"{number:4d}{code or ' '}" + line[27:]
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_motif_ranges_hold_every_residue_between_their_ends_insertion_codes_included(kabat_file):
    """H80-85 is the 9 residues from 80 to 85 in file order (82A-C included), joined without a
    gap; an insertion-coded residue can be named alone or as a range end."""
    atoms = ideal_chain(HELIX, 14)
    motif = read_motif(kabat_file, parse_contig("3,H80-85,3"))
    block = motif.segments[MotifSegment("H", 80, 85)]
    assert block.shape == (9, 4, 3) and np.allclose(block, atoms[:9], atol=1e-3)
    ca_ca = np.linalg.norm(block[1:, 1] - block[:-1, 1], axis=-1)
    assert ca_ca.max() < 3.9, "no gap inside the fixed motif"
    contig = parse_contig("H82A,2,H82B-82C,2,H81-82A")
    segments = contig.motif_segments
    assert [str(s) for s in segments] == ["H82A", "H82B-82C", "H81-82A"]
    motif = read_motif(kabat_file, contig)
    assert [len(motif.segments[s]) for s in segments] == [1, 2, 3]
    assert np.allclose(motif.segments[segments[0]], atoms[3:4], atol=1e-3)
    layout = draw_layout(contig, motif, np.random.default_rng(0))
    assert layout.motif_residues == "H82A;H82B-82C;H81-82A"
    assert parse_contig(layout.motif_residues.replace(";", ",")).motif_segments == segments
    for text, fault in (
        ("H82D", "residue H82D of H82D is not in the file"),
        ("H82C-82A", "runs backwards"),
        ("H79-81", "residue H79 of H79-81 is not in the file"),
    ):
        with pytest.raises(ConfigError, match=fault):
            read_motif(kabat_file, parse_contig(text))


def test_eval_motif_rmsd_compares_with_the_motif_as_the_file_has_it(kabat_file, tmp_path):
    """A scaffold that holds the file's 9 residues of H80-85 scores 0 Å; one made by a reader that
    dropped 82A-C (6 residues at the motif positions) gets a note, not a false 0.000."""
    from protgen.evaluation.config import EvalConfig
    from protgen.evaluation.evaluate import evaluate

    helix = ideal_chain(HELIX, 20).astype(np.float32)
    folder = tmp_path / "s"
    write_backbone(folder / "good.pdb", helix)
    write_backbone(folder / "old.pdb", helix)
    with open(folder / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "motif_file", "motif_positions", "motif_residues"])
        writer.writerow(["good.pdb", "../kabat.pdb", "4-12", "H80-85"])
        writer.writerow(["old.pdb", "../kabat.pdb", "4-9", "H80-85"])
    summary = evaluate(folder / "manifest.csv", tmp_path / "e", EvalConfig(mpnn="off"))
    with open(tmp_path / "e" / "structures.csv", newline="") as handle:
        rows = {r["file"]: r for r in csv.DictReader(handle)}
    assert float(rows["good.pdb"]["motif_rmsd"]) < 0.01 and rows["old.pdb"].get("motif_rmsd") in (
        None,
        "",
    )
    assert summary.notes == (
        (
            "old.pdb",
            "no motif RMSD: the manifest's motif positions hold 6 residues, H80-85 of "
            f"{folder / '../kabat.pdb'} has 9",
        ),
    )


def _conditioned(n=14, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = Rigid(
        so3.uniform((2, n), torch.float64, generator=g),
        8 * torch.randn(2, n, 3, generator=g, dtype=torch.float64),
    )
    fixed = torch.zeros(2, n, dtype=torch.bool)
    fixed[0, 3:7] = True
    fixed[1, 9:12] = True
    return WorldState.of(frames, fixed=fixed)


def test_motif_frames_stay_at_the_data_along_the_path_with_zero_target():
    process = ResidueFrameFlow()
    x_1 = _conditioned()
    t = torch.tensor([0.2, 0.8], dtype=torch.float64)
    path = process.sample_path(x_1, t, torch.Generator().manual_seed(1))
    fixed = x_1.fixed
    assert torch.equal(path.y_0.frames.trans[fixed], x_1.frames.trans[fixed]) and torch.equal(
        path.y_t.frames.rots[fixed], x_1.frames.rots[fixed]
    )
    target = process.target(path)
    assert (
        (target.omega[fixed] == 0).all()
        and (target.v[fixed] == 0).all()
        and target.v[~fixed].abs().sum() > 0
    )
    for k in range(2):
        centre = path.y_0.frames.trans[k][~fixed[k]].mean(0)
        assert torch.allclose(centre, torch.zeros(3, dtype=torch.float64), atol=1e-12), (
            "scaffold noise centred"
        )
    with pytest.raises(ConfigError, match="chain process"):
        ChainFrameFlow().sample_path(x_1, t)


def test_the_conditional_network_is_equivariant_and_starts_as_the_unconditional_one():
    from dataclasses import replace

    torch.manual_seed(0)
    plain = FrameNetwork(PRESETS["tiny"]).double()
    conditional = FrameNetwork(replace(PRESETS["tiny"], motif=True)).double()
    missing, _ = conditional.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["fixed_embedding"]
    x, t = _conditioned(), torch.tensor([0.3, 0.6], dtype=torch.float64)
    start, unconditional = conditional(t, x), plain(t, x)
    for name in ("rotvec", "trans"):  # the zero-initialised flag embedding adds nothing
        assert torch.equal(getattr(start, name), getattr(unconditional, name)), name
    assert torch.equal(start.x1_hat.trans, unconditional.x1_hat.trans)
    assert torch.equal(start.x1_hat.rots, unconditional.x1_hat.rots)
    with torch.no_grad():
        conditional.fixed_embedding.normal_()
        for block in conditional.blocks:
            block.update.weight.normal_(0, 0.1)
    out = conditional(t, x)
    assert not torch.allclose(out.rotvec, plain(t, x).rotvec)
    motion = random_motion(7)
    o = conditional(t, x.with_frames(move(x.frames, motion)))
    assert_network_equivariant(out, o, motion, x.mask)


def test_no_block_moves_the_motif_frames_and_their_estimate_is_x_t():
    """Fixed residues are given: with trained-like (random, nonzero) frame updates, every block's
    output keeps their frames at x_t to 1e-6 Å, and x̂_1 = x_t there; the scaffold does move."""
    from dataclasses import replace

    torch.manual_seed(0)
    network = FrameNetwork(replace(PRESETS["tiny"], motif=True)).double()
    with torch.no_grad():
        network.fixed_embedding.normal_()
        network.rot_residual.weight.normal_(0, 0.1)
        for block in network.blocks:
            block.update.weight.normal_(0, 0.1)
    trunk = []
    for block in network.blocks:
        block.register_forward_hook(lambda module, args, out: trunk.append(out[2]))
    x, t = _conditioned(), torch.tensor([0.3, 0.6], dtype=torch.float64)
    out = network(t, x)
    fixed = x.fixed
    for frames in trunk:  # inside the trunk frames are in nm
        assert (frames.trans[fixed] * 10 - x.frames.trans[fixed]).abs().max() < 1e-6
        assert (frames.rots[fixed] - x.frames.rots[fixed]).abs().max() < 1e-9
        assert (frames.trans[~fixed] * 10 - x.frames.trans[~fixed]).abs().max() > 1e-3
    assert (out.x1_hat.trans[fixed] - x.frames.trans[fixed]).abs().max() < 1e-6
    assert (out.x1_hat.rots[fixed] - x.frames.rots[fixed]).abs().max() < 1e-9
    assert (out.rotvec[fixed] == 0).all() and (out.trans[fixed] == 0).all()


def test_the_auxiliary_pair_term_scores_the_scaffold_against_the_motif_it_joins():
    """A scaffold residue moved rigidly keeps its own atom distances: only its distances to the
    adjacent motif residue change, and the pair term must see them (protgen 0.2 dropped
    scaffold–motif pairs and scored 0 here)."""
    from protgen.method.loss import LossConfig, backbone_aux_loss

    atoms = torch.tensor(ideal_chain([HELIX] * 2), dtype=torch.float64)[None]
    from protgen.geometry.backbone import backbone_to_frames

    x_1 = backbone_to_frames(atoms)
    shifted = Rigid(x_1.rots, x_1.trans + torch.tensor([[[0.0, 0.0, 0.0], [0.4, 0.0, 0.0]]]))
    generated = torch.tensor([[False, True]])
    t = torch.tensor([0.9], dtype=torch.float64)
    real = torch.ones(1, 2, dtype=torch.bool)
    terms = backbone_aux_loss(shifted, x_1, t, generated, LossConfig(), real=real).terms
    assert terms["aux_pair"] > 1e-4 and terms["aux_atom"] > 0
    alone = backbone_aux_loss(shifted, x_1, t, generated, LossConfig()).terms
    assert alone["aux_pair"] < 1e-20, "without the motif only the residue's own atoms pair up"


def test_scaffolds_keep_the_motif_exactly_end_to_end(tmp_path, motif_file, capsys):
    from protgen.cli.main import main
    from protgen.evaluation.similarity import kabsch_rmsd

    ts = training_set(tmp_path)
    main(
        [
            "train",
            "--data",
            str(ts.path),
            "--out",
            str(tmp_path / "run"),
            "--preset",
            "tiny",
            "--steps",
            "4",
            "--batch-size",
            "2",
            "--crop-length",
            "40",
            "--warmup",
            "1",
            "--motif-prob",
            "0.5",
            "--threads",
            "1",
        ]
    )
    main(
        [
            "train",
            "--data",
            str(ts.path),
            "--out",
            str(tmp_path / "plain"),
            "--preset",
            "tiny",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--crop-length",
            "40",
            "--threads",
            "1",
        ]
    )
    # an unconditional model refuses a motif (one-line error, exit 1)
    with pytest.raises(SystemExit) as stop:
        main(
            [
                "sample",
                "--checkpoint",
                str(tmp_path / "plain"),
                "--motif",
                str(motif_file),
                "--contig",
                "3,A10-14",
                "--out",
                str(tmp_path / "x"),
            ]
        )
    assert stop.value.code == 1 and "not trained for motif scaffolding" in capsys.readouterr().err
    main(
        [
            "sample",
            "--checkpoint",
            str(tmp_path / "run"),
            "--motif",
            str(motif_file),
            "--contig",
            "3-5,A10-19,4-6,0 B101-105,2",
            "--num",
            "3",
            "--steps",
            "5",
            "--out",
            str(tmp_path / "s"),
            "--threads",
            "1",
        ]
    )
    with open(tmp_path / "s" / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["file"] for r in rows] == ["motif_0000.pdb", "motif_0001.pdb", "motif_0002.pdb"]
    motif = read_motif(motif_file, parse_contig("A10-19,B101-105"))
    true = np.concatenate(list(motif.segments.values()))
    for row in rows:
        structure = read_structure(tmp_path / "s" / row["file"])
        atoms = np.concatenate([c.atoms for c in structure.chains])
        ranges = [tuple(map(int, r.split("-"))) for r in row["motif_positions"].split(";")]
        made = np.concatenate([atoms[a - 1 : b] for a, b in ranges])
        assert float(kabsch_rmsd(made.reshape(-1, 3), true.reshape(-1, 3))) < 0.1, (
            "the hard constraint keeps the motif"
        )
        assert [c.chain_id for c in structure.chains] == ["A", "B"] and row[
            "motif_residues"
        ] == "A10-19;B101-105"
        # chain A ends in scaffold: its last O is placed from ψ = 135°, not toward chain B's N
        last = torch.from_numpy(structure.chains[0].atoms[-1]).double()
        torsion = dihedral(last[0], last[1], last[2], last[3]).item()
        assert abs(math.remainder(torsion - TERMINAL_PSI - math.pi, 2 * math.pi)) < 0.01
    lines = [
        l
        for l in (tmp_path / "s" / "motif_0000.pdb").read_text().splitlines()
        if l.startswith("ATOM")
    ]
    b_factors = {float(l[60:66]) for l in lines}
    assert b_factors == {0.0, 1.0}, "motif residues flagged with B-factor 1.0"
    main(
        [
            "eval",
            str(tmp_path / "s" / "manifest.csv"),
            "--out",
            str(tmp_path / "e"),
            "--mpnn",
            "off",
            "--threads",
            "1",
        ]
    )
    with open(tmp_path / "e" / "structures.csv", newline="") as handle:
        assert all(float(r["motif_rmsd"]) < 0.1 for r in csv.DictReader(handle))
    assert "motif RMSD < 1 Å | 100.0%" in (tmp_path / "e" / "report.md").read_text()
