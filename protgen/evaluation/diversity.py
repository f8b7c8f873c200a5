"""Diversity and novelty by TM-score: the samples' pairwise TM-score matrix and each sample's
highest TM-score to the reference set's training chains, cached pair by pair and structure by
structure."""

import hashlib

import numpy as np

from protgen.data.dataset import TrainingSet
from protgen.evaluation.cache import EvalCache, cached_map, content_key
from protgen.evaluation.config import EvalConfig
from protgen.evaluation.similarity import tm_align

__all__ = ["tm_matrix", "novelty"]


def _novelty_job(args) -> float:
    ca, candidates = args
    return max((tm_align(ca, ref)[0] for ref in candidates), default=float("nan"))


def _pair_job(pair: tuple[np.ndarray, np.ndarray]) -> float:
    return float(np.mean(tm_align(*pair)))


def tm_matrix(cas: list[np.ndarray], workers: int, cache: EvalCache) -> np.ndarray:
    """Symmetric matrix of mean TM-scores; each pair is cached, so adding a structure computes
    only its own row."""
    keys = [content_key(ca, "ca") for ca in cas]
    pairs = [(i, j) for i in range(len(cas)) for j in range(i + 1, len(cas))]
    pair_keys = [
        hashlib.sha1(f"tm|{min(keys[i], keys[j])}|{max(keys[i], keys[j])}".encode()).hexdigest()
        for i, j in pairs
    ]
    values = cached_map(
        cache,
        pair_keys,
        _pair_job,
        [(cas[i], cas[j]) for i, j in pairs],
        workers,
        "pairwise TM-score",
        "pairs",
    )
    tm = np.eye(len(cas))
    for (i, j), value in zip(pairs, values):
        tm[i, j] = tm[j, i] = value
    return tm


def novelty(rows, atoms, ref_set: TrainingSet, config: EvalConfig, cache: EvalCache) -> None:
    """Max TM-score of each structure to reference chains of 0.5–2× its length from the set's
    training split (what a model trained on it has seen; the whole set when it has none). The
    candidates are drawn with a generator seeded by the structure itself, so they do not depend on
    which other structures are evaluated or in which order."""
    pool = ref_set.indices("train") or ref_set.indices()
    seg_lengths = np.array([ref_set.records[i].length for i in pool])
    jobs, keys = [], []
    for a in atoms:
        length = len(a)
        ok = np.nonzero((seg_lengths >= 0.5 * length) & (seg_lengths <= 2 * length))[0]
        if len(ok) > config.novelty_candidates:
            rng = np.random.default_rng([config.seed, int(content_key(a, "novelty-draw")[:8], 16)])
            ok = rng.choice(ok, config.novelty_candidates, replace=False)
        jobs.append(
            (
                a[:, 1],
                [ref_set.segment_atoms(pool[int(i)])[:, 1].astype(np.float64) for i in sorted(ok)],
            )
        )
        keys.append(
            content_key(
                a, "novelty", ref_set.meta.fingerprint, config.novelty_candidates, config.seed, 2
            )
        )
    values = cached_map(cache, keys, _novelty_job, jobs, config.workers, "novelty")
    for result, value in zip(rows, values):
        result.novelty_max_tm = value
