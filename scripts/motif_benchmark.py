"""Motif-scaffolding benchmark that runs offline: problems cut from real chains that are not in
training (the validation clusters of the training set), scaffolded and scored.

    python scripts/motif_benchmark.py make --set SET --out data/motif_benchmark.csv python
    scripts/motif_benchmark.py run --db structure_db.dat --out bench/ [--checkpoint CKPT] [--num 8]

``make`` picks problems deterministically from the set's validation split (ProMod3 entries of
60–150 residues): single segments (a helix, a β-hairpin, a loop with its flanks) and two or three
discontiguous secondary-structure segments, and writes their RFdiffusion contigs (scaffold
lengths within ±5 of the original flanks and gaps, total length within ±10) to a CSV.
``run`` cuts each motif file out of ProMod3's structure database (the .dat or the .deb), samples
--num scaffolds per problem with ``protgen sample --motif``'s machinery, evaluates them with
``protgen eval``'s (motif RMSD; ProteinMPNN and a folding model when available) and prints
per-problem success rates beside the quality panel. Published problem sets (RFdiffusion's,
MotifBench's) need no script: ``protgen sample --motif FILE --contig "…" --total-length A-B``.
"""

import argparse
import csv
import re
import sys
from pathlib import Path

KINDS = (("helix", 3), ("hairpin", 3), ("loop", 2), ("two segments", 4), ("three segments", 4))


def _runs(ss: str, code: str, minimum: int) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(f"{re.escape(code)}{{{minimum},}}", ss)]


def _find(kind: str, ss: str) -> list[tuple[int, int]] | None:
    """Motif segments (half-open, 0-based) of one kind in a DSSP string, or None."""
    if kind == "helix":
        runs = [r for r in _runs(ss, "H", 14) if r[0] >= 5 and r[1] <= len(ss) - 5]
        return [(runs[0][0] + 1, runs[0][0] + 13)] if runs else None
    if kind == "hairpin":
        m = re.search(r"E{4,}[^E]{2,5}E{4,}", ss)
        if m and 5 <= m.start() and m.end() <= len(ss) - 5 and m.end() - m.start() <= 18:
            return [(m.start(), m.end())]
        return None
    if kind == "loop":
        m = re.search(r"(?<=[HE])-{6,10}(?=[HE])", ss)
        if m and m.start() >= 7 and m.end() <= len(ss) - 7:
            return [(m.start() - 2, m.end() + 2)]
        return None
    count = 2 if kind == "two segments" else 3
    elements = [(a, b) for a, b in _runs(ss, "E", 5) + _runs(ss, "H", 7)]
    elements.sort()
    chosen = []
    for a, b in elements:
        if a >= 3 and b <= len(ss) - 3 and (not chosen or a - chosen[-1][1] >= 8):
            chosen.append((a, min(b, a + 7)))
        if len(chosen) == count:
            return chosen
    return None


def _contig(
    length: int, start: int, chain: str, segments: list[tuple[int, int]]
) -> tuple[str, str]:
    """RFdiffusion contig and total-length bounds reproducing a segment layout (author numbering
    = start + position)."""
    parts, cursor = [], 0
    for a, b in segments:
        gap = a - cursor
        low = max(0 if cursor == 0 else 1, gap - 5 if cursor == 0 else gap - 3)
        high = gap + 5 if cursor == 0 else gap + 3
        parts.append(f"{low}-{high}")
        parts.append(f"{chain}{start + a}-{start + b - 1}")
        cursor = b
    tail = length - cursor
    parts.append(f"{max(0, tail - 5)}-{tail + 5}")
    return ",".join(parts), f"{length - 10}-{length + 10}"


def make(args) -> None:
    from protgen.data.dataset import TrainingSet

    ts = TrainingSet.load(args.set)
    candidates = sorted(
        (r for r in ts.records if r.split == "val" and "#" in r.source and 60 <= r.length <= 150),
        key=lambda r: r.id,
    )
    used, rows = set(), []
    for kind, count in KINDS:
        for record in candidates:
            if record.id in used or sum(1 for r in rows if r["kind"] == kind) == count:
                continue
            segments = _find(kind, record.ss)
            if segments is None:
                continue
            used.add(record.id)
            contig, total = _contig(record.length, int(record.start), record.chain, segments)
            rows.append(
                {
                    "name": f"{kind.replace(' ', '_')}_{record.id}",
                    "kind": kind,
                    "entry": record.id,
                    "contig": contig,
                    "total_length": total,
                    "motif_residues": sum(b - a for a, b in segments),
                }
            )
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(
        f"{len(rows)} problems from {len(candidates)} validation chains of {args.set} → {args.out}"
    )


