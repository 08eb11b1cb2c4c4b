"""Discovery endpoint (CDS Hooks 2.0 #discovery)."""
from __future__ import annotations

import re

from cds_service.services import SERVICES

ALLOWED_TOKENS = re.compile(r"\{\{(context\.[A-Za-z]+|userPractitionerId|userPractitionerRoleId|userPatientId|"
                            r"userRelatedPersonId)\}\}")


def test_discovery_lists_three_services_one_per_hook(client):
    resp = client.get("/cds-services")
    assert resp.status_code == 200
    services = resp.get_json()["services"]
    assert sorted(s["hook"] for s in services) == ["order-select", "order-sign", "patient-view"]
    ids = {s["id"] for s in services}
    assert ids == {"dialysis-electrolytes-patient-view", "dialysis-electrolytes-order-select",
                   "dialysis-electrolytes-order-sign"}


def test_each_service_has_title_description_and_prefetch(client):
    for entry in client.get("/cds-services").get_json()["services"]:
        assert entry["title"] and entry["description"]
        prefetch = entry["prefetch"]
        assert prefetch["patient"] == "Patient/{{context.patientId}}"
        for key in ("conditions", "procedures", "encounters", "labs"):
            assert key in prefetch, key
        assert "_sort=-date" in prefetch["labs"] and "http://loinc.org|2601-3" in prefetch["labs"]


def test_prefetch_tokens_are_only_allowed_ones():
    for service in SERVICES.values():
        for template in (k.template for k in service.prefetch.values()):
            for token in re.findall(r"\{\{[^}]*\}\}", template):
                assert ALLOWED_TOKENS.fullmatch(token), token


def test_lab_template_never_asks_for_urine_or_rbc_magnesium():
    labs = SERVICES["dialysis-electrolytes-patient-view"].prefetch["labs"].template
    assert "|2598-1" not in labs  # urine Mg
    assert "|2597-3" not in labs  # RBC Mg


def test_discovery_has_no_null_or_empty_values(client):
    def walk(node, path="$"):
        if isinstance(node, dict):
            for k, v in node.items():
                assert v not in (None, "", [], {}), f"{path}.{k}"
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")
    walk(client.get("/cds-services").get_json())


def test_prefetch_queries_use_the_recommended_subset():
    """Spec #prefetch-query-restrictions: instance reads and type searches with simple parameters."""
    allowed = {"patient", "code", "type", "_sort", "_count", "date", "clinical-status", "status"}  # token equality
    for service in SERVICES.values():
        for key in service.prefetch.values():
            path, _, query = key.template.partition("?")
            assert path.count("/") <= 1
            for pair in filter(None, query.split("&")):
                assert pair.split("=", 1)[0] in allowed, pair
