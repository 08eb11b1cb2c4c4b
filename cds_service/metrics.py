"""Prometheus metrics.

Two modes, chosen by the PROMETHEUS_MULTIPROC_DIR environment variable:

- **single process** (unset; tests, `flask run`): one registry per app, so that tests and several
  apps in one process do not collide;
- **multiprocess** (set; `cds-service serve` sets it up for gunicorn's workers): every worker writes
  its samples to memory-mapped files in that folder, and `/metrics` — whichever worker answers —
  aggregates the files of all workers, past and present. Without this each scrape would only see
  the counts of the one worker that happened to answer it.

`setup_multiprocess()` runs in gunicorn's master before the workers fork (the `on_starting` hook
in gunicorn_conf): it creates a private temporary folder when none is given (removed when the
master exits), or clears stale sample files from a given one.
"""
from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from pathlib import Path

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"
_SAMPLE_FILE_PREFIXES = ("counter_", "gauge_", "histogram_", "summary_")


def multiprocess_dir() -> str | None:
    return os.environ.get(ENV) or os.environ.get(ENV.lower()) or None


class Metrics:
    def __init__(self):
        mp_dir = multiprocess_dir()
        self.multiprocess = bool(mp_dir)
        if self.multiprocess:
            from prometheus_client import multiprocess, values

            # prometheus_client picks its value class when first imported; make sure it is the
            # file-backed one even if it was imported before the variable was set.
            if values.ValueClass is values.MutexValue:
                values.ValueClass = values.get_value_class()
            Path(mp_dir).mkdir(parents=True, exist_ok=True)
            # The exposition registry reads every worker's files; the metrics themselves are not
            # registered anywhere (their samples live in the files).
            self.registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.registry, path=mp_dir)
            target = None
        else:
            self.registry = CollectorRegistry(auto_describe=True)
            target = self.registry
        self._children: dict[tuple, object] = {}
        self.hook_calls = Counter("cds_hook_calls", "Hook calls by service and HTTP status",
                                  ["service", "status"], registry=target)
        self.rules_fired = Counter("cds_rule_fired", "Cards issued by service and rule",
                                   ["service", "rule"], registry=target)
        self.latency = Histogram("cds_hook_latency_seconds", "Hook call latency", ["service"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
                                 registry=target)
        self.fhir_calls = Counter("cds_fhir_calls", "Outbound FHIR calls by outcome", ["outcome"],
                                  registry=target)
        self.feedback = Counter("cds_feedback", "Feedback items by service and outcome", ["service", "outcome"],
                                registry=target)
        self.silent_fired = Counter("cds_rule_silent_fired", "Findings of silent rules (recorded, no card returned) "
                                    "by service and rule", ["service", "rule"], registry=target)
        self.records_dropped = Counter("cds_issued_records_dropped", "Issued-card and silent-firing records dropped "
                                       "because the background writer's queue was full", ["table"],
                                       registry=target)
        self.rule_errors = Counter("cds_rule_errors", "Rule failures (that rule's cards were left out of the answer)",
                                   ["rule"], registry=target)
        self.rule_last_error = Gauge("cds_rule_last_error_timestamp_seconds", "When a rule last failed (Unix time)",
                                     ["rule"], registry=target, multiprocess_mode="max")

    def child(self, metric, *values: str):
        """``metric.labels(*values)``, kept: labels() takes a lock and checks its values on every call."""
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def rule_failed(self, rule_id: str) -> None:
        self.rule_errors.labels(rule_id).inc()
        self.rule_last_error.labels(rule_id).set(time.time())

    def recent_rule_errors(self, window_s: float) -> dict[str, float]:
        """Rules that failed in the last ``window_s`` seconds, in any worker: rule id -> when (Unix time)."""
        since = time.time() - window_s
        out: dict[str, float] = {}
        for family in self.registry.collect():
            if family.name == "cds_rule_last_error_timestamp_seconds":
                for sample in family.samples:
                    if sample.value >= since:
                        rule = sample.labels["rule"]
                        out[rule] = max(out.get(rule, 0.0), sample.value)
        return out


def setup_multiprocess(environ=os.environ) -> str:
    """Prepare the folder the workers share (call in the master, before they fork). Returns its path."""
    given = environ.get(ENV) or environ.get(ENV.lower())
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        stale = [p for p in folder.glob("*.db") if p.name.startswith(_SAMPLE_FILE_PREFIXES)]
        for path in stale:  # samples of a previous run would otherwise be added to this one's
            path.unlink(missing_ok=True)
        environ[ENV] = str(folder)
        log.info("prometheus multiprocess folder %s (%d stale sample files removed)", folder, len(stale))
        return str(folder)
    temporary = tempfile.mkdtemp(prefix="cds-prometheus-")
    environ[ENV] = temporary
    master = os.getpid()

    def _cleanup() -> None:
        if os.getpid() == master:  # workers inherit atexit handlers; only the master removes the folder
            shutil.rmtree(temporary, ignore_errors=True)

    atexit.register(_cleanup)
    log.info("prometheus multiprocess folder %s (temporary)", temporary)
    return temporary


def worker_exited(pid: int) -> None:
    """gunicorn child_exit hook: drop a dead worker's live gauges (its counters keep counting in the total)."""
    from prometheus_client import multiprocess

    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)
