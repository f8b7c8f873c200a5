"""Secondary-structure conditioning: the condition's parsing, the training masks, the network's
equivariance and zero start, classifier-free guidance's two exact ends, and the command line end
to end (train with the condition, sample with --ss and --ss-from, eval's agreement)."""

import csv
import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from chains import HELIX, STRAND, ideal_chain
from fixtures import training_set

from protgen.data.structure import write_backbone
from protgen.errors import ConfigError
from protgen.geometry import so3
from protgen.geometry.rigid import Rigid
from protgen.geometry.secondary import HELIX as H
from protgen.geometry.secondary import LOOP, UNKNOWN, codes_to_ss, parse_ss
from protgen.geometry.secondary import STRAND as E
from protgen.geometry.world import WorldState
from protgen.network.config import PRESETS
from protgen.network.frame_network import FrameNetwork
from protgen.network.model import GeneratorModel
from protgen.sampling.self_conditioning import SelfConditioned
from protgen.sampling.ss_condition import ClassifierFreeGuidance, ss_codes
from protgen.training.config import ModelConfig, TrainConfig
from protgen.training.loop import train


def _state(b=2, n=16, seed=0) -> WorldState:
    g = torch.Generator().manual_seed(seed)
    frames = Rigid(
        so3.uniform((b, n), torch.float64, generator=g),
        8 * torch.randn(b, n, 3, generator=g, dtype=torch.float64),
    )
    codes = torch.randint(0, 4, (b, n), generator=g)
    return replace(WorldState.of(frames), ss=codes)


def test_condition_strings_parse_and_bad_ones_name_the_position():
    """H/E/L and ? or - (unconstrained) in either case; anything else names its 1-based position."""
    assert parse_ss("hHeEL?-").tolist() == [H, H, E, E, LOOP, UNKNOWN, UNKNOWN]
    assert codes_to_ss(parse_ss("LLHHE?")) == "LLHHE?"
    with pytest.raises(ConfigError, match=r"^--ss 'HHXH': position 3: 'X' is not a"):
        ss_codes("HHXH")
    with pytest.raises(ConfigError, match="empty"):
        ss_codes("")


def test_training_masks_drop_whole_conditions_and_spans_at_the_stated_rates():
    """ss_drop of the chains lose the whole condition, ss_partial of the others get 1–3 unknown
    spans covering 10–70 %, the rest keep it whole."""
    from protgen.data.ss_masks import masked_ss

    g = torch.Generator().manual_seed(0)
    codes = torch.full((100,), H)
    kinds = {"dropped": 0, "partial": 0, "whole": 0}
    fractions = []
    for _ in range(4000):
        out = masked_ss(codes, 100, 0.2, 0.3, g)
        unknown = (out == UNKNOWN).float().mean().item()
        key = "dropped" if unknown == 1 else "whole" if unknown == 0 else "partial"
        kinds[key] += 1
        if key == "partial":
            fractions.append(unknown)
    assert kinds["dropped"] / 4000 == pytest.approx(0.2, abs=0.02)
    assert kinds["partial"] / 4000 == pytest.approx(0.8 * 0.3, abs=0.02)
    assert 0.02 <= min(fractions) and max(fractions) <= 0.7


