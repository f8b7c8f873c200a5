"""Process 3: variable length by insertion — hidden residues are part of the latent, Φ drops them.

Latent (protgen/THEORY.md §10): the data chain x_1 with N residues; one uniformly chosen *seed*
residue visible from t = 0; every other residue i inserted at an independent time τ_i with CDF
κ(t) = min(1, t/T) (T = ``insertion_end``), i.e. at hazard h(t) = κ'/(1 − κ) = 1/(T − t) while
hidden; and per residue a birth noise (a Haar rotation and a Gaussian offset). A residue is born
at a state computable from the world state alone: the midpoint of its visible sequence neighbours
(or on its one neighbour at a chain end; at the origin for the seed) plus σ_b·ε, with its noise
rotation. From birth it flows to its data frame as in Process 1 — geodesic and straight line over
[τ_i, 1] — so its velocity at t is log(R_tᵀR_1)/(1 − t), (p_1 − p_t)/(1 − t), whatever τ_i was.

Φ keeps the visible residues in sequence order, numbered 0..n_t − 1 (data numbering would reveal
where hidden residues are). The conditional generator on 𝒳: that flow, and for each of the
n_t + 1 gaps an insertion rate h(t)·(hidden residues in the gap). The network predicts the
expected count per gap (Poisson Bregman loss); by Rao–Blackwellisation the target is the
conditional rate given the latent *without* the hidden residues' insertion times — the sum of
their hazards, which for these i.i.d. times is h(t)·count. (Had the reveal order been structured,
with per-residue hazards, the count times one h(t) would be biased; the sum is not.)
"""

from dataclasses import dataclass, replace

import torch

from protgen.errors import ConfigError
from protgen.geometry import so3
from protgen.geometry.rigid import Rigid
from protgen.geometry.world import WorldState
from protgen.method import paths
from protgen.method.generator import FrameVelocity
from protgen.method.process import PathSample, ProcessConfig

__all__ = ["InsertionLatent", "InsertionProcess", "gap_counts", "compact", "EARLY_TIMES"]

EARLY_TIMES = 0.05  # the first sampler steps, where 15 % of the training times are drawn


@dataclass(frozen=True)
class InsertionLatent:
    """Process-3 latent at time t: the data x_1 (full chains), the insertion times tau (B, N) (0 for
    the seed residue), the birth frames (B, N) and, at t, the visible residues (B, N) bool and the
    frames of the full chains (meaningful where visible)."""

    x_1: WorldState
    tau: torch.Tensor
    birth: Rigid
    t: torch.Tensor
    visible: torch.Tensor
    frames: Rigid


