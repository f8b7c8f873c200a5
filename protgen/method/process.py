"""Latent processes of LPGM (protgen/THEORY.md): prior, tractable conditional path, Φ and targets.

A latent process Y_t is given by: a prior sample Y_0 (coupled to the data side Y_1, see
``coupling``); the conditional path Y_t between Y_0 and Y_1 (closed form in t); the map Φ to the
world state X_t = Φ(Y_t) (a :class:`WorldState`: residue frames, mask, numbering); and the
conditional generator parameter F_t^{Y_t}(Φ(Y_t)), a velocity of the world frames. The network is
trained on (t, Φ(Y_t)) only — :func:`protgen.method.loss.generator_matching_loss` is the only
caller of these methods in training.

- :class:`ResidueFrameFlow` (Process 1): Y = world frames, Φ = identity (injective).
- :class:`ChainFrameFlow` (Process 2): Y = (g, h_1..h_N), Φ(g, h)_i = g ∘ h_i (not injective); it
  composes Process 1 for the residue frames h.

Process 3 is ``method/insertion.py``; ``method/registry.py`` makes a process from its config.

Random draws take ``rng``, a ``torch.Generator`` (or None for torch's global one).
"""

from dataclasses import dataclass
from typing import Protocol

import torch

from protgen.errors import ConfigError
from protgen.geometry import so3
from protgen.geometry.rigid import Rigid
from protgen.geometry.superposition import kabsch_rotation
from protgen.geometry.world import WorldState
from protgen.method import paths
from protgen.method.generator import FrameVelocity

__all__ = [
    "ProcessConfig",
    "LatentProcess",
    "PathSample",
    "ChainLatent",
    "ResidueFrameFlow",
    "ChainFrameFlow",
    "JumpProcess",
]


@dataclass(frozen=True)
class ProcessConfig:
    """The latent process (stored in checkpoints; the loss's settings are
    method.loss.LossConfig)."""

    # the process's name in method.registry: "frames" (Process 1), "chain" (Process 2, chain ∘
    # residue) or "insertion" (Process 3, variable length)
    name: str = "frames"
    sigma: float = 10.0  # Å; std of the prior's centred Gaussian positions
    # training times t ~ U[t_min, t_max]; Processes 1 and 2 start sampling at t_min (Process 3 at 0)
    t_min: float = 0.01
    t_max: float = 0.99
    # Process 3: every residue is inserted by this time (κ(t) = min(1, t/insertion_end))
    insertion_end: float = 0.8
    # Å; Process 3: noise of a new residue's birth position (and of the seed's)
    birth_sigma: float = 2.0
    # Process 3: share of the training times drawn uniformly on [insertion_end, t_max], after the
    # last birth, where x̂_1's local geometry is set; the other shares shrink in proportion
    # (0: the shipped law, 7.7 % of the times above t = 0.8 against Process 1's 19 %)
    late_share: float = 0.0
    coupling: str = "kabsch"  # joint law of (Y_0, Y_1): "independent", or "kabsch" (each noise draw
    # rotated rigidly onto its data chain; a coupling, so the loss stays exact — protgen/THEORY.md
    # §7)


class LatentProcess(Protocol):
    """What every latent process provides (Processes 1–3 here; the toy processes of the tests).

    The latent y is the process's own type; the world state is always a :class:`WorldState`.
    Optional abilities are declared, never inferred from a name or an attribute's presence: the
    sampler, training and the command line ask ``emerging_length``, ``supports_motif`` and
    ``gaussian_positions``; a process whose length emerges is also a :class:`JumpProcess`.
    """

    config: ProcessConfig
    # Φ(Y_t) holds fewer residues than the data until the end: sampling starts from the prior's
    # own residues (not a requested length), the process is a JumpProcess, and its network needs
    # the gap head (NetworkConfig.insertion)
    emerging_length: bool
    # conditioned (fixed, motif) residues of the data stay at the data along the path
    supports_motif: bool
    # positions follow p_t | p_1 ~ N(t p_1, (1 − t)²σ²) up to the coupling: the stochastic
    # sampler reads its score off x̂_1 (protgen/THEORY.md §9)
    gaussian_positions: bool

    @property
    def start_time(self) -> float:
        """Where sampling starts: the time at which world_prior is the law of Φ(Y_t)."""

    def sample_time(
        self, batch: int, rng: torch.Generator | None = None, device=None
    ) -> torch.Tensor:
        """Training times, (batch,)."""

    def world_prior(self, like: WorldState, rng: torch.Generator | None = None) -> WorldState:
        """A draw of Law(Φ(Y_0)) with the residues (mask, numbering) of ``like``: where sampling
        starts."""

    def sample_path(
        self, x_1: WorldState, t: torch.Tensor, rng: torch.Generator | None = None
    ) -> "PathSample":
        """A draw of (Y_0, Y_1, Y_t) given data x_1 and times t (B,)."""

    def phi(self, y) -> WorldState:
        """Φ: the world state of a latent."""

    def target(self, path: "PathSample") -> FrameVelocity:
        """F_t^{Y_t}(Φ(Y_t)): the conditional generator parameter on the world state."""

    def clean_frames(self, path: "PathSample", x_1: WorldState) -> Rigid:
        """The data frames of the residues of Φ(Y_t), in the world state's order (auxiliary
        losses, validation): Rigid (B, N), Å."""


