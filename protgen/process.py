"""Latent processes of LPGM (THEORY.md): prior, tractable conditional path, Φ and targets.

A latent process Y_t is given by: a prior sample Y_0; the conditional path Y_t between Y_0 and a
data-side latent Y_1 (closed form in t); the map Φ to the world state X_t = Φ(Y_t) (residue
frames, hence the backbone); and the conditional generator parameter F_t^{Y_t}(Φ(Y_t)), a
velocity of the world frames. The network is trained on (t, Φ(Y_t)) only — see
:func:`protgen.loss.generator_matching_loss`, which is the only caller of these methods in
training.

- :class:`ResidueFrameFlow` (Process 1): Y = world frames, Φ = identity on frames (injective).
- :class:`ChainFrameFlow` (Process 2): Y = (g, h_1..h_N), Φ(g, h)_i = g ∘ h_i (not injective).
"""

from dataclasses import dataclass

import torch

from protgen import so3
from protgen.generator import FrameVelocity
from protgen.loss import frame_velocity_loss
from protgen.rigid import Rigid

__all__ = ["ProcessConfig", "kabsch_rotation", "PathSample", "ChainLatent", "ResidueFrameFlow", "ChainFrameFlow", "make_process"]


@dataclass(frozen=True)
class ProcessConfig:
    """The latent process and its training-time choices (stored in checkpoints)."""

    name: str = "frames"  # "frames" (Process 1, per-residue flow) or "chain" (Process 2, chain ∘ residue)
    sigma: float = 10.0  # Å; std of the prior's centred Gaussian positions
    t_min: float = 0.01  # training times t ~ U[t_min, t_max]
    t_max: float = 0.99
    weight_clip: float = 0.9  # w(t) = min(1, (1 − t)²/(1 − weight_clip)²), FrameFlow's clipped 1/(1 − t)
    coupling: str = "kabsch"  # joint law of (Y_0, Y_1): "independent", or "kabsch" (each noise draw
    #   rotated rigidly onto its data chain; a coupling, so the loss stays exact — THEORY.md)
    rot_weight: float = 0.5  # weight of the rotational term (rad²)
    trans_weight: float = 1.0  # weight of the translational term (nm²)
    aux_weight: float = 0.0  # weight of FrameFlow's auxiliary backbone-atom and pair-distance losses on
    #   x̂_1 (nm²); not a Bregman divergence of the generator: biases the marginal (THEORY.md); 0 = off
    aux_t_min: float = 0.75  # the auxiliary losses apply only for t > aux_t_min, where the bias is small


@dataclass(frozen=True)
class ChainLatent:
    """Process-2 latent: chain frame g, Rigid (B,), and residue frames h relative to it, Rigid (B, N)."""

    g: Rigid
    h: Rigid


@dataclass(frozen=True)
class PathSample:
    """One draw of the conditional path: times t (B,), endpoints y_0, y_1, the state y_t, mask (B, N)."""

    t: torch.Tensor
    y_0: object
    y_1: object
    y_t: object
    mask: torch.Tensor


def _centred_gaussian(mask: torch.Tensor, sigma: float, generator, dtype) -> torch.Tensor:
    eps = torch.randn(*mask.shape, 3, generator=generator, dtype=dtype, device=mask.device)
    m = mask[..., None].to(dtype)
    mean = (eps * m).sum(-2, keepdim=True) / m.sum(-2, keepdim=True).clamp_min(1)
    return sigma * (eps - mean) * m


def _frame_noise(mask: torch.Tensor, sigma: float, generator, dtype) -> Rigid:
    rots = so3.uniform(mask.shape, dtype=dtype, device=mask.device, generator=generator)
    return Rigid(rots, _centred_gaussian(mask, sigma, generator, dtype))