def _order(keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (B, n) that list each chain's kept residues first, in order, and the mask (B, n)
    of real entries; n = the most kept residues of any chain (at least 1)."""
    counts = keep.sum(-1)
    n = max(int(counts.max()), 1)
    order = torch.sort((~keep).to(torch.int8), dim=-1, stable=True).indices[:, :n]
    return order, torch.arange(n, device=keep.device)[None] < counts[:, None]


def _take(x: torch.Tensor, order: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x (B, N, ...) at the listed indices (B, n), zero where the mask is False."""
    batch = torch.arange(x.shape[0], device=x.device)[:, None]
    out = x[batch, order]
    return out * mask.view(*mask.shape, *([1] * (out.dim() - 2))).to(out.dtype)


def compact(frames: Rigid, keep: torch.Tensor) -> WorldState:
    """The kept residues of each chain, in order, padded to the longest: a world state numbered
    0..n − 1 along each chain. frames: Rigid (B, N); keep: (B, N) bool."""
    order, mask = _order(keep)
    eye = torch.eye(3, dtype=frames.rots.dtype, device=keep.device)
    rots = torch.where(
        mask[..., None, None],
        frames.rots[torch.arange(keep.shape[0], device=keep.device)[:, None], order],
        eye,
    )
    return WorldState.of(Rigid(rots, _take(frames.trans, order, mask)), mask)


def gap_counts(
    visible: torch.Tensor, real: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Hidden residues (or the sum of their ``weights``) in each gap of the visible ones: gap g is
    before the g-th visible residue, gap n after the last. visible, real: (B, N)
    bool → (B, n_max + 1)."""
    hidden = (real & ~visible).to(torch.float64 if weights is None else weights.dtype)
    if weights is not None:
        hidden = hidden * weights
    # hidden residue i lies in gap (visible residues before i)
    slot = torch.cumsum(visible.long(), -1)
    n_max = int(visible.sum(-1).max())
    out = torch.zeros(visible.shape[0], n_max + 1, dtype=hidden.dtype, device=visible.device)
    return out.scatter_add_(1, slot.clamp(max=n_max), hidden)


class InsertionProcess:
    """Process 3 (see the module docstring): a JumpProcess whose length emerges."""

    emerging_length = True
    supports_motif = False
    # a residue's path starts at its birth, not at a Gaussian prior
    gaussian_positions = False

    def __init__(self, config: ProcessConfig = ProcessConfig(name="insertion")):
        if not 0.0 <= config.late_share < 1.0:
            raise ConfigError(f"process late_share must be in [0, 1), got {config.late_share}")
        self.config = config

    @property
    def start_time(self) -> float:
        """0: the one-residue prior is the latent's law at t = 0 exactly (later, every residue is
        already visible with probability κ(t), which a one-residue start would ignore)."""
        return 0.0

    def step_probability(self, t: float, dt: float) -> float:
        """P(a residue hidden at t is inserted by t + dt) = (κ(t + dt) − κ(t))/(1 − κ(t)): the exact
        integral of the hazard over the step (1 on the step that reaches the insertion end)."""
        end = self.config.insertion_end
        k0, k1 = min(t / end, 1.0), min((t + dt) / end, 1.0)
        return 0.0 if k0 >= 1 else (k1 - k0) / (1 - k0)

    def sample_time(self, batch: int, rng=None, device=None) -> torch.Tensor:
        """Times on [0, t_max], the range the sampler runs over (it starts at t = 0). Before the
        late share s = ``late_share``, scaled by (1 − s): 40 % uniform; 45 % uniform in the
        insertion clock u = −log(1 − κ(t)) ∈ [0, 5] (t = T(1 − e^{−u}), dense near the insertion
        end, where the rate errors that matter most are); 15 % uniform on [0, EARLY_TIMES] (the
        first steps, where a seed grows by its largest counts). Then s uniform on
        [insertion_end, t_max] (every residue born: the times that set x̂_1's local geometry,
        which the clock's share, all below the insertion end, leaves thin). A time law is a
        positive time weight, so the minimiser is unchanged at every t."""
        c = self.config
        uniform = paths.uniform_times(0.0, c.t_max, batch, rng, device)
        clock = c.insertion_end * (
            1 - torch.exp(-5 * torch.rand(batch, generator=rng, device=device))
        )
        early = EARLY_TIMES * torch.rand(batch, generator=rng, device=device)
        pick = torch.rand(batch, generator=rng, device=device)
        t = torch.where(pick < 0.4, uniform, torch.where(pick < 0.85, clock, early))
        if c.late_share > 0:
            late = paths.uniform_times(min(c.insertion_end, c.t_max), c.t_max, batch, rng, device)
            late_pick = torch.rand(batch, generator=rng, device=device) < c.late_share
            t = torch.where(late_pick, late, t)
        return t

    def world_prior(self, like: WorldState, rng=None) -> WorldState:
        """One seed residue per chain, at the origin plus σ_b·ε with a Haar rotation."""
        batch, dtype, device = like.mask.shape[0], like.frames.trans.dtype, like.mask.device
        rots = so3.uniform((batch, 1), dtype=dtype, device=device, generator=rng)
        trans = self.config.birth_sigma * torch.randn(
            batch, 1, 3, generator=rng, dtype=dtype, device=device
        )
        return WorldState.of(Rigid(rots, trans))

    def sample_path(self, x_1: WorldState, t: torch.Tensor, rng=None) -> PathSample:
        if x_1.fixed is not None and bool(x_1.fixed.any()):
            raise ConfigError("the insertion process does not support motif conditioning")
        b, n = x_1.mask.shape
        dtype, device = x_1.frames.trans.dtype, x_1.mask.device
        lengths = x_1.mask.sum(-1)
        seed = (
            (torch.rand(b, generator=rng, device=device, dtype=dtype) * lengths)
            .long()
            .clamp(max=n - 1)
        )
        tau = self.config.insertion_end * torch.rand(
            b, n, generator=rng, device=device, dtype=dtype
        )
        tau = tau.masked_fill(torch.arange(n, device=device)[None] == seed[:, None], 0.0)
        tau = tau.masked_fill(~x_1.mask, 2.0)  # padding is never inserted
        rots = so3.uniform((b, n), dtype=dtype, device=device, generator=rng)
        noise = self.config.birth_sigma * torch.randn(
            b, n, 3, generator=rng, dtype=dtype, device=device
        )
        birth = Rigid(rots, self._birth_positions(x_1, tau, noise))
        latent = self._at(x_1, tau, birth, t)
        y_0 = self._at(x_1, tau, birth, torch.zeros_like(t))
        y_1 = self._at(x_1, tau, birth, torch.ones_like(t))
        return PathSample(t, y_0, y_1, latent)

    def _birth_positions(
        self, x_1: WorldState, tau: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """Birth positions, computed in insertion order: each residue's visible neighbours are at
        their own path positions at its insertion time. (B, N, 3), Å."""
        b, n = tau.shape
        order = tau.argsort(-1)  # the seed first; padding last
        batch = torch.arange(b, device=tau.device)
        position = torch.zeros_like(noise)
        born = torch.zeros(b, n, dtype=torch.bool, device=tau.device)
        index = torch.arange(n, device=tau.device)[None].expand(b, n)
        data = x_1.frames.trans

        def now(j: torch.Tensor, when: torch.Tensor) -> torch.Tensor:
            """Positions (B, 3) of residues j (B,) at times `when` (B,) on their birth → data
            lines."""
            tj, pj = tau[batch, j], position[batch, j]
            s = ((when - tj) / (1 - tj).clamp_min(1e-6)).clamp(0, 1)[:, None]
            return pj + s * (data[batch, j] - pj)

        for r in range(n):
            i = order[:, r]
            when = tau[batch, i]
            live = when <= 1.0  # real residues
            left = torch.where(born & (index < i[:, None]), index, -1).max(-1).values
            right = torch.where(born & (index > i[:, None]), index, n).min(-1).values
            has_left, has_right = left >= 0, right < n
            p_left, p_right = now(left.clamp(min=0), when), now(right.clamp(max=n - 1), when)
            centre = torch.where(
                (has_left & has_right)[:, None],
                (p_left + p_right) / 2,
                torch.where(
                    has_left[:, None],
                    p_left,
                    torch.where(has_right[:, None], p_right, torch.zeros_like(p_left)),
                ),
            )
            new = centre + noise[batch, i]
            position[batch, i] = torch.where(live[:, None], new, position[batch, i])
            born[batch, i] = born[batch, i] | live
        return position

    def _at(
        self, x_1: WorldState, tau: torch.Tensor, birth: Rigid, t: torch.Tensor
    ) -> InsertionLatent:
        """The latent at times t (B,): the visible residues, frames on their birth → data paths."""
        visible = (tau <= t[:, None]) & x_1.mask
        s = ((t[:, None] - tau) / (1 - tau).clamp_min(1e-6)).clamp(0, 1)
        frames = paths.interpolate(birth, x_1.frames, s)
        return InsertionLatent(x_1, tau, birth, t, visible, frames)

    def phi(self, y: InsertionLatent) -> WorldState:
        """The visible residues in order, with their insertion times as ``birth`` (the seed's 0),
        which the sampler also tracks: a function of the latent, so the network may read it."""
        state = compact(y.frames, y.visible)
        order, mask = _order(y.visible)
        return replace(state, birth=_take(y.tau, order, mask))

    def clean_frames(self, path: PathSample, x_1: WorldState) -> Rigid:
        """The data frames of the residues visible at t, in world-state order."""
        return compact(path.y_t.x_1.frames, path.y_t.visible).frames

    def target(self, path: PathSample) -> FrameVelocity:
        """Flow of the visible residues (Process 1's form) and the hidden count of every gap."""
        y = path.y_t
        omega, v = paths.velocity(y.frames, y.x_1.frames, path.t[:, None, None])
        order, mask = _order(y.visible)
        counts = gap_counts(y.visible, y.x_1.mask).to(v.dtype)
        return FrameVelocity(_take(omega, order, mask), _take(v, order, mask), counts)

    def insert(
        self, x: WorldState, counts: torch.Tensor, t: float, dt: float, rngs: list[torch.Generator]
    ) -> WorldState:
        """One jump step: in each gap, Poisson(p·count) new residues, p = step_probability(t, dt) —
        the tau-leaping step of the insertion part (first-order in dt) — born from the world state
        (evenly between the gap's neighbours, or on its one neighbour at a chain end, plus σ_b·ε,
        with a Haar rotation) with birth time t + dt in the returned state's ``birth``. counts:
        (B, n + 1) predicted expected hidden residues per gap; rngs: one generator per chain, so a
        chain's growth does not depend on its batch."""
        rate = self.step_probability(t, dt)
        if rate == 0:
            return x
        born = (
            torch.zeros(x.mask.shape, dtype=x.frames.trans.dtype, device=x.mask.device)
            if x.birth is None
            else x.birth
        )
        chains = [
            self._grow(
                x.frames[k, : int(x.mask[k].sum())],
                born[k, : int(x.mask[k].sum())],
                counts[k],
                rate,
                t + dt,
                rng,
            )
            for k, rng in enumerate(rngs)
        ]
        length = max(len(c.trans) for c, _ in chains)
        dtype, device = x.frames.trans.dtype, x.mask.device
        mask = torch.zeros(len(chains), length, dtype=torch.bool, device=device)
        rots = torch.eye(3, dtype=dtype, device=device).repeat(len(chains), length, 1, 1)
        trans = torch.zeros(len(chains), length, 3, dtype=dtype, device=device)
        birth = torch.zeros(len(chains), length, dtype=dtype, device=device)
        for k, (c, b) in enumerate(chains):
            n = len(c.trans)
            rots[k, :n], trans[k, :n], mask[k, :n], birth[k, :n] = c.rots, c.trans, True, b
        state = WorldState.of(Rigid(rots, trans), mask)
        return WorldState(state.frames, state.mask, state.index, birth=birth)

    def _grow(
        self,
        frames: Rigid,
        birth: torch.Tensor,
        counts: torch.Tensor,
        rate: float,
        now: float,
        rng: torch.Generator,
    ) -> tuple[Rigid, torch.Tensor]:
        """One chain (n,) with its new residues interleaved in sequence order, and the birth times
        (n + new,): the old ones, ``now`` for the new residues."""
        n = len(frames.trans)
        dtype, device = frames.trans.dtype, frames.trans.device
        # the draws use the chain's CPU generator (reproducible on any device)
        draws = torch.poisson(
            (rate * counts[: n + 1].double().clamp_min(0)).cpu(), generator=rng
        ).long()
        total = int(draws.sum())
        if total == 0:
            return frames, birth
        noise = self.config.birth_sigma * torch.randn(
            total, 3, generator=rng, dtype=torch.float64
        ).to(device, dtype)
        new_rots = so3.uniform((total,), dtype=torch.float64, generator=rng).to(device, dtype)
        draws = draws.to(device)
        # gap of each new residue
        gap = torch.repeat_interleave(torch.arange(n + 1, device=device), draws)
        before = torch.cumsum(draws, 0) - draws  # new residues in earlier gaps
        j = torch.arange(total, device=device) - before[gap]  # rank of a new residue inside its gap
        left, right = frames.trans[(gap - 1).clamp(min=0)], frames.trans[gap.clamp(max=n - 1)]
        share = ((j + 1) / (draws[gap] + 1)).to(dtype)[:, None]
        centre = torch.where(
            (gap == 0)[:, None],
            right,
            torch.where((gap == n)[:, None], left, left + share * (right - left)),
        )
        slot_new = gap + before[gap] + j  # positions in the grown chain
        slot_old = torch.arange(n, device=device) + torch.cumsum(draws, 0)[:n]
        rots = torch.empty(n + total, 3, 3, dtype=dtype, device=device)
        trans = torch.empty(n + total, 3, dtype=dtype, device=device)
        rots[slot_old], trans[slot_old] = frames.rots, frames.trans
        rots[slot_new], trans[slot_new] = new_rots, centre + noise
        times = torch.full((n + total,), now, dtype=birth.dtype, device=device)
        times[slot_old] = birth
        return Rigid(rots, trans), times
