"""The HealthChain comparison for benchmark 2: the low-magnesium check as a HealthChain 0.16.1 CDS Hooks service.

Runs only inside the throwaway virtualenv ``throughput.py --healthchain`` builds (healthchain==0.16.1 from
PyPI, gunicorn with uvicorn workers); it imports nothing from this repository. It does what a HealthChain
service idiomatically does with the same request: HealthChain parses the CDS Hooks request (CDSRequest), the
prefetched Bundles the rule reads are validated with fhir.resources (the FHIR models HealthChain uses; R4B, the release the request is in), and the
rule runs on the models: a patient with a dialysis Procedure in the last 30 days whose newest serum Mg
(LOINC 19123-9 in mg/dL, 2601-3 in mmol/L) is below 0.70 mmol/L gets one warning card. Same request, same
threshold, the same low magnesium the service's electrolyte-review card reports on the benchmark history.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fhir.resources.R4B.bundle import Bundle
from healthchain.gateway import CDSHooksService, HealthChainAPI
from healthchain.models.requests.cdsrequest import CDSRequest
from healthchain.models.responses.cdsresponse import Card, CDSResponse

MG_LOINC = {"19123-9": 1 / 2.431, "2601-3": 1.0}  # factor to mmol/L
DIALYSIS_CODES = {"302497006", "90935", "90937"}  # SNOMED CT haemodialysis, CPT haemodialysis
MG_LOW = 0.70

app = HealthChainAPI(title="healthchain-bench")
cds = CDSHooksService()


def _resources(prefetch: dict, key: str) -> list:
    raw = (prefetch or {}).get(key)
    if not raw:
        return []
    return [e.resource for e in Bundle.model_validate(raw).entry or [] if e.resource is not None]


def _when(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return None


@cds.hook("patient-view", id="dialysis-electrolytes-patient-view")
def patient_view(request: CDSRequest) -> CDSResponse:
    now = datetime.now(timezone.utc)
    prefetch = request.prefetch or {}
    on_dialysis = False
    for proc in _resources(prefetch, "procedures"):
        codes = {c.code for c in (proc.code.coding if proc.code else None) or []}
        end = _when(proc.performedPeriod.end if getattr(proc, "performedPeriod", None) else None)
        if codes & DIALYSIS_CODES and end is not None and now - end <= timedelta(days=30):
            on_dialysis = True
    newest = None
    for obs in _resources(prefetch, "labs"):
        if obs.status not in ("final", "amended", "corrected") or obs.valueQuantity is None:
            continue
        factor = next((MG_LOINC[c.code] for c in obs.code.coding or [] if c.code in MG_LOINC), None)
        when = _when(obs.effectiveDateTime)
        if factor is None or when is None:
            continue
        if newest is None or when > newest[0]:
            newest = (when, float(obs.valueQuantity.value) * factor)
    cards = []
    if on_dialysis and newest is not None and newest[1] < MG_LOW:
        cards.append(Card(summary=f"Magnesium low: {newest[1]:.2f} mmol/L", indicator="warning",
                          source={"label": "KDIGO"},
                          detail=f"Newest serum magnesium {newest[1]:.2f} mmol/L, below {MG_LOW:.2f} mmol/L."))
    return CDSResponse(cards=cards)


app.register_service(cds)
