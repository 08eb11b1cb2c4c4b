"""Prefetch templates shared by the three services (one definition; the order hooks reuse it)."""
from __future__ import annotations

from ..clinical import codes
from ..hooks.prefetch import PrefetchKey


def _codes(system: str, values) -> str:
    return ",".join(f"{system}|{c}" for c in values)


_SERUM_PANEL = [c for a in ("mg", "ica", "k", "po4", "total_ca", "albumin") for c in codes.ANALYTE_LOINC[a]]
_DIALYSIS_PROC = ",".join(f"{s}|{c}" for s, c in sorted(codes.DIALYSIS_PROCEDURES))
_SYMPTOMS = ",".join(f"{s}|{c}" for s, c in sorted(codes.CRAMP_CODES | codes.NEURO_SIGN_CODES | codes.TETANY_CODES
                                                   | codes.ECG_CHANGE_CODES | codes.ECG_REPORT_CODES))

PATIENT = "{{context.patientId}}"

PREFETCH: dict[str, PrefetchKey] = {
    # Offered so that an EHR can send it; the rules read no demographics, so the service never fetches it.
    "patient": PrefetchKey(f"Patient/{PATIENT}", fetch=False),
    "conditions": PrefetchKey(f"Condition?patient={PATIENT}&_count=200", required=True),
    "procedures": PrefetchKey(
        f"Procedure?patient={PATIENT}&code={_DIALYSIS_PROC}&_sort=-date&_count=50", since_days=46, required=True),
    "encounters": PrefetchKey(
        f"Encounter?patient={PATIENT}&type={_DIALYSIS_PROC}&_sort=-date&_count=50", since_days=46, required=True),
    # 45 days: the chronic look-back (policy section 2); acute rules narrow it themselves.
    "labs": PrefetchKey(
        f"Observation?patient={PATIENT}&code={_codes(codes.LOINC, _SERUM_PANEL)}&_sort=-date&_count=200",
        since_days=46, required=True),
    # 12 months: an aluminium result is looked for over a year (policy section 4, aluminum-toxicity).
    "aluminum": PrefetchKey(
        f"Observation?patient={PATIENT}&code={codes.LOINC}|5574-9&_sort=-date&_count=5", since_days=366),
    # Pre- and post-session body weights of the last week's sessions (ultrafiltration-rate).
    "weights": PrefetchKey(
        f"Observation?patient={PATIENT}&code={_codes(codes.LOINC, codes.ANALYTE_LOINC['weight'])}"
        f"&_sort=-date&_count=40", since_days=8),
    # Active medication list: PD solutions (modality) and aluminium sources.
    "medications": PrefetchKey(f"MedicationRequest?patient={PATIENT}&status=active&_count=100"),
    "heartRate": PrefetchKey(
        f"Observation?patient={PATIENT}&code={codes.LOINC}|8867-4&_sort=-date&_count=10", since_days=2),
    "symptoms": PrefetchKey(
        f"Observation?patient={PATIENT}&code={_SYMPTOMS}&_sort=-date&_count=20", since_days=8),
}

DIALYSIS_KEYS = ("conditions", "procedures", "encounters")
