"""A dependency-free progress bar for long loops (data builds, training, sampling, evaluation)."""

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Prints ``label  done/total  rate  ETA  extra`` to stderr, at most every ``interval`` seconds.

    Silent when ``enabled`` is False (e.g. on DDP ranks other than 0). On a terminal the line is
    redrawn in place; otherwise (logs, CI) one line is printed per update, and the final line once.
    ``start``: the count already done (a resumed run counts from its absolute step).
    """

    def __init__(
        self,
        total: int | None,
        label: str,
        enabled: bool = True,
        interval: float = 1.0,
        unit: str = "it",
        start: int = 0,
    ):
        self.total, self.label, self.enabled, self.interval, self.unit = (
            total,
            label,
            enabled,
            interval,
            unit,
        )
        self.done = self.initial = start
        self.began = self._last = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.extra = ""
        self._printed = None

    def update(self, n: int = 1, extra: str | None = None) -> None:
        self.done += n
        if extra is not None:
            self.extra = extra
        now = time.monotonic()
        if self.enabled and (now - self._last >= self.interval or self.done == self.total):
            self._last = now
            self._print(now)

    def _print(self, now: float) -> None:
        elapsed = max(now - self.began, 1e-9)
        rate = (self.done - self.initial) / elapsed
        of = f"/{self.total}" if self.total else ""
        eta = ""
        if self.total and rate > 0:
            eta = f"  ETA {_clock((self.total - self.done) / rate)}"
        line = (
            f"{self.label}  {self.done}{of}  {rate:.2f} {self.unit}/s  {_clock(elapsed)}{eta}  "
            f"{self.extra}"
        ).rstrip()
        sys.stderr.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        sys.stderr.flush()
        self._printed = (self.done, self.extra)

    def close(self) -> None:
        if not self.enabled:
            return
        if self.tty or self._printed != (self.done, self.extra):
            self._print(time.monotonic())
        if self.tty:
            sys.stderr.write("\n")


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