def test_the_condition_keeps_the_network_equivariant_and_starts_at_the_unconditional_network():
    """At initialisation the conditional network is the unconditional one exactly, with or without
    a condition; once trained it reads the condition, no condition equals 'unknown' everywhere,
    and x̂_1 stays equivariant (the condition is a per-residue label)."""
    torch.manual_seed(0)
    plain = FrameNetwork(PRESETS["tiny"]).double()
    conditional = FrameNetwork(replace(PRESETS["tiny"], ss_condition=True)).double()
    missing, _ = conditional.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["ss_embedding.weight"]
    x, t = _state(), torch.tensor([0.3, 0.6], dtype=torch.float64)
    assert torch.equal(conditional(t, x).rotvec, plain(t, x).rotvec)
    assert torch.equal(conditional(t, replace(x, ss=None)).rotvec, plain(t, x).rotvec)
    with torch.no_grad():
        conditional.ss_embedding.weight.normal_()
        for block in conditional.blocks:
            block.update.weight.normal_(0, 0.1)
    out = conditional(t, x)
    assert not torch.allclose(
        out.rotvec, conditional(t, replace(x, ss=torch.zeros_like(x.ss))).rotvec
    )
    assert torch.equal(
        conditional(t, replace(x, ss=None)).rotvec,
        conditional(t, replace(x, ss=torch.zeros_like(x.ss))).rotvec,
    )
    motion = Rigid(
        so3.uniform((), torch.float64), torch.tensor([3.0, -2.0, 5.0], dtype=torch.float64)
    )
    moved = x.with_frames(
        Rigid(motion.rots.expand_as(x.frames.rots), motion.trans.expand_as(x.frames.trans)).compose(
            x.frames
        )
    )
    o = conditional(t, moved)
    assert torch.allclose(o.rotvec, out.rotvec, atol=1e-9)
    assert torch.allclose(o.x1_hat.trans, motion.apply(out.x1_hat.trans), atol=1e-8)


def test_guidance_weight_one_is_the_conditional_generator_and_zero_the_unconditional():
    """F_w = F_u + w(F_c − F_u): w = 1 gives the conditional velocity (to rounding), w = 0 the
    unconditional one (the network without a condition), and F_w is affine in w."""
    torch.manual_seed(1)
    model = GeneratorModel(replace(PRESETS["tiny"], ss_condition=True)).double()
    with torch.no_grad():
        model.network.ss_embedding.weight.normal_()
        for block in model.network.blocks:
            block.update.weight.normal_(0, 0.1)
    x, t = _state(seed=3), torch.tensor([0.4, 0.4], dtype=torch.float64)

    def guided(w):
        return ClassifierFreeGuidance(SelfConditioned(model), SelfConditioned(model), w)(t, x)

    conditional = SelfConditioned(model)(t, x)
    unconditional = SelfConditioned(model)(t, replace(x, ss=None))
    one, zero, two = guided(1.0), guided(0.0), guided(2.0)
    assert torch.allclose(one.v, conditional.v, atol=1e-12) and torch.allclose(
        one.omega, conditional.omega, atol=1e-12
    )
    assert torch.allclose(zero.v, unconditional.v, atol=1e-12)
    assert torch.allclose(two.v, 2 * conditional.v - unconditional.v, atol=1e-10)
    assert not torch.allclose(conditional.v, unconditional.v)


def test_the_loader_carries_each_chains_dssp_aligned_with_its_crop(tmp_path):
    """Batches hold the segment's own DSSP as condition codes, cropped with the atoms; padding is
    unknown."""
    from protgen.data.loader import BatchLoader
    from protgen.geometry.secondary import dssp_to_codes

    ts = training_set(tmp_path, val_fraction=0.0)
    loader = BatchLoader(ts, batch_size=3, crop_length=30, seed=0)
    by_id = {r.id: r for r in ts.records}
    for _ in range(3):
        batch = next(loader)
        for k, chain_id in enumerate(batch.ids):
            n = int(batch.mask[k].sum())
            codes = batch.x_1.ss[k]
            full = dssp_to_codes(by_id[chain_id].ss)
            starts = [
                s for s in range(len(full) - n + 1) if torch.equal(full[s : s + n], codes[:n])
            ]
            assert starts, "the condition is a window of the segment's DSSP"
            assert (codes[n:] == UNKNOWN).all()


@pytest.fixture(scope="module")
def ss_checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ss")
    ts = training_set(tmp)
    config = TrainConfig(
        steps=3, batch_size=2, crop_length=40, warmup=1, val_every=10**6, checkpoint_every=3
    )
    model = ModelConfig(replace(PRESETS["tiny"], ss_condition=True))
    return train(ts.path, tmp / "run", model, config).checkpoint


