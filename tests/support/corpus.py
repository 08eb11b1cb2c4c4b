"""Real request bodies for equivalence tests: every scenario file, every patient fixture under each service, and
the 50-observation bench history (the body the throughput benchmark posts)."""
from __future__ import annotations

import sys

from cds_service import fixtures
from cds_service.authoring import scenarios as sc
from cds_service.services import SERVICES

from .helpers import NOW, REPO, fixture_bundle, hook_request, prefetch_from_fixture


def real_requests() -> list[tuple[str, dict]]:
    """(name, request body) pairs."""
    out: list[tuple[str, dict]] = []
    for path in sc.scenario_files([sc.scenario_dir(REPO / "cards")]):
        s = sc.load(path)
        service = next(svc for svc in SERVICES.values() if svc.hook == s.hook)
        out.append((f"scenario-{path.stem}", sc.request_for(s, sc.materialise(s, NOW), service, prefetch=True)))
    patients = sorted({p.name.split(".")[0] for p in (fixtures.FIXTURES_DIR / "patients").iterdir()})
    for name in patients:
        bundle = fixture_bundle(name)
        for service_id in SERVICES:
            body = hook_request(service_id, name)
            body["prefetch"] = prefetch_from_fixture(service_id, name, bundle)
            out.append((f"fixture-{name}-{SERVICES[service_id].hook}", body))
    sys.path.insert(0, str(REPO / "bench"))
    from history import hook_request as bench_request, patient_history  # noqa: E402

    service = next(s for s in SERVICES.values() if s.hook == "patient-view")
    out.append(("bench-50", bench_request(service.id, service.hook, patient_history(50, NOW))))
    return out
