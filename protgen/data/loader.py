"""Batches for training: cluster-then-member sampling, random crops, length bucketing, padding.

Sampling a cluster uniformly and then one of its members keeps large redundant families from
dominating. Each DDP rank draws from its own shard of the clusters. Batches are deterministic
given (seed, rank, world size, step).
"""

from dataclasses import dataclass, replace

import numpy as np
import torch

from protgen.data.dataset import TrainingSet
from protgen.geometry.backbone import backbone_to_frames
from protgen.geometry.rigid import Rigid
from protgen.geometry.secondary import dssp_to_codes
from protgen.geometry.world import WorldState

__all__ = ["Batch", "Step", "BatchLoader"]


@dataclass(frozen=True)
class Batch:
    """Padded, centred backbones.

    atoms: Å, (B, L, 4, 3), CA centroid at the origin; x_1: their world state (frames of those
    atoms, mask True for real residues, residues numbered 0..L_i − 1); ids: segment IDs (crops
    keep their segment's ID).
    """

    atoms: torch.Tensor
    x_1: WorldState
    ids: tuple[str, ...]

    @property
    def mask(self) -> torch.Tensor:
        return self.x_1.mask

    def to(self, device) -> "Batch":
        return Batch(self.atoms.to(device), self.x_1.to(device), self.ids)


@dataclass(frozen=True)
class Step:
    """The chains of one optimiser step, as micro-batches that each fit the pair budget.

    Every step of a run holds the same number of chains, so the gradient of the step's loss —
    the micro-batches' mean losses weighted by their share of the chains — gives every chain the
    same weight whatever its length (protgen/THEORY.md §6).
    """

    batches: tuple[Batch, ...]

    @property
    def chains(self) -> int:
        return sum(b.mask.shape[0] for b in self.batches)

    def weights(self) -> list[float]:
        """Each micro-batch's share of the step's chains (they sum to 1)."""
        return [b.mask.shape[0] / self.chains for b in self.batches]

    def to(self, device) -> "Step":
        return Step(tuple(b.to(device) for b in self.batches))


def collate(backbones: list[np.ndarray], ids: list[str], ss: list[str] | None = None) -> Batch:
    """Centre each backbone at its CA centroid and pad to the longest. backbones: list of
    (L_i, 4, 3); ss: each one's three-state DSSP string, which becomes the world state's
    secondary-structure condition (networks without ``ss_condition`` ignore it; padding is
    'unknown')."""
    length = max(len(b) for b in backbones)
    atoms = torch.zeros(len(backbones), length, 4, 3)
    mask = torch.zeros(len(backbones), length, dtype=torch.bool)
    for k, b in enumerate(backbones):
        x = torch.tensor(np.array(b, dtype=np.float32))
        atoms[k, : len(x)] = x - x[:, 1].mean(0)
        mask[k, : len(x)] = True
    frames = backbone_to_frames(atoms)
    frames = Rigid(
        torch.where(mask[..., None, None], frames.rots, torch.eye(3)),
        frames.trans * mask[..., None],
    )
    state = WorldState.of(frames, mask)
    if ss is not None:
        codes = torch.zeros(len(backbones), length, dtype=torch.long)
        for k, string in enumerate(ss):
            codes[k, : len(string)] = dssp_to_codes(string)
        state = replace(state, ss=codes)
    return Batch(atoms, state, tuple(ids))


