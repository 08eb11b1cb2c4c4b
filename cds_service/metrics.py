"""Prometheus metrics (one registry per app, so tests and several apps in one process do not collide)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self.hook_calls = Counter("cds_hook_calls", "Hook calls by service and HTTP status",
                                  ["service", "status"], registry=self.registry)
        self.rules_fired = Counter("cds_rule_fired", "Cards issued by service and rule",
                                   ["service", "rule"], registry=self.registry)
        self.latency = Histogram("cds_hook_latency_seconds", "Hook call latency", ["service"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
                                 registry=self.registry)
        self.fhir_calls = Counter("cds_fhir_calls", "Outbound FHIR calls by outcome", ["outcome"],
                                  registry=self.registry)
        self.feedback = Counter("cds_feedback", "Feedback items by service and outcome", ["service", "outcome"],
                                registry=self.registry)
