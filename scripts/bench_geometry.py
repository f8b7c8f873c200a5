"""Benchmark: SO(3) exp/log/geodesic and Φ on 100k frames, float32, 1 thread, ours vs geomstats
(numpy backend) in two forms: its vectorised rotation-vector primitives (the fastest path we found,
composed by hand for the geodesic) and its Riemannian-metric API on matrices (metric.exp/log/
geodesic, what a geomstats user calls), timed on --n-metric frames and scaled linearly to --n.

Run: python scripts/bench_geometry.py [--n 100000] [--n-metric 500]. Prints milliseconds per call.
"""

import argparse
import os
import time

os.environ.setdefault("GEOMSTATS_BACKEND", "numpy")

import numpy as np
import torch

from protgen.geometry import so3
from protgen.geometry.backbone import frames_to_backbone
from protgen.geometry.rigid import Rigid


def _time(fn, repeat=5):
    if repeat > 1:
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return 1e3 * best


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--n-metric", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from geomstats.geometry.special_orthogonal import SpecialOrthogonal

    group = SpecialOrthogonal(n=3, point_type="vector")
    g = torch.Generator().manual_seed(0)
    v = torch.randn(args.n, 3, generator=g)
    r0, r1 = so3.uniform((args.n,), generator=g), so3.uniform((args.n,), generator=g)
    frames = Rigid(r0, 10 * torch.randn(args.n, 3, generator=g))
    v_np, r0_np, r1_np = v.numpy().astype(np.float32), r0.numpy(), r1.numpy()

    def gs_geodesic():
        rel = group.rotation_vector_from_matrix(np.einsum("nji,njk->nik", r0_np, r1_np))
        return np.einsum("nij,njk->nik", r0_np, group.matrix_from_rotation_vector(0.3 * rel))

    matrices = SpecialOrthogonal(n=3)
    m = args.n_metric
    a, b = r0_np[:m].astype(np.float64), r1_np[:m].astype(np.float64)
    tangent = matrices.metric.log(b, a)
    scale = args.n / m
    metric = {
        "exp": _time(lambda: matrices.metric.exp(tangent, a), 1) * scale,
        "log": _time(lambda: matrices.metric.log(b, a), 1) * scale,
        "geodesic": _time(
            lambda: matrices.metric.geodesic(initial_point=a, end_point=b)(np.array([0.3])), 1
        )
        * scale,
    }
    rows = [
        ("exp", _time(lambda: so3.exp(v)), _time(lambda: group.matrix_from_rotation_vector(v_np))),
        (
            "log",
            _time(lambda: so3.log(r0)),
            _time(lambda: group.rotation_vector_from_matrix(r0_np)),
        ),
        ("geodesic", _time(lambda: so3.geodesic(r0, r1, 0.3)), _time(gs_geodesic)),
        ("phi (frames→N,CA,C,O)", _time(lambda: frames_to_backbone(frames)), float("nan")),
    ]
    print(
        f"{args.n} frames, float32, {torch.get_num_threads()} thread; geomstats metric API timed "
        f"on {m} frames and scaled"
    )
    print(
        f"{'operation':<24}{'protgen ms':>12}{'gs vector ms':>14}{'speed-up':>10}"
        f"{'gs metric ms':>14}{'speed-up':>10}"
    )
    for name, ours, ref in rows:
        met = metric.get(name.split()[0], float("nan"))
        print(
            f"{name:<24}{ours:>12.1f}{ref:>14.1f}{ref / ours:>10.1f}{met:>14.0f}{met / ours:>10.0f}"
        )


if __name__ == "__main__":
    main()
