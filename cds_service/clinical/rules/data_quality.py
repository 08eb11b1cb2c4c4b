"""Tell the clinician when data a rule needs could not be retrieved, instead of staying silently quiet."""
from __future__ import annotations

from . import ORDER_SELECT, ORDER_SIGN, PATIENT_VIEW, Finding, RuleContext, rule

_LABELS = {
    "labs": "electrolyte results (Mg, ionized Ca, K, phosphate)",
    "aluminum": "serum aluminum results",
    "heartRate": "recent heart rate",
    "conditions": "problem list (Conditions)",
    "procedures": "dialysis procedures",
    "encounters": "dialysis encounters",
    "symptoms": "documented cramps, neurological signs and ECG changes",
    "weights": "pre- and post-session body weights",
    "medications": "active medication list",
}
_DIALYSIS_KEYS = ("conditions", "procedures", "encounters")
_REASONS = {
    "timeout": "the FHIR server did not answer in time",
    "deadline": "the time budget ran out",
    "server": "the FHIR server returned an error",
    "not-json": "the FHIR server's answer was not FHIR JSON",
    "not-bundle": "the FHIR server's answer was not a Bundle",
    "operation-outcome": "the FHIR server returned an OperationOutcome",
    "paging-loop": "the FHIR server's paging looped",
    "too-large": "the answer was too large",
    "connect": "the FHIR server could not be reached",
    "unauthorized": "access was refused",
    "http-4xx": "the FHIR server refused the query",
    "refused": "the FHIR server is not on the allowlist",
    "no-fhir-server": "it was not prefetched and no FHIR server was given",
}


@rule("data-unavailable", hooks={PATIENT_VIEW, ORDER_SELECT, ORDER_SIGN}, always=True)
def data_unavailable(ctx: RuleContext) -> list[Finding]:
    snap = ctx.snapshot
    missing = {k: v for k, v in snap.unavailable.items() if k in _LABELS}
    if not missing:
        return []
    dialysis_unknown = all(k in missing for k in _DIALYSIS_KEYS) and not snap.dialysis.on_dialysis
    if not snap.dialysis.on_dialysis and not dialysis_unknown:
        return []  # a patient known not to be on dialysis: nothing this service says depends on it
    if snap.dialysis.on_dialysis and not any(k in missing for k in ("labs", "aluminum", "heartRate", "symptoms",
                                                                     "weights", "medications")):
        return []
    lines = [f"- {_LABELS[k]}: {_REASONS.get(v, v)}" for k, v in sorted(missing.items())]
    consequence = ("Whether the patient is on dialysis could not be established, so no electrolyte checks ran."
                   if dialysis_unknown else
                   "Checks that depend on these data did not run; review the results in the chart.")
    return [Finding(values={"missing": "\n".join(lines), "consequence": consequence})]