class BatchLoader:
    """An endless, seeded stream of batches from one split of a training set.

    batch_size: segments per batch (the most, with max_pairs); crop_length: residues (longer
    segments are cropped at a random start); bucket: batches drawn at once and sorted by length so
    each batch pads little; max_pairs: if > 0, a batch of padded length L holds at most
    max_pairs // L² segments (FrameFlow's length batching: the pair track costs B·L², so short
    chains come in large batches and long ones in small).

    With ``whole_steps`` the stream yields :class:`Step` items instead of batches: each holds
    exactly batch_size segments drawn independently (no sorting across steps, so a step's length
    mix is random), sorted by length and cut into micro-batches of at most max_pairs padded pairs.
    Training accumulates a step's micro-batches before it clips and steps, so every chain weighs
    the same whatever the lengths. Without it (runs saved before protgen 0.3), each batch is one
    optimiser step and holds from 1 to batch_size segments.
    """

    def __init__(
        self,
        dataset: TrainingSet,
        split: str = "train",
        batch_size: int = 8,
        crop_length: int = 128,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        bucket: int = 8,
        max_pairs: int = 0,
        whole_steps: bool = False,
    ):
        self.dataset, self.batch_size, self.crop_length, self.bucket = (
            dataset,
            batch_size,
            crop_length,
            bucket,
        )
        self.max_pairs, self.whole_steps = max_pairs, whole_steps
        clusters: dict[int, list[int]] = {}
        for i in dataset.indices(split):
            clusters.setdefault(dataset.records[i].cluster, []).append(i)
        keys = sorted(clusters)
        shard = keys[rank::world_size] if len(keys) >= world_size else keys
        if not shard:
            raise ValueError(f"the {split!r} split of {dataset.path} is empty")
        self.members = [clusters[k] for k in shard]
        self.rng = np.random.default_rng([seed, rank, world_size])
        self._queue: list[Batch | Step] = []
        self._fill_state = self.rng.bit_generator.state
        self._popped = 0

    def state(self) -> dict:
        """Where the stream stands, for checkpoints: the RNG state before the pending bucket was
        drawn and how many of its batches were used."""
        return {"rng": self._fill_state, "popped": self._popped}

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self._queue = []
        self._fill()
        for _ in range(state["popped"]):
            next(self)

    def _draw(self) -> tuple[np.ndarray, str, str]:
        """One segment (cropped): atoms (L, 4, 3), its ID and its DSSP string."""
        cluster = self.members[self.rng.integers(len(self.members))]
        index = cluster[self.rng.integers(len(cluster))]
        atoms = self.dataset.segment_atoms(index)
        record = self.dataset.records[index]
        ss = record.ss
        if len(atoms) > self.crop_length:
            start = self.rng.integers(len(atoms) - self.crop_length + 1)
            atoms = atoms[start : start + self.crop_length]
            ss = ss[start : start + self.crop_length]
        return atoms, record.id, ss

    def __iter__(self):
        return self

    def _fill(self) -> None:
        self._fill_state = self.rng.bit_generator.state
        self._popped = 0
        items = [self._draw() for _ in range(self.batch_size * self.bucket)]
        if self.whole_steps:
            steps = [
                sorted(items[k : k + self.batch_size], key=lambda item: len(item[0]))
                for k in range(0, len(items), self.batch_size)
            ]
            self._queue = [
                Step(tuple(self._collate(g) for g in self._micro_batches(step)))
                for step in reversed(steps)
            ]
            return
        items.sort(key=lambda item: len(item[0]))
        groups = [items[k : k + self.batch_size] for k in range(0, len(items), self.batch_size)]
        if self.max_pairs > 0:
            groups = _pair_budget_groups(items, self.batch_size, self.max_pairs)
        order = self.rng.permutation(len(groups))
        self._queue = [self._collate(groups[k]) for k in order]

    def _micro_batches(self, items: list) -> list[list]:
        return (
            _pair_budget_groups(items, self.batch_size, self.max_pairs)
            if self.max_pairs > 0
            else [items]
        )

    @staticmethod
    def _collate(items: list) -> Batch:
        return collate([a for a, _, _ in items], [i for _, i, _ in items], [s for _, _, s in items])

    def __next__(self) -> "Batch | Step":
        if not self._queue:
            self._fill()
        self._popped += 1
        return self._queue.pop()


def _pair_budget_groups(items: list, batch_size: int, max_pairs: int) -> list[list]:
    """Consecutive groups of length-sorted items, each with count · (longest length)² ≤ max_pairs
    (at least one item) and at most batch_size items."""
    groups, current = [], []
    for item in items:
        longest = max(len(item[0]), *(len(c[0]) for c in current)) if current else len(item[0])
        if current and (len(current) >= batch_size or (len(current) + 1) * longest**2 > max_pairs):
            groups.append(current)
            current = []
        current.append(item)
    return groups + [current] if current else groups
