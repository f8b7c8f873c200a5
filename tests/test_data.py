"""Training-set building: segmentation, filters, clustering split, bad files, storage, loader."""

import gzip
import json
import os
from dataclasses import replace

import numpy as np
import pytest
import torch
from chains import HELIX, STRAND, ideal_chain

from protgen.data.cluster import cluster_sequences, mmseqs_available
from protgen.data.dataset import BuildConfig, TrainingSet, build
from protgen.data.loader import BatchLoader
from protgen.data.segment import SegmentConfig, split_chain
from protgen.data.structure import write_backbone
from protgen.errors import DatasetError

RNG = np.random.default_rng(0)
AA = "ACDEFGHIKLMNPQRSTVWY"


def _random_sequence(n, rng=RNG):
    return "".join(rng.choice(list(AA), n))


def _write_protein(path, atoms, sequence=None):
    """A PDB file with a real sequence (write_backbone names every residue GLY)."""
    from protgen.data.structure import THREE_TO_ONE

    one_to_three = {v: k for k, v in THREE_TO_ONE.items()}
    write_backbone(path, atoms)
    if sequence is not None:
        lines = []
        for line in path.read_text().splitlines():
            if line.startswith("ATOM"):
                resid = int(line[22:26])
                line = line[:17] + one_to_three[sequence[resid - 1]] + line[20:]
            lines.append(line)
        path.write_text("\n".join(lines) + "\n")
    return path


def test_split_at_missing_atoms_and_both_kinds_of_break():
    atoms = ideal_chain(HELIX, 100).astype(np.float32)
    mask = np.ones((100, 4), bool)
    mask[10, 0] = False  # missing N
    atoms[30:] += np.array([0.0, 0.0, 0.0])
    # C–N break only: move residue 50 onward across the CA–CA line so C(49)–N(50) > 2 Å while
    # CA(49)–CA(50) stays < 4.2 Å.
    shifted = atoms.copy()
    u = (atoms[50, 1] - atoms[49, 1]) / np.linalg.norm(atoms[50, 1] - atoms[49, 1])
    d = atoms[50, 0] - atoms[49, 2]
    d = d - (d @ u) * u
    shifted[50:] += 1.3 * d / np.linalg.norm(d)
    assert np.linalg.norm(shifted[50, 1] - shifted[49, 1]) < 4.2
    assert np.linalg.norm(shifted[50, 0] - shifted[49, 2]) > 2.0
    # CA–CA break: a large jump at residue 80.
    shifted[80:] += np.array([5.0, 0.0, 0.0])
    assert split_chain(shifted, mask) == [(0, 10), (11, 50), (50, 80), (80, 100)]


def _make_folder(tmp_path, n_families=6, members=3):
    folder = tmp_path / "pdbs"
    folder.mkdir()
    for f in range(n_families):
        base = _random_sequence(60)
        for m in range(members):
            seq = list(base)
            for k in RNG.choice(60, 6, replace=False):  # 90 % identity within a family
                seq[k] = RNG.choice(list(AA))
            atoms = (
                ideal_chain(HELIX if f % 2 else STRAND, 60)
                if f % 3
                else ideal_chain([HELIX] * 30 + [STRAND] * 30)
            )
            _write_protein(folder / f"fam{f}_{m}.pdb", atoms.astype(np.float32), "".join(seq))
    return folder


def test_greedy_clusters_families_like_mmseqs():
    fams = [_random_sequence(80) for _ in range(5)]
    seqs = []
    for base in fams:
        for _ in range(4):
            s = list(base)
            for k in RNG.choice(80, 16, replace=False):  # ~80 % identity to the family root
                s[k] = RNG.choice(list(AA))
            seqs.append("".join(s))
    labels = cluster_sequences(seqs, 0.3, method="greedy")
    groups = [len(set(labels[i * 4 : i * 4 + 4])) for i in range(5)]
    assert groups == [1] * 5 and len(set(labels)) == 5
    if mmseqs_available():
        mm = cluster_sequences(seqs, 0.3, method="mmseqs")
        assert len(set(mm)) == 5