class JumpProcess(LatentProcess, Protocol):
    """A latent process whose world state gains residues by jumps (``emerging_length``): its
    generator parameter carries ``FrameVelocity.gap_counts`` and the sampler applies ``insert``
    after every flow step."""

    def insert(
        self, x: WorldState, counts: torch.Tensor, t: float, dt: float, rngs: list[torch.Generator]
    ) -> WorldState:
        """One jump step from t to t + dt. counts: (B, n + 1) predicted expected hidden residues
        per gap; rngs: one CPU generator per chain, so a chain's growth does not depend on its
        batch. The state returned may record each residue's insertion time (``birth``, the
        newborns' > t): the sampler then carries x̂_1 across the step (older residues keep theirs,
        newborns take their birth frame); without it self-conditioning restarts after a jump."""


@dataclass(frozen=True)
class ChainLatent:
    """Process-2 latent: chain frame g, Rigid (B,), and residue frames h relative to it (a
    WorldState whose frames are relative to g)."""

    g: Rigid
    h: WorldState


@dataclass(frozen=True)
class PathSample:
    """One draw of the conditional path: times t (B,), endpoints y_0, y_1 and the state y_t."""

    t: torch.Tensor
    y_0: object
    y_1: object
    y_t: object


def _couple(y_0: WorldState, y_1: WorldState, coupling: str) -> WorldState:
    """The noise draw y_0 coupled to the data side y_1: unchanged ("independent") or rotated as a
    rigid body onto y_1's positions ("kabsch"). Rotating a whole draw by Q keeps the rotations Haar
    (they are independent of Q) and the positions an isotropic centred Gaussian up to that global
    rotation, which an equivariant network cannot see (protgen/THEORY.md, couplings)."""
    if coupling == "independent":
        return y_0
    if coupling != "kabsch":
        raise ConfigError(f"unknown coupling {coupling!r}; choose independent or kabsch")
    q = kabsch_rotation(y_0.frames.trans, y_1.frames.trans, y_1.mask)
    if y_1.fixed is not None:  # a motif fixes the orientation: its chains keep the independent draw
        conditioned = y_1.fixed.any(-1)
        q = torch.where(conditioned[:, None, None], torch.eye(3, dtype=q.dtype, device=q.device), q)
    q = q[:, None]
    return y_0.with_frames(Rigid(q @ y_0.frames.rots, (q @ y_0.frames.trans[..., None])[..., 0]))


class ResidueFrameFlow:
    """Process 1: each residue frame flows from a Haar rotation and centred Gaussian position."""

    emerging_length = False
    supports_motif = True
    gaussian_positions = True

    def __init__(self, config: ProcessConfig = ProcessConfig()):
        self.config = config

    @property
    def start_time(self) -> float:
        """t_min: the prior is the law at t = 0, and the network is trained on t ≥ t_min (one step
        of the path from the prior is negligible)."""
        return self.config.t_min

    def sample_time(self, batch: int, rng=None, device=None) -> torch.Tensor:
        return paths.uniform_times(self.config.t_min, self.config.t_max, batch, rng, device)

    def world_prior(self, like: WorldState, rng=None) -> WorldState:
        """Noise on the generated residues — positions centred over them — while fixed (motif)
        residues keep the frames of ``like``: the prior of the conditional process."""
        generated, dtype = like.generated, like.frames.trans.dtype
        rots = so3.uniform(generated.shape, dtype=dtype, device=generated.device, generator=rng)
        noise = Rigid(rots, paths.centred_gaussian(generated, self.config.sigma, rng, dtype))
        if like.fixed is None:
            return like.with_frames(noise)
        keep = like.fixed
        return like.with_frames(
            Rigid(
                torch.where(keep[..., None, None], like.frames.rots, noise.rots),
                torch.where(keep[..., None], like.frames.trans, noise.trans),
            )
        )

    def sample_path(self, x_1: WorldState, t: torch.Tensor, rng=None) -> PathSample:
        y_0 = _couple(self.world_prior(x_1, rng), x_1, self.config.coupling)
        return PathSample(t, y_0, x_1, self.interpolate(y_0, x_1, t))

    def interpolate(self, y_0: WorldState, y_1: WorldState, t: torch.Tensor) -> WorldState:
        return y_1.with_frames(paths.interpolate(y_0.frames, y_1.frames, t[:, None]))

    def phi(self, y: WorldState) -> WorldState:
        """The world state of a latent (here the latent itself)."""
        return y

    def target(self, path: PathSample) -> FrameVelocity:
        """F_t^{Y_t}: ω = log(R_tᵀR_1)/(1 − t) (body), v = (p_1 − p_t)/(1 − t) (world)."""
        omega, v = paths.velocity(path.y_t.frames, path.y_1.frames, path.t[:, None, None])
        # fixed residues stay at the data: zero velocity
        m = path.y_t.generated[..., None].to(v.dtype)
        return FrameVelocity(omega * m, v * m)

    def clean_frames(self, path: PathSample, x_1: WorldState) -> Rigid:
        """Φ keeps every residue: the data frames themselves."""
        return x_1.frames