def _protgen(*args):
    return subprocess.run(
        [sys.executable, "-m", "protgen", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_sample_with_a_string_or_a_file_records_the_condition_and_eval_scores_it(
    tmp_path, ss_checkpoint
):
    """--ss gives the length and is written to the manifest with the guidance; --ss-from takes a
    real chain's DSSP; eval reports per-residue agreement overall and per state."""
    ss = "LLHHHHHHHHLLLEEEEELLEEEEELL"
    common = ["sample", "--checkpoint", str(ss_checkpoint), "--num", "2", "--steps", "5"]
    out = _protgen(*common, "--ss", ss, "--guidance", "1.5", "--out", str(tmp_path / "a"))
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "a" / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["length"] for r in rows] == [str(len(ss))] * 2
    assert all(r["ss"] == ss and r["guidance"] == "1.5" for r in rows)
    chain = ideal_chain([HELIX] * 20 + [(-70.0, 150.0)] * 4 + [STRAND] * 12).astype("float32")
    write_backbone(tmp_path / "real.pdb", chain)
    out = _protgen(*common, "--ss-from", f"{tmp_path / 'real.pdb'}:A", "--out", str(tmp_path / "b"))
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "b" / "manifest.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    assert (
        len(row["ss"]) == 36
        and row["ss"].count("H") >= 15
        and row["ss_source"].endswith("real.pdb:A")
        and row["guidance"] == "1.0"  # the default weight, recorded
    )
    out = _protgen("eval", str(tmp_path / "a"), "--out", str(tmp_path / "eval"), "--mpnn", "off")
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    pooled = summary["ss_condition"]
    assert pooled["samples"] == 2 and pooled["residues"] == 2 * len(ss)
    assert 0 <= pooled["agreement"] <= 1 and set(pooled) >= {"helix_agreement", "strand_agreement"}
    assert "Secondary-structure condition" in (tmp_path / "eval" / "report.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ss", "HHHZ"], "position 4: 'Z'"),
        (["--ss", "HHHH", "--length", "50"], "give the length"),
        (["--length", "20", "--guidance", "2"], "--guidance 2.0 weighs"),
        (["--ss", "HHHHHH", "--guidance", "-1"], "--guidance must be"),
    ],
)
def test_bad_conditions_are_one_line_errors(tmp_path, ss_checkpoint, args, message):
    out = _protgen(
        "sample", "--checkpoint", str(ss_checkpoint), "--out", str(tmp_path / "x"), *args
    )
    assert out.returncode != 0 and message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_a_model_without_the_condition_refuses_ss(tmp_path):
    """The unconditional shipped model has no ss_condition: --ss with it is a one-line error."""
    from protgen.training.checkpoint import default_checkpoint

    out = _protgen(
        "sample",
        "--checkpoint",
        str(default_checkpoint()),
        "--ss",
        "HHHHHHHHH",
        "--out",
        str(tmp_path / "y"),
    )
    assert out.returncode != 0 and "secondary-structure condition" in out.stderr


def test_ss_without_a_checkpoint_samples_with_the_shipped_ss_model(tmp_path):
    """`protgen sample --ss STRING` out of the box: the shipped ss.pt, the length the string's,
    the condition and the model's fingerprint in the manifest."""
    import csv

    from protgen.training.checkpoint import default_checkpoint, fingerprint

    string = "LLHHHHHHHHLLLEEEEELLEEEEELL"
    out = _protgen(
        "sample", "--ss", string, "--num", "1", "--steps", "3", "--out", str(tmp_path / "s")
    )
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "s" / "manifest.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert int(row["length"]) == len(string) and row["ss"] == string
    assert row["checkpoint"] == fingerprint(default_checkpoint("ss"))
