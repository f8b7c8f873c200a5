"""The caches of an evaluation, keyed by content hashes of the structures and the settings that
affect a result (:func:`content_key`), and the map that computes only what a cache lacks.

An evaluation's own cache (:class:`EvalCache`, ``cache.jsonl`` in the output directory) makes a
re-run after adding samples compute only what is new. The results of a reference set's own chains
(their quality panels and pairwise TM-scores, :class:`ReferenceCache`) are kept where every later
evaluation against the same set finds them, whatever its ``--out``.

The file is ``reference-FINGERPRINT.json`` in the user's cache folder (``$PROTGEN_CACHE``, else
``$XDG_CACHE_HOME/protgen``, else ``~/.cache/protgen``): named by the set's content fingerprint, so
a rebuilt set gets its own, and never written into the training set (which may be shared or
read-only). Keys are content hashes of the chains and the settings, as in an evaluation's own
``cache.jsonl``. The file is rewritten atomically; an unreadable one is treated as empty, an
unwritable folder costs only the speed-up.
"""

import hashlib
import json
import os
import sys
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from protgen.files import atomic_path
from protgen.progress import Progress
from protgen.workers import threaded_worker, worker_threads

__all__ = ["ReferenceCache", "reference_cache_path", "EvalCache", "content_key", "cached_map"]


def reference_cache_path(fingerprint: str) -> Path:
    """Where the cache of the training set with this fingerprint lives."""
    if os.environ.get("PROTGEN_CACHE"):
        folder = Path(os.environ["PROTGEN_CACHE"])
    else:
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "protgen"
    return folder / f"reference-{fingerprint}.json"


class ReferenceCache:
    """get/put of JSON values by key, written to disk by ``flush`` (and every ``every`` puts)."""

    def __init__(self, fingerprint: str, every: int = 1000):
        self.path = reference_cache_path(fingerprint)
        self.fingerprint, self.every = fingerprint, every
        self.data, self.new = self._read(), 0

    def _read(self) -> dict:
        try:
            stored = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(stored, dict) or stored.get("fingerprint") != self.fingerprint:
            return {}
        return dict(stored.get("entries", {}))

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value) -> None:
        self.data[key] = value
        self.new += 1
        if self.new >= self.every:
            self.flush()

    def flush(self) -> None:
        """Merge what is new with what another evaluation may have added, and write it. A cache
        that cannot be written is only a lost speed-up: it warns and goes on."""
        if not self.new:
            return
        entries = {**self._read(), **self.data}
        payload = {"fingerprint": self.fingerprint, "entries": entries}
        try:
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(payload))
        except OSError as error:
            print(
                f"protgen eval: warning: cannot keep the reference cache {self.path} "
                f"({error.strerror or error}); the next evaluation recomputes it",
                file=sys.stderr,
                flush=True,
            )
        self.data, self.new = entries, 0


class EvalCache:
    """An evaluation's ``cache.jsonl``: get/put of JSON values by key, each put appended to the
    file at once (a line cut by an interruption is skipped when the file is read)."""

    def __init__(self, path: Path):
        self.path, self.data = path, {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    self.data[entry["key"]] = entry["value"]
                except (json.JSONDecodeError, KeyError):
                    continue  # a line cut by an interruption

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value):
        self.data[key] = value
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"key": key, "value": value}) + "\n")


def content_key(atoms: np.ndarray, *parts) -> str:
    """The cache key of a result: a hash of the atoms (as float32) and the settings ``parts``."""
    return hashlib.sha1(
        np.ascontiguousarray(atoms, dtype=np.float32).tobytes() + "|".join(map(str, parts)).encode()
    ).hexdigest()


def _pool_map(fn, jobs, workers: int, label: str, unit: str):
    """fn over jobs, in order, in a process pool when workers > 1; yields each result as it
    comes."""
    progress = Progress(len(jobs), label, unit=unit)
    if workers > 1 and len(jobs) > 1:
        with get_context("spawn").Pool(
            workers, initializer=threaded_worker, initargs=(worker_threads(workers),)
        ) as pool:
            for result in pool.imap(fn, jobs):
                progress.update()
                yield result
    else:
        for job in jobs:
            result = fn(job)
            progress.update()
            yield result
    progress.close()


def cached_map(
    cache: EvalCache,
    keys: list[str],
    fn,
    jobs: list,
    workers: int,
    label: str,
    unit: str = "structures",
) -> list:
    """fn over jobs, in order: the cached value of each job's key, computing (in a pool when
    workers > 1) and caching only those the cache lacks."""
    todo = [k for k, key in enumerate(keys) if cache.get(key) is None]
    if todo:  # each result is cached as it arrives, so an interrupted run keeps what it computed
        for k, value in zip(todo, _pool_map(fn, [jobs[k] for k in todo], workers, label, unit)):
            cache.put(keys[k], value)
    return [cache.get(key) for key in keys]