class ChainFrameFlow:
    """Process 2: Φ(g, h)_i = g ∘ h_i. g follows a geodesic from a Haar-random orientation to
    another (its position stays at the origin, since data are centred); h_i follows Process 1's
    flow from noise to g_1⁻¹ ∘ T_i. The world prior equals Process 1's (Haar and isotropic
    Gaussian laws are rotation invariant); the world paths and the marginal generator differ."""

    emerging_length = False
    # a motif's frames would fix the chain frame g, which the path rotates
    supports_motif = False
    # p_t = g_t ∘ h_t turns with the chain frame: not Gaussian given p_1
    gaussian_positions = False

    def __init__(self, config: ProcessConfig = ProcessConfig()):
        self.config = config
        self.residues = ResidueFrameFlow(config)

    @property
    def start_time(self) -> float:
        return self.residues.start_time

    def sample_time(self, batch: int, rng=None, device=None) -> torch.Tensor:
        return self.residues.sample_time(batch, rng, device)

    def world_prior(self, like: WorldState, rng=None) -> WorldState:
        return self.residues.world_prior(like, rng)

    def sample_path(self, x_1: WorldState, t: torch.Tensor, rng=None) -> PathSample:
        if x_1.fixed is not None and bool(x_1.fixed.any()):
            raise ConfigError(
                "the chain process (Process 2) does not support motif conditioning; use --process "
                "frames"
            )
        batch, dtype, device = x_1.mask.shape[0], x_1.frames.trans.dtype, x_1.mask.device
        origin = torch.zeros(batch, 3, dtype=dtype, device=device)
        g_0 = Rigid(so3.uniform((batch,), dtype, device, rng), origin)
        g_1 = Rigid(so3.uniform((batch,), dtype, device, rng), origin.clone())
        h_1 = x_1.with_frames(_broadcast(g_1, x_1.frames).invert().compose(x_1.frames))
        h_0 = _couple(self.residues.world_prior(x_1, rng), h_1, self.config.coupling)
        y_0, y_1 = ChainLatent(g_0, h_0), ChainLatent(g_1, h_1)
        return PathSample(t, y_0, y_1, self.interpolate(y_0, y_1, t))

    def interpolate(self, y_0: ChainLatent, y_1: ChainLatent, t: torch.Tensor) -> ChainLatent:
        return ChainLatent(
            paths.interpolate(y_0.g, y_1.g, t), self.residues.interpolate(y_0.h, y_1.h, t)
        )

    def phi(self, y: ChainLatent) -> WorldState:
        return y.h.with_frames(_broadcast(y.g, y.h.frames).compose(y.h.frames))

    def target(self, path: PathSample) -> FrameVelocity:
        """World velocity of T_i = g ∘ h_i by the adjoint formula of protgen/THEORY.md:
        ω_i = R_hᵀω_g + ω_h, ṗ_i = ṗ_g + R_g(ω_g × p_h + ṗ_h)."""
        g, h = path.y_t.g, path.y_t.h.frames
        omega_g, v_g = paths.velocity(g, path.y_1.g, path.t[:, None])
        omega_h, v_h = paths.velocity(h, path.y_1.h.frames, path.t[:, None, None])
        omega = (h.rots.transpose(-1, -2) @ omega_g[:, None, :, None])[..., 0] + omega_h
        local = torch.cross(omega_g[:, None].expand_as(h.trans), h.trans, dim=-1) + v_h
        v = v_g[:, None] + (g.rots[:, None] @ local[..., None])[..., 0]
        m = path.y_t.h.mask[..., None].to(v.dtype)
        return FrameVelocity(omega * m, v * m)

    def clean_frames(self, path: PathSample, x_1: WorldState) -> Rigid:
        """Φ keeps every residue: the data frames themselves."""
        return x_1.frames


def _broadcast(g: Rigid, like: Rigid) -> Rigid:
    """A per-chain frame (B,) repeated over the residues of ``like`` (B, N)."""
    return Rigid(g.rots[:, None].expand_as(like.rots), g.trans[:, None].expand_as(like.trans))
