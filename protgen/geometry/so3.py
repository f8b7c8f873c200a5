"""The rotation group SO(3) in torch: hat/vee, exp/log, geodesics and Haar sampling.

Rotation vectors are θ·axis with θ = ‖v‖ ∈ [0, π]. Every function takes any leading shape
``(...)``, works in float32 and float64, and has finite values and gradients at θ = 0 and near
θ = π. Matrices act on column vectors; body (right-trivialised) velocities satisfy Ṙ = R·hat(ω).
"""

import torch

__all__ = [
    "hat",
    "vee",
    "exp",
    "log",
    "geodesic",
    "uniform",
    "quaternion_to_matrix",
    "angle",
]

# Below this angle (radians) the series expansions replace sin θ/θ and friends.
_SMALL = 1e-3


def hat(v: torch.Tensor) -> torch.Tensor:
    """Skew-symmetric matrix of a vector: hat(v) @ u = v × u. v: (..., 3) → (..., 3, 3)."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack(
        [torch.stack([o, -z, y], -1), torch.stack([z, o, -x], -1), torch.stack([-y, x, o], -1)], -2
    )


def vee(m: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hat` on the skew part of m. m: (..., 3, 3) → (..., 3)."""
    return 0.5 * torch.stack(
        [m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1
    )


def exp(v: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula R = cos θ·I + A·hat(v) + B·v vᵀ, A = sin θ/θ, B = (1 − cos θ)/θ².

    v: rad, (..., 3) → (..., 3, 3). Written per component: ~4× faster than matrix products.
    """
    x, y, z = v.unbind(-1)
    theta2 = x * x + y * y + z * z
    small = theta2 < _SMALL**2
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    a = torch.where(small, 1 - theta2 / 6 + theta2**2 / 120, torch.sin(theta) / theta)
    b = torch.where(
        small, 0.5 - theta2 / 24 + theta2**2 / 720, (1 - torch.cos(theta)) / theta2_safe
    )
    c = 1 - b * theta2
    ax, ay, az = a * x, a * y, a * z
    bxy, bxz, byz = b * x * y, b * x * z, b * y * z
    rows = (
        c + b * x * x,
        bxy - az,
        bxz + ay,
        bxy + az,
        c + b * y * y,
        byz - ax,
        bxz - ay,
        byz + ax,
        c + b * z * z,
    )
    return torch.stack(rows, -1).reshape(*v.shape[:-1], 3, 3)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrix of a quaternion (w, x, y, z), normalised first. q: (..., 4) → (..., 3, 3)."""
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def log(r: torch.Tensor) -> torch.Tensor:
    """Rotation vector θ·axis of a rotation matrix, θ ∈ [0, π]. r: (..., 3, 3) → rad, (..., 3).

    θ = atan2(‖w‖, (tr R − 1)/2) with w = vee(R) = sin θ·axis, so v = θ/sin θ·w; for θ near π,
    where w vanishes, the axis comes from (R + Rᵀ)/2 − cos θ·I = (1 − cos θ)·axis·axisᵀ.
    """
    shape = r.shape[:-2]
    r = r.reshape(-1, 3, 3)
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = r.reshape(-1, 9).unbind(-1)
    cos = ((r00 + r11 + r22 - 1) * 0.5).clamp(-1.0, 1.0)
    wx, wy, wz = (r21 - r12) * 0.5, (r02 - r20) * 0.5, (r10 - r01) * 0.5
    n2 = wx * wx + wy * wy + wz * wz
    n = (n2 + 1e-30).sqrt()  # the offset keeps d√/dn2 finite at n2 = 0
    theta = torch.atan2(n, cos)
    small = n2 < _SMALL**2
    ratio = torch.where(
        small & (cos > 0), 1 + n2 / 6, theta / torch.where(small, torch.ones_like(n), n)
    )
    out = torch.stack([ratio * wx, ratio * wy, ratio * wz], -1)
    near = (cos < -0.9).nonzero()[:, 0]
    if len(near):
        out = out.index_put((near,), _log_near_pi(r.index_select(0, near)))
    return out.reshape(*shape, 3)


def _log_near_pi(r: torch.Tensor) -> torch.Tensor:
    """log for rotations with cos θ < −0.9: the axis is the largest column of
    (R + Rᵀ)/2 − cos θ·I = (1 − cos θ)·a·aᵀ, its sign that of vee(R) = sin θ·a. r: (M, 3, 3)."""
    cos = ((torch.diagonal(r, dim1=-2, dim2=-1).sum(-1) - 1) * 0.5).clamp(-1.0, 1.0)
    w = vee(r)
    sym = 0.5 * (r + r.transpose(-1, -2)) - cos[:, None, None] * torch.eye(
        3, dtype=r.dtype, device=r.device
    )
    d = torch.diagonal(sym, dim1=-2, dim2=-1)
    k = torch.where(
        (d[:, 0] >= d[:, 1]) & (d[:, 0] >= d[:, 2]), 0, torch.where(d[:, 1] >= d[:, 2], 1, 2)
    )
    axis = sym[torch.arange(len(k), device=r.device), :, k]
    axis = axis / axis.norm(dim=-1, keepdim=True)
    axis = torch.where(((axis * w).sum(-1) < 0)[:, None], -axis, axis)
    theta = torch.atan2((w * w).sum(-1).add(1e-30).sqrt(), cos)
    return theta[:, None] * axis


def angle(r: torch.Tensor) -> torch.Tensor:
    """Rotation angle θ ∈ [0, π] of r: (..., 3, 3) → rad, (...)."""
    return log(r).norm(dim=-1)


def geodesic(r_0: torch.Tensor, r_1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Point at time t on the geodesic R_t = R_0·exp(t·log(R_0ᵀR_1)).

    r_0, r_1: (..., 3, 3); t: scalar or broadcastable to (...) → (..., 3, 3).
    """
    t = torch.as_tensor(t, dtype=r_0.dtype, device=r_0.device)
    return r_0 @ exp(t[..., None] * log(r_0.transpose(-1, -2) @ r_1))


def uniform(
    shape: tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Haar-uniform rotations: normalised Gaussian quaternions. → (*shape, 3, 3)."""
    q = torch.randn(*shape, 4, dtype=dtype, device=device, generator=generator)
    return quaternion_to_matrix(q)