def junction_breaks(folder: Path) -> float:
    """Chain breaks per scaffold where a motif segment meets the scaffold (a fixed residue beside a
    generated one): how often the generated chain fails to reach the motif."""
    import numpy as np

    from protgen.data.segment import peptide_breaks
    from protgen.data.structure import read_structure

    counts = []
    with open(folder / "manifest.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            chains = read_structure(folder / row["file"]).chains
            motif = np.zeros(sum(len(c) for c in chains), bool)
            for span in row["motif_positions"].split(";"):
                first, last = (int(x) for x in span.split("-"))
                motif[first - 1 : last] = True
            count, start = 0, 0
            for chain in chains:
                a, m = chain.atoms, motif[start : start + len(chain)]
                count += int((peptide_breaks(a) & (m[1:] != m[:-1])).sum())
                start += len(chain)
            counts.append(count)
    return float(np.mean(counts))


def run(args) -> None:
    import numpy as np

    from protgen.data.promod3 import extract_from_deb, read_structure_db
    from protgen.data.structure import write_backbone
    from protgen.evaluation.config import EvalConfig
    from protgen.evaluation.evaluate import evaluate
    from protgen.method.simulation import SimulationConfig
    from protgen.sampling.config import SampleConfig
    from protgen.sampling.directory import sample_to_directory
    from protgen.training import checkpoint
    from protgen.training.checkpoint import default_checkpoint

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db_path = Path(args.db)
    if db_path.suffix == ".deb":
        db_path = extract_from_deb(db_path, out / "structure_db.dat")
    db = read_structure_db(db_path)
    names = {db.name(k): k for k in range(len(db))}
    with open(args.problems, newline="") as handle:
        problems = list(csv.DictReader(handle))
    model_path = args.checkpoint or default_checkpoint("motif")
    trained = checkpoint.load_model(model_path)  # once for all problems
    table = []
    for p in problems:
        if p["entry"] not in names:
            sys.exit(f"{p['entry']} is not in {args.db}")
        chain = db.chain(names[p["entry"]])
        motif = out / "motifs" / f"{p['entry']}.pdb"
        motif.parent.mkdir(exist_ok=True)
        write_backbone(
            motif,
            chain.atoms,
            chain_ids=np.full(len(chain), chain.chain_id),
            res_ids=chain.res_ids,
            sequence=chain.sequence,
        )
        config = SampleConfig(
            num=args.num,
            seed=args.seed,
            simulation=SimulationConfig(steps=args.steps),
            motif_file=str(motif),
            contig=p["contig"],
            total_length=p["total_length"],
        )
        sample_to_directory(model_path, out / p["name"], config, force=True, trained=trained)
        summary = evaluate(
            out / p["name"] / "manifest.csv",
            out / p["name"] / "eval",
            EvalConfig(mpnn=args.mpnn, workers=1),
        ).samples.to_dict()
        summary["junction_breaks"] = junction_breaks(out / p["name"])
        table.append((p, summary))
    print(
        "| problem | kind | motif residues | scaffolds | motif RMSD < 1 Å | motif RMSD, Å | "
        "geometry OK | clashes | breaks (at motif ends) | helix | strand |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for p, s in table:
        print(
            f"| {p['name']} | {p['kind']} | {p['motif_residues']} | {s['count']} | "
            f"{s['motif_rmsd_below_1A']:.0%} | {s['motif_rmsd']:.3f} | {s['geometry_ok']:.0%} | "
            f"{s['clashes']:.1f} | {s['chain_breaks']:.2f} ({s['junction_breaks']:.2f}) | "
            f"{s['helix']:.0%} | {s['strand']:.0%} |"
        )
    pooled = {
        k: float(np.mean([s[k] for _, s in table]))
        for k in (
            "motif_rmsd_below_1A",
            "geometry_ok",
            "clashes",
            "chain_breaks",
            "junction_breaks",
            "helix",
            "strand",
        )
    }
    print(
        f"| **all {len(table)} problems** | | | {sum(s['count'] for _, s in table)} | "
        f"{pooled['motif_rmsd_below_1A']:.0%} | | {pooled['geometry_ok']:.0%} | "
        f"{pooled['clashes']:.1f} | {pooled['chain_breaks']:.2f} ({pooled['junction_breaks']:.2f}) "
        f"| {pooled['helix']:.0%} | {pooled['strand']:.0%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    m = verbs.add_parser("make")
    m.add_argument("--set", required=True)
    m.add_argument("--out", default="data/motif_benchmark.csv")
    m.set_defaults(fn=make)
    r = verbs.add_parser("run")
    r.add_argument("--db", required=True, help="ProMod3 structure_db.dat or the promod3-data .deb")
    r.add_argument(
        "--problems",
        default=str(Path(__file__).resolve().parents[1] / "data" / "motif_benchmark.csv"),
    )
    r.add_argument("--checkpoint")
    r.add_argument("--num", type=int, default=8)
    r.add_argument("--steps", type=int, default=100)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--mpnn", default="off", choices=("auto", "on", "off"))
    r.add_argument("--out", required=True)
    r.set_defaults(fn=run)
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
