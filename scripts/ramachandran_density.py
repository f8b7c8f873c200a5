"""The Ramachandran "allowed" region of the quality panel: the 98 % contour of real chains' (φ, ψ)
density, computed once from a training set and stored in the package as
protgen/evaluation/ramachandran_allowed.json (which names this script and its source).

One segment per sequence cluster of the set's training split (no redundant chains; the held-out
clusters stay free to check the region on), every inner residue's (φ, ψ); a histogram
of 5° bins, smoothed by a periodic Gaussian of σ = 1 bin; the allowed bins are the densest ones
that together hold 98 % of the residues. The stored grid is readable as a picture: one row per ψ
bin from +180° (top) down to −180°, one column per φ bin from −180° (left) to +180°, '#' allowed.

Usage: python scripts/ramachandran_density.py --set SET [--out FILE] [--mass 0.98] [--describe TEXT]
The stored file was made from ProMod3's PDB chains (`protgen data promod3`, segments of 40–128
residues) with --describe "ProMod3's PDB chains, segments of 40-128 residues".
"""

import argparse
import json
from pathlib import Path

import numpy as np

BIN = 5  # degrees
SIGMA = 1.5  # bins


def _smooth(hist: np.ndarray, sigma: float) -> np.ndarray:
    """Periodic Gaussian blur of a 2-D histogram (φ and ψ wrap around), by FFT."""
    n = hist.shape[0]
    k = np.minimum(np.arange(n), n - np.arange(n))
    kernel = np.exp(-0.5 * (k / sigma) ** 2)
    kernel2 = np.outer(kernel, kernel)
    kernel2 /= kernel2.sum()
    return np.real(np.fft.ifft2(np.fft.fft2(hist) * np.fft.fft2(kernel2)))


def allowed_grid(phi: np.ndarray, psi: np.ndarray, mass: float) -> np.ndarray:
    """(ψ bins, φ bins) bool, ψ from +180° down: the densest bins holding ``mass`` of the
    residues."""
    edges = np.linspace(-180, 180, 360 // BIN + 1)
    hist, _, _ = np.histogram2d(phi, psi, bins=[edges, edges])  # (φ, ψ)
    density = _smooth(hist, SIGMA)
    order = np.argsort(density, axis=None)[::-1]
    cumulative = np.cumsum(density.ravel()[order]) / density.sum()
    keep = order[: int(np.searchsorted(cumulative, mass)) + 1]
    grid = np.zeros(density.size, bool)
    grid[keep] = True
    return grid.reshape(density.shape).T[::-1]


def main() -> None:
    from protgen.data.dataset import TrainingSet
    from protgen.evaluation.quality import ramachandran

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", required=True, help="a `protgen data build` training set")
    parser.add_argument(
        "--out",
        default=str(
            Path(__file__).parents[1] / "protgen" / "evaluation" / "ramachandran_allowed.json"
        ),
    )
    parser.add_argument("--mass", type=float, default=0.98, help="fraction of residues inside")
    parser.add_argument("--describe", default="", help="what the set is, for the stored file")
    args = parser.parse_args()
    ts = TrainingSet.load(args.set)
    first_of_cluster = {}
    for i in ts.indices("train") or ts.indices():
        first_of_cluster.setdefault(ts.records[i].cluster, i)
    angles = [
        ramachandran(ts.segment_atoms(i).astype(np.float64)) for i in first_of_cluster.values()
    ]
    phi = np.concatenate([a[0] for a in angles])
    psi = np.concatenate([a[1] for a in angles])
    grid = allowed_grid(phi, psi, args.mass)
    payload = {
        "script": "scripts/ramachandran_density.py",
        "source": f"{args.describe or Path(args.set).name} (training set {ts.meta.fingerprint}"
        f"): one segment per {ts.meta.config.identity:.0%} sequence-identity cluster of the "
        "training split",
        "chains": len(first_of_cluster),
        "residues": int(len(phi)),
        "mass": args.mass,
        "bin_degrees": BIN,
        "smoothing_bins": SIGMA,
        "area_fraction": round(float(grid.mean()), 4),
        "grid": ["".join("#" if x else "." for x in row) for row in grid],
    }
    Path(args.out).write_text(json.dumps(payload, indent=1) + "\n")
    print(
        f"{len(phi):,} residues of {len(first_of_cluster):,} chains; allowed region: "
        f"{grid.mean():.1%} of the plane holds {args.mass:.0%} of the residues → {args.out}"
    )


if __name__ == "__main__":
    main()