def test_a_failing_mmseqs2_is_one_line_naming_its_error(tmp_path, monkeypatch, capsys):
    """Bug: an MMseqs2 failure escaped as a CalledProcessError traceback. A fake mmseqs on the
    PATH fails the way a real one does when it runs out of memory."""
    from protgen.cli.main import main

    fake = tmp_path / "bin" / "mmseqs"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Error: Not enough memory' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    with pytest.raises(
        DatasetError, match=r"MMseqs2 failed \(exit status 1\) clustering 2 sequences"
    ):
        cluster_sequences(["MKTAYIAKQR", "GSHMLEEVKK"], method="mmseqs")
    folder = _make_folder(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(
            ["data", "build", str(folder), "--out", str(tmp_path / "set")]
            + ["--cluster-method", "mmseqs", "--max-rg-ratio", "10"]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 1 and "Traceback" not in "".join(err)
    assert "(Error: Not enough memory); pass --cluster-method greedy" in err[-1]
    assert not (tmp_path / "set").exists()


def test_build_mixed_folder_reports_exactly_the_broken_files(tmp_path):
    folder = _make_folder(tmp_path)
    good = write_backbone(
        folder / "good.pdb", ideal_chain(HELIX, 50).astype(np.float32)
    ).read_text()
    (folder / "empty.pdb").write_bytes(b"")
    (folder / "binary.cif").write_bytes(b"\x00\xff" * 100)
    (folder / "truncated.pdb.gz").write_bytes(gzip.compress(good.encode())[:100])
    (folder / "dna.pdb").write_text(
        "ATOM      1  P    DA A   1       1.000   2.000   3.000  1.00  0.00           P\nEND\n"
    )
    (folder / "ca_only.pdb").write_text(
        "\n".join(l for l in good.splitlines() if " CA " in l) + "\nEND\n"
    )
    (folder / "notes.txt").write_text("not a structure")  # wrong suffix: not even read
    ts = build(
        [folder],
        tmp_path / "set",
        BuildConfig(
            SegmentConfig(min_length=40, max_rg_ratio=10), cluster_method="greedy", val_fraction=0.3
        ),
    )
    skipped = {p.split("/")[-1] for p, _ in ts.skipped()}
    assert skipped == {"empty.pdb", "binary.cif", "truncated.pdb.gz", "dna.pdb", "ca_only.pdb"}
    assert len(ts) == 19 and ts.meta.clusters == 7
    clusters = {}
    for r in ts.records:
        clusters.setdefault(r.cluster, set()).add(r.split)
        assert len(r.ss) == r.length == len(r.sequence)
    assert all(len(s) == 1 for s in clusters.values()), "a cluster on both sides of the split"
    assert {"train", "val"} == set.union(*clusters.values())
    again = build(
        [folder],
        tmp_path / "set2",
        BuildConfig(
            SegmentConfig(min_length=40, max_rg_ratio=10), cluster_method="greedy", val_fraction=0.3
        ),
    )
    assert again.meta.fingerprint == ts.meta.fingerprint
    with pytest.raises(DatasetError, match="already exists"):
        build([folder], tmp_path / "set")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_every_filter_drops_what_it_should(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    _write_protein(folder / "helix.pdb", ideal_chain(HELIX, 60).astype(np.float32))
    _write_protein(folder / "strand.pdb", ideal_chain(STRAND, 60).astype(np.float32))
    _write_protein(folder / "short.pdb", ideal_chain(HELIX, 30).astype(np.float32))
    coil = ideal_chain([(-70.0, 150.0), (-80, -20)] * 40).astype(np.float32)
    _write_protein(folder / "coil.pdb", coil)
    text = (folder / "helix.pdb").read_text()
    (folder / "lowres.pdb").write_text("REMARK   2 RESOLUTION.    3.90 ANGSTROMS.\n" + text)
    (folder / "nmr.pdb").write_text(
        "MODEL        1\n"
        + text.replace("END", "ENDMDL")
        + "MODEL        2\n"
        + text.replace("END", "ENDMDL")
        + "END\n"
    )

    def ids(**kw):
        ts = build(
            [folder],
            tmp_path / "o",
            BuildConfig(SegmentConfig(**{"max_rg_ratio": 10.0, **kw}), cluster_method="greedy"),
            force=True,
        )
        return sorted(r.source.split("/")[-1] for r in ts.records)

    assert ids() == ["coil.pdb", "helix.pdb", "lowres.pdb", "nmr.pdb", "strand.pdb"]
    assert "short.pdb" in ids(min_length=30) and "coil.pdb" not in ids(max_length=70)
    assert "coil.pdb" not in ids(max_coil=0.5)
    # Straight 60-residue chains: a helix has Rg ≈ 2.5× and a strand ≈ 5.5× the compact 2.2·L^0.38.
    assert "strand.pdb" not in ids(max_rg_ratio=4.0) and "helix.pdb" in ids(max_rg_ratio=4.0)
    assert "lowres.pdb" not in ids(max_resolution=3.0)
    assert "nmr.pdb" not in ids(multi_model="skip")


def test_older_sets_load_and_other_formats_and_missing_sets_are_refused(tmp_path):
    folder = _make_folder(tmp_path, 2, 2)
    ts = build(
        [folder],
        tmp_path / "s",
        BuildConfig(SegmentConfig(max_rg_ratio=10), cluster_method="greedy"),
    )
    meta = json.loads((ts.path / "dataset.json").read_text())
    # a set built by an older protgen: options it predates are missing, one it had is gone
    older = {**meta, "config": {**meta["config"], "threads": 2}}
    del older["config"]["test_fraction"], older["config"]["segments"]["multi_model"]
    (ts.path / "dataset.json").write_text(json.dumps(older))
    again = TrainingSet.load(ts.path)
    assert again.meta.config.test_fraction == 0.0 and again.meta.config.segments.max_rg_ratio == 10
    assert again.meta.fingerprint == ts.meta.fingerprint and again.meta.segments == len(ts)
    meta["format_version"] = 0
    (ts.path / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="format version 0"):
        TrainingSet.load(ts.path)
    with pytest.raises(DatasetError, match="not a protgen training set"):
        TrainingSet.load(tmp_path)


def test_loader_masks_crops_centres_and_is_reproducible(tmp_path):
    folder = _make_folder(tmp_path)
    ts = build(
        [folder],
        tmp_path / "s",
        BuildConfig(SegmentConfig(max_rg_ratio=10), cluster_method="greedy", val_fraction=0.0),
    )
    a, b = (
        BatchLoader(ts, batch_size=4, crop_length=45, seed=3),
        BatchLoader(ts, batch_size=4, crop_length=45, seed=3),
    )
    for _ in range(5):
        x, y = next(a), next(b)
        assert x.ids == y.ids and torch.equal(x.atoms, y.atoms)
        assert x.atoms.shape[1] <= 45 and x.mask.shape == x.atoms.shape[:2]
        ca = x.atoms[:, :, 1]
        centroid = (ca * x.mask[..., None]).sum(1) / x.mask.sum(1, keepdim=True)
        assert centroid.abs().max() < 1e-4
        assert (x.atoms[~x.mask] == 0).all()
    state = a.state()
    expected = [next(a).ids for _ in range(12)]
    c = BatchLoader(ts, batch_size=4, crop_length=45, seed=3)
    c.restore(state)
    assert [next(c).ids for _ in range(12)] == expected
    r0 = BatchLoader(ts, batch_size=2, seed=1, rank=0, world_size=2)
    r1 = BatchLoader(ts, batch_size=2, seed=1, rank=1, world_size=2)
    ids0 = {i.rsplit("_", 1)[0][:4] for _ in range(10) for i in next(r0).ids}
    ids1 = {i.rsplit("_", 1)[0][:4] for _ in range(10) for i in next(r1).ids}
    assert not ids0 & ids1, "DDP ranks share clusters"


def test_a_test_split_holds_further_clusters_and_leaves_the_validation_clusters_as_they_were(
    tmp_path,
):
    """--test-fraction: a third split of whole clusters, drawn by the same seeded hash, so adding
    it moves clusters from train to test only (validation stays the same chains)."""
    folder = _make_folder(tmp_path, 6, 2)
    config = BuildConfig(SegmentConfig(max_rg_ratio=10), cluster_method="greedy", val_fraction=0.3)
    plain = build([folder], tmp_path / "a", config)
    split = build([folder], tmp_path / "b", replace(config, test_fraction=0.4))
    assert {plain.records[i].id for i in plain.indices("val")} == {
        split.records[i].id for i in split.indices("val")
    }
    test = split.indices("test")
    assert test and {split.records[i].cluster for i in test}.isdisjoint(
        split.records[i].cluster for i in split.indices("train")
    )
    assert {split.records[i].id for i in test} <= {
        plain.records[i].id for i in plain.indices("train")
    }
