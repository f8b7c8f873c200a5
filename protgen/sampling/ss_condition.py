"""Secondary-structure conditioning at sampling time: the condition a user asks for, and
classifier-free guidance between the conditional and the unconditional generator.

A condition is a string of H (helix), E (strand), L (loop) and ``?`` or ``-`` (unconstrained),
one character per residue, given directly or read from a structure file's own DSSP. The guided
generator with weight w is F_w = F_u + w·(F_c − F_u) on both velocities (all at the same x_t):
w = 0 is the unconditional generator (the model with every residue "unknown"), w = 1 the
conditional one, w > 1 pushes further from the unconditional law. It is not an LPGM generator
for w ∉ {0, 1} (protgen/THEORY.md §11b).
"""

from dataclasses import dataclass, replace

import torch

from protgen.data.structure import read_structure
from protgen.errors import ConfigError, StructureError
from protgen.geometry.secondary import codes_to_ss, dssp, dssp_to_codes, parse_ss
from protgen.geometry.world import WorldState
from protgen.method.generator import FrameVelocity
from protgen.sampling.self_conditioning import SelfConditioned

__all__ = ["ClassifierFreeGuidance", "ss_codes", "ss_from_file"]


def ss_codes(text: str, flag: str = "--ss") -> torch.Tensor:
    """A user's condition string → codes (L,), or a one-line ConfigError naming the position."""
    try:
        return parse_ss(text)
    except ValueError as error:
        raise ConfigError(f"{flag} {text[:40]!r}{'…' if len(text) > 40 else ''}: {error}") from None


def ss_from_file(spec: str) -> str:
    """The condition string (H, E, L) of a real chain: ``FILE`` (its first protein chain) or
    ``FILE:CHAIN``, by DSSP of the chain's backbone (residues missing a backbone atom are
    unconstrained, ``?``)."""
    path, _, chain_id = spec.rpartition(":")
    if not path or not chain_id or len(chain_id) > 4 or "/" in chain_id or "." in chain_id:
        path, chain_id = spec, ""  # no chain named (a colon inside the file name is kept)
    try:
        structure = read_structure(path)
    except StructureError as error:
        raise ConfigError(f"--ss-from {error}") from None
    chains = {c.chain_id: c for c in structure.chains}
    if not chains:
        raise ConfigError(f"--ss-from {path}: no protein chain in the file")
    if chain_id and chain_id not in chains:
        raise ConfigError(
            f"--ss-from {path}: no protein chain {chain_id} (chains: {', '.join(chains)})"
        )
    chain = chains[chain_id] if chain_id else structure.chains[0]
    complete = chain.atom_mask.all(-1)
    if complete.sum() < 3:
        raise ConfigError(f"--ss-from {spec}: fewer than 3 residues with all backbone atoms")
    states = iter(codes_to_ss(dssp_to_codes(dssp(chain.atoms[complete]))))
    return "".join(next(states) if ok else "?" for ok in complete)


@dataclass
class ClassifierFreeGuidance:
    """``predict(t, x_t)`` for the sampler: the guided generator F_u + w·(F_c − F_u), each branch
    self-conditioned on its own previous x̂_1. x_t carries the condition (WorldState.ss); the
    unconditional branch sees the same state without it. x1_hat (CA positions, Å, (B, N, 3),
    for clash guidance) is guided the same way."""

    conditional: SelfConditioned
    unconditional: SelfConditioned
    weight: float

    def __call__(self, t: torch.Tensor, x_t: WorldState) -> FrameVelocity:
        c = self.conditional(t, x_t)
        u = self.unconditional(t, replace(x_t, ss=None))
        w = self.weight
        return FrameVelocity(u.omega + w * (c.omega - u.omega), u.v + w * (c.v - u.v))

    @property
    def x1_hat(self) -> torch.Tensor:
        c, u = self.conditional.x1_hat, self.unconditional.x1_hat
        return u + self.weight * (c - u)
