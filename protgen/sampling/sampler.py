"""The sampler: simulating a trained model's generator from its prior, a batch of samples at a
time, each with its own seeded prior draw; the template states it starts from."""

from dataclasses import replace
from typing import Callable

import torch

from protgen.errors import ConfigError
from protgen.geometry.backbone import frames_to_backbone
from protgen.geometry.rigid import Rigid
from protgen.geometry.world import WorldState
from protgen.method.simulation import simulate
from protgen.sampling.config import SampleConfig
from protgen.sampling.guidance import ClashGuidance
from protgen.sampling.self_conditioning import SelfConditioned
from protgen.sampling.ss_condition import ClassifierFreeGuidance
from protgen.training.checkpoint import TrainedModel

__all__ = ["sample_states", "sample_backbones", "unconditioned_state"]


def unconditioned_state(length: int, count: int = 1) -> WorldState:
    """A template world state of ``count`` chains of ``length`` residues, nothing fixed."""
    return WorldState.of(
        Rigid(torch.eye(3).expand(count, length, 3, 3), torch.zeros(count, length, 3))
    )


@torch.no_grad()
def sample_states(
    trained: TrainedModel,
    template: WorldState,
    seeds: list[int],
    config: SampleConfig,
    device="cpu",
    on_step: Callable[[], None] | None = None,
) -> tuple[torch.Tensor, list[int], list[torch.Tensor]]:
    """Backbones (len(seeds), N, 4, 3) in Å, their lengths (padding follows), and, if
    config.trajectory, the atoms at every step; from the template's residues (mask, numbering,
    fixed motif frames) — or, for an insertion model, from its one-residue prior, the length
    emerging.

    Each sample's prior draw (and its insertions) is seeded by its own seed alone; the simulation
    then runs them as one batch (batched matrix products may differ from single ones in the last
    float bits).
    """
    priors = [
        trained.process.world_prior(template[k : k + 1], torch.Generator().manual_seed(s))
        for k, s in enumerate(seeds)
    ]
    fixed = None if priors[0].fixed is None else torch.cat([p.fixed for p in priors])
    ss = None if priors[0].ss is None else torch.cat([p.ss for p in priors])
    x_0 = WorldState(
        Rigid.cat([p.frames for p in priors]),
        torch.cat([p.mask for p in priors]),
        torch.cat([p.index for p in priors]),
        fixed,
        ss=ss,
    ).to(device)
    self_conditioned = SelfConditioned(trained.model, config.self_condition)
    predict = self_conditioned
    if ss is not None and config.guidance_weight == 0:  # the unconditional generator alone
        x_0 = replace(x_0, ss=None)
    elif ss is not None and config.guidance_weight != 1:  # w = 1: the conditional generator alone
        unconditional = SelfConditioned(trained.model, config.self_condition)
        predict = ClassifierFreeGuidance(self_conditioned, unconditional, config.guidance_weight)
    jump = None
    if trained.process.emerging_length:  # a JumpProcess
        rngs = [torch.Generator().manual_seed(s + 1) for s in seeds]

        def jump(x: WorldState, counts: torch.Tensor, t: float, dt: float) -> WorldState:
            grown = trained.process.insert(x, counts, t, dt, rngs)
            # newborns carry the step's end time t + dt, older residues ≤ t; a process that
            # records no insertion times restarts self-conditioning instead
            if grown is not x and grown.birth is not None:
                self_conditioned.carry(grown, grown.birth > t + dt / 2)
            return grown

    if config.clash_guidance > 0:
        predict = ClashGuidance(predict, config.clash_guidance)
    noise_rngs = None
    if config.simulation.langevin > 0:
        if not trained.process.gaussian_positions:
            raise ConfigError(
                "stochastic translations (--langevin) need a model whose positions follow a "
                f"Gaussian path (Process 1, frames), not {trained.config.process.name!r}: "
                "the score is read off x̂_1 as for a Gaussian path"
            )
        noise_rngs = [torch.Generator().manual_seed(s + 2) for s in seeds]
    x_1, path = simulate(
        predict,
        x_0,
        trained.process.start_time,
        config.simulation,
        config.trajectory,
        on_step,
        jump,
        trained.process.config.sigma,
        noise_rngs,
    )
    atoms = frames_to_backbone(x_1.frames, x_1.mask, index=x_1.index).cpu()
    return (
        atoms,
        x_1.mask.sum(-1).tolist(),
        [frames_to_backbone(x.frames, x.mask, index=x.index).cpu() for x in path],
    )


def sample_backbones(
    trained: TrainedModel,
    length: int,
    seeds: list[int],
    config: SampleConfig,
    device="cpu",
    on_step: Callable[[], None] | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Unconditional backbones of one length: (len(seeds), L, 4, 3), Å (see sample_states)."""
    atoms, _, path = sample_states(
        trained, unconditioned_state(length, len(seeds)), seeds, config, device, on_step
    )
    return atoms, path
