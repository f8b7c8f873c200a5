"""Results of a reference set's own chains (their quality panels and pairwise TM-scores), kept
where every later evaluation against the same set finds them, whatever its ``--out``.

The file is ``reference-FINGERPRINT.json`` in the user's cache folder (``$PROTGEN_CACHE``, else
``$XDG_CACHE_HOME/protgen``, else ``~/.cache/protgen``): named by the set's content fingerprint, so
a rebuilt set gets its own, and never written into the training set (which may be shared or
read-only). Keys are content hashes of the chains and the settings, as in an evaluation's own
``cache.jsonl``. The file is rewritten atomically; an unreadable one is treated as empty, an
unwritable folder costs only the speed-up.
"""

import json
import os
import sys
from pathlib import Path

from protgen.files import atomic_path

__all__ = ["ReferenceCache", "reference_cache_path"]


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