def kabsch_rotation(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The rotation Q minimising Σ_i ‖Q x_i − y_i‖² over real residues (both point sets centred).

    x, y: Å, (B, N, 3); mask: (B, N) bool → Q: (B, 3, 3), a proper rotation (det +1).
    """
    m = mask[..., None].to(x.dtype)
    h = ((y * m).transpose(-1, -2) @ (x * m)).double()  # Σ y_i x_iᵀ, (B, 3, 3)
    u, _, vt = torch.linalg.svd(h)
    d = torch.sign(torch.linalg.det(u @ vt))
    flip = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    return (u @ flip @ vt).to(x.dtype)


def _couple(y_0: Rigid, y_1: Rigid, mask: torch.Tensor, coupling: str) -> Rigid:
    """The noise draw y_0 coupled to the data side y_1: unchanged ("independent") or rotated as a
    rigid body onto y_1's positions ("kabsch"). Rotating a whole draw by Q keeps the rotations Haar
    (they are independent of Q) and the positions an isotropic centred Gaussian up to that global
    rotation, which an equivariant network cannot see."""
    if coupling == "independent":
        return y_0
    if coupling != "kabsch":
        from protgen.errors import ConfigError

        raise ConfigError(f"unknown coupling {coupling!r}; choose independent or kabsch")
    q = kabsch_rotation(y_0.trans, y_1.trans, mask)[:, None]
    return Rigid(q @ y_0.rots, (q @ y_0.trans[..., None])[..., 0])


def _interpolate(y_0: Rigid, y_1: Rigid, t: torch.Tensor) -> Rigid:
    """Geodesic on SO(3) and straight line on R³. t broadcasts against y's leading shape."""
    return Rigid(so3.geodesic(y_0.rots, y_1.rots, t), y_0.trans + t[..., None] * (y_1.trans - y_0.trans))


def _velocity(y_t: Rigid, y_1: Rigid, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Body angular and translational velocity of the path toward y_1: log(R_tᵀR_1)/(1 − t), (p_1 − p_t)/(1 − t).

    t: shaped to broadcast against (..., 3), e.g. (B, 1, 1) for residue frames (B, N).
    """
    scale = 1 / (1 - t)
    return so3.log(y_t.rots.transpose(-1, -2) @ y_1.rots) * scale, (y_1.trans - y_t.trans) * scale


class ResidueFrameFlow:
    """Process 1: each residue frame flows from (Haar rotation, centred Gaussian position) to data."""

    def __init__(self, config: ProcessConfig = ProcessConfig()):
        self.config = config

    def sample_time(self, batch: int, generator=None, device=None) -> torch.Tensor:
        c = self.config
        return c.t_min + (c.t_max - c.t_min) * torch.rand(batch, generator=generator, device=device)

    def world_prior(self, mask: torch.Tensor, generator=None, dtype=torch.float32) -> Rigid:
        """A draw of Law(Φ(Y_0)), where the sampler starts. mask: (B, N) bool."""
        return _frame_noise(mask, self.config.sigma, generator, dtype)

    def sample_path(self, x_1: Rigid, mask: torch.Tensor, t: torch.Tensor, generator=None) -> PathSample:
        y_0 = _couple(self.world_prior(mask, generator, x_1.trans.dtype), x_1, mask, self.config.coupling)
        return PathSample(t, y_0, x_1, self.interpolate(y_0, x_1, t), mask)

    def interpolate(self, y_0: Rigid, y_1: Rigid, t: torch.Tensor) -> Rigid:
        return _interpolate(y_0, y_1, t[:, None])

    def phi(self, y: Rigid) -> Rigid:
        """World frames of a latent (here the latent itself)."""
        return y

    def target(self, path: PathSample) -> FrameVelocity:
        """F_t^{Y_t}: ω = log(R_tᵀR_1)/(1 − t) (body), v = (p_1 − p_t)/(1 − t) (world)."""
        omega, v = _velocity(path.y_t, path.y_1, path.t[:, None, None])
        m = path.mask[..., None].to(v.dtype)
        return FrameVelocity(omega * m, v * m)

    def loss(self, target: FrameVelocity, prediction: FrameVelocity, t: torch.Tensor, mask: torch.Tensor):
        """Squared-error Bregman divergence of both velocity components."""
        c = self.config
        return frame_velocity_loss(target, prediction, t, mask, c.rot_weight, c.trans_weight, c.weight_clip)


class ChainFrameFlow(ResidueFrameFlow):
    """Process 2: Φ(g, h)_i = g ∘ h_i. g follows a geodesic from a Haar-random orientation to
    another (its position stays at the origin, since data are centred); h_i follows Process 1's
    flow from noise to g_1⁻¹ ∘ T_i. The world prior equals Process 1's (Haar and isotropic
    Gaussian laws are rotation invariant); the world paths and the marginal generator differ."""

    def sample_path(self, x_1: Rigid, mask: torch.Tensor, t: torch.Tensor, generator=None) -> PathSample:
        batch, dtype, device = mask.shape[0], x_1.trans.dtype, mask.device
        origin = torch.zeros(batch, 3, dtype=dtype, device=device)
        g_0 = Rigid(so3.uniform((batch,), dtype, device, generator), origin)
        g_1 = Rigid(so3.uniform((batch,), dtype, device, generator), origin.clone())
        h_1 = Rigid(g_1.rots[:, None].expand_as(x_1.rots), g_1.trans[:, None].expand_as(x_1.trans)).invert().compose(x_1)
        h_0 = _couple(_frame_noise(mask, self.config.sigma, generator, dtype), h_1, mask, self.config.coupling)
        y_0, y_1 = ChainLatent(g_0, h_0), ChainLatent(g_1, h_1)
        return PathSample(t, y_0, y_1, self.interpolate(y_0, y_1, t), mask)

    def interpolate(self, y_0: ChainLatent, y_1: ChainLatent, t: torch.Tensor) -> ChainLatent:
        return ChainLatent(_interpolate(y_0.g, y_1.g, t), _interpolate(y_0.h, y_1.h, t[:, None]))

    def phi(self, y: ChainLatent) -> Rigid:
        g = Rigid(y.g.rots[:, None].expand_as(y.h.rots), y.g.trans[:, None].expand_as(y.h.trans))
        return g.compose(y.h)

    def target(self, path: PathSample) -> FrameVelocity:
        """World velocity of T_i = g ∘ h_i by the adjoint formula of THEORY.md:
        ω_i = R_hᵀω_g + ω_h, ṗ_i = ṗ_g + R_g(ω_g × p_h + ṗ_h)."""
        g, h = path.y_t.g, path.y_t.h
        omega_g, v_g = _velocity(g, path.y_1.g, path.t[:, None])
        omega_h, v_h = _velocity(h, path.y_1.h, path.t[:, None, None])
        omega = (h.rots.transpose(-1, -2) @ omega_g[:, None, :, None])[..., 0] + omega_h
        local = torch.cross(omega_g[:, None].expand_as(h.trans), h.trans, dim=-1) + v_h
        v = v_g[:, None] + (g.rots[:, None] @ local[..., None])[..., 0]
        m = path.mask[..., None].to(v.dtype)
        return FrameVelocity(omega * m, v * m)


_PROCESSES = {"frames": ResidueFrameFlow, "chain": ChainFrameFlow}


def make_process(config: ProcessConfig) -> ResidueFrameFlow:
    if config.name not in _PROCESSES:
        from protgen.errors import ConfigError

        raise ConfigError(f"unknown process {config.name!r}; choose one of {', '.join(_PROCESSES)}")
    return _PROCESSES[config.name](config)

