"""The secondary-structure model on strings it never saw: helix/strand/loop strings of real chains
from held-out clusters of a training set (40–128 residues; half of them β-rich, ≥ 30 % E), a few
samples per string at each guidance weight, scored by per-residue agreement of the sample's DSSP
with the request (overall, helix, strand, loop), the strand fraction of samples made for β-rich
strings, and the quality panel (geometry_ok, clashes, CA–CA) — beside the same panel of
unconditional samples of the same lengths from the model it was fine-tuned from (``--source``)
and of the real chains themselves.

Usage: python scripts/evaluate_ss.py --set SET --checkpoint CKPT [--source CKPT] [--split val]
                                     [--strings 8] [--num 4] [--guidance 0,1,2] [--json OUT]
"""

import argparse
import json

import numpy as np


def pick_strings(ts, split: str, count: int, seed: int) -> list[tuple[str, str, np.ndarray]]:
    """(chain id, condition string, atoms) of ``count`` chains of 40–128 residues from distinct
    clusters of the split: half of them β-rich (≥ 30 % E), half the others."""
    rng = np.random.default_rng(seed)
    seen, rich, other = set(), [], []
    order = rng.permutation(ts.indices(split))
    for i in order:
        r = ts.records[int(i)]
        if not 40 <= r.length <= 128 or r.cluster in seen:
            continue
        seen.add(r.cluster)
        string = "".join({"H": "H", "E": "E"}.get(c, "L") for c in r.ss)
        (rich if string.count("E") >= 0.3 * len(string) else other).append(
            (r.id, string, ts.segment_atoms(int(i)))
        )
    half = count // 2
    return rich[:half] + other[: count - half]


def agreement(requested: str, atoms) -> dict:
    from protgen.geometry.secondary import dssp

    got = "".join({"H": "H", "E": "E"}.get(c, "L") for c in dssp(atoms))
    out = {"n": len(requested), "hits": sum(a == b for a, b in zip(requested, got))}
    for state in "HEL":
        asked = [k for k, c in enumerate(requested) if c == state]
        out[f"{state}_n"] = len(asked)
        out[f"{state}_hits"] = sum(got[k] == state for k in asked)
    out["strand"] = got.count("E") / len(got)
    out["helix"] = got.count("H") / len(got)
    return out


def summarise(label: str, rows: list[dict], panels: list, rich: list[bool]) -> dict:
    def pct(h, n):
        return h / n if n else float("nan")

    n, hits = sum(r["n"] for r in rows), sum(r["hits"] for r in rows)
    out = {
        "label": label,
        "agreement": pct(hits, n),
        **{
            f"{name}_agreement": pct(
                sum(r[f"{s}_hits"] for r in rows), sum(r[f"{s}_n"] for r in rows)
            )
            for s, name in (("H", "helix"), ("E", "strand"), ("L", "loop"))
        },
        "strand_beta_rich": float(np.mean([r["strand"] for r, b in zip(rows, rich) if b])),
        "strand": float(np.mean([r["strand"] for r in rows])),
        "helix": float(np.mean([r["helix"] for r in rows])),
        "geometry_ok": float(np.mean([p.geometry_ok for p in panels])),
        "clashes": float(np.mean([p.clashes for p in panels])),
        "ca_ca_ok": float(np.mean([p.ca_ca_ok for p in panels])),
    }
    print(
        f"{label:<30}{out['agreement']:>7.1%}{out['helix_agreement']:>7.1%}{out['strand_agreement']:>7.1%}"
        f"{out['loop_agreement']:>7.1%}{out['strand_beta_rich']:>10.1%}{out['helix']:>7.1%}"
        f"{out['geometry_ok']:>8.1%}{out['clashes']:>8.1f}{out['ca_ca_ok']:>8.1%}",
        flush=True,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", required=True)
    parser.add_argument("--checkpoint", required=True, help="a model trained with --ss-condition")
    parser.add_argument("--source", help="the unconditional model it was fine-tuned from")
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--strings", type=int, default=8)
    parser.add_argument("--num", type=int, default=4, help="samples per string")
    parser.add_argument(
        "--guidance", default="0,1,2", help="weights to sample at (0 = unconditional)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    import torch

    import protgen
    from protgen.data.dataset import TrainingSet

    torch.set_num_threads(args.threads)
    ts = TrainingSet.load(args.set)
    picked = pick_strings(ts, args.split, args.strings, args.seed)
    rich = [s.count("E") >= 0.3 * len(s) for _, s, _ in picked for _ in range(args.num)]
    print(f"{len(picked)} strings from the {args.split} split of {args.set}:")
    for chain, string, _ in picked:
        print(f"  {chain:<24} {len(string):>4}  E {string.count('E') / len(string):.0%}  {string}")
    print(
        f"\n{'':<30}{'agree':>7}{'helix':>7}{'strand':>7}{'loop':>7}{'E(β-rich)':>10}{'H':>7}"
        f"{'geomOK':>8}{'clash':>8}{'CA-CA':>8}"
    )
    model = protgen.load_model(args.checkpoint)
    results = []
    for w in [float(x) for x in args.guidance.split(",")]:
        rows, panels = [], []
        for k, (_, string, _) in enumerate(picked):
            for atoms in protgen.sample(
                model, ss=string, num=args.num, seed=args.seed + k, guidance=w
            ):
                rows.append(agreement(string, atoms))
                panels.append(protgen.quality(atoms))
        results.append(summarise(f"ss model, guidance {w:g}", rows, panels, rich))
    if args.source:
        source = protgen.load_model(args.source)
        rows, panels = [], []
        for k, (_, string, _) in enumerate(picked):
            for atoms in protgen.sample(
                source, length=len(string), num=args.num, seed=args.seed + k
            ):
                rows.append(agreement(string, atoms))
                panels.append(protgen.quality(atoms))
        results.append(summarise("source model (unconditional)", rows, panels, rich))
    rows = [agreement(s, a) for _, s, a in picked]
    panels = [protgen.quality(a) for _, _, a in picked]
    results.append(
        summarise("the real chains themselves", rows, panels, [r for r in rich[:: args.num]])
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"strings": [(c, s) for c, s, _ in picked], "results": results}, handle, indent=2
            )


if __name__ == "__main__":
    main()
