"""Per-request deadline and stage timings (for logs and the Server-Timing header)."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager


class Deadline:
    """An overall time budget. ``remaining()`` never goes below zero."""

    def __init__(self, budget_ms: float, clock=time.monotonic):
        self._clock = clock
        self.start = clock()
        self.budget = max(0.0, budget_ms) / 1000.0

    def elapsed(self) -> float:
        return self._clock() - self.start

    def remaining(self) -> float:
        return max(0.0, self.budget - self.elapsed())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def reserve(self, seconds: float) -> "Deadline":
        """A deadline with the same start that ends ``seconds`` earlier (time kept back for later stages)."""
        inner = Deadline(0, clock=self._clock)
        inner.start = self.start
        inner.budget = max(0.0, self.budget - max(0.0, seconds))
        return inner


class Timings:
    """Named stage durations in milliseconds, safe to add from several threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.stages: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, (time.perf_counter() - t0) * 1000.0)

    def add(self, name: str, ms: float) -> None:
        with self._lock:
            self.stages[name] = self.stages.get(name, 0.0) + ms

    def header(self) -> str:
        """Server-Timing header value: ``prefetch;dur=0.4, fetch;dur=12.0, ...``."""
        return ", ".join(f"{name};dur={ms:.1f}" for name, ms in self.stages.items())

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in self.stages.items()}
