"""Policy section 3: modality (HD, PD, CRRT, unknown, not on dialysis) through the real snapshot path."""
from __future__ import annotations

from datetime import timedelta

import pytest

from _clinical_builders import (DIALYSIS_CONDITION, ESRD, ICD10CM, NOW, SNOMED, ago, coding, condition,
                                dialysis_encounter, hd_session, patient, snapshot)

CPT = "http://www.ama-assn.org/go/cpt"
PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
TRANSPLANT = coding(ICD10CM, "Z94.0", "Kidney transplant status")


def snap(resources):
    return snapshot([patient(), *resources])


def med_request(text: str, status: str = "active", route: str | None = None) -> dict:
    res = {"resourceType": "MedicationRequest", "id": f"mr-{abs(hash(text)) % 10000}", "status": status,
           "intent": "order", "subject": {"reference": "Patient/p1"}, "medicationCodeableConcept": {"text": text}}
    if route:
        res["dosageInstruction"] = [{"route": {"text": route}}]
    return res


@pytest.mark.parametrize("system,code", [
    (SNOMED, "302497006"), (SNOMED, "233575001"), (SNOMED, "34897002"), (SNOMED, "67970008"),
    (CPT, "90935"), (CPT, "90937"), (PCS, "5A1D70Z"),
])
def test_hd_codes_give_hd_and_sessions(system, code):
    s = snap([hd_session(ago(hours=20), system=system, code=code)])
    assert s.modality == "HD"
    assert len(s.sessions) == 1 and s.last_session.end == ago(hours=20)


def test_generic_dialysis_code_with_an_intermittent_session_is_hd():
    s = snap([condition(DIALYSIS_CONDITION, onset=ago(days=300)), hd_session(ago(hours=20), code="108241001")])
    assert s.modality == "HD" and s.sessions


def test_generic_dialysis_code_with_one_date_is_unknown():
    s = snap([condition(DIALYSIS_CONDITION, onset=ago(days=300)),
              hd_session(None, code="265764009", performed=ago(days=2))])
    assert s.modality == "unknown" and not s.sessions


def test_dialysis_dependence_without_modality_data_is_unknown():
    s = snap([condition(DIALYSIS_CONDITION, onset=ago(days=300))])
    assert s.dialysis.on_dialysis and s.modality == "unknown" and s.last_session is None


def test_pd_procedure_is_pd_and_not_a_session():
    s = snap([hd_session(ago(hours=10), code="71192002")])
    assert s.modality == "PD" and not s.sessions


def test_pd_condition_is_pd():
    s = snap([condition(coding(SNOMED, "71192002", "Peritoneal dialysis"), onset=ago(days=100))])
    assert s.dialysis.on_dialysis and s.modality == "PD"


def test_cpt_90945_with_pd_evidence_is_pd():
    s = snap([condition(coding(SNOMED, "71192002"), onset=ago(days=100)),
              hd_session(ago(hours=10), system=CPT, code="90945")])
    assert s.modality == "PD" and not s.sessions


def test_cpt_90945_in_progress_without_pd_evidence_is_crrt():
    s = snap([condition(DIALYSIS_CONDITION, onset=ago(days=5)),
              hd_session(None, start=ago(hours=30), status="in-progress", system=CPT, code="90945")])
    assert s.modality == "CRRT" and s.session_in_progress is None


def test_pd_solution_order_is_pd_evidence():
    s = snap([condition(DIALYSIS_CONDITION, onset=ago(days=300)),
              med_request("Dianeal PD-2 with 1.5% dextrose peritoneal dialysis solution")])
    assert s.modality == "PD"


def test_stopped_pd_solution_order_is_not_pd_evidence():
    s = snap([condition(DIALYSIS_CONDITION, onset=ago(days=300)),
              med_request("Dianeal peritoneal dialysis solution", status="stopped")])
    assert s.modality == "unknown"


@pytest.mark.parametrize("system,code", [(SNOMED, "714749008"), (PCS, "5A1D90Z")])
def test_crrt_in_progress_is_crrt(system, code):
    s = snap([condition(DIALYSIS_CONDITION, onset=ago(days=3)),
              hd_session(None, start=ago(days=2), status="in-progress", system=system, code=code)])
    assert s.modality == "CRRT"
    assert not s.sessions and s.session_in_progress is None  # CRRT is not an HD session


def test_hd_in_progress_is_an_hd_session_in_progress_not_crrt():
    s = snap([condition(DIALYSIS_CONDITION, onset=ago(days=300)), hd_session(ago(days=2)),
              hd_session(None, start=ago(hours=1), status="in-progress")])
    assert s.modality == "HD"
    assert s.session_in_progress is not None and s.session_in_progress.start == ago(hours=1)
    assert len(s.sessions) == 1


def test_most_recent_treatment_decides_between_modalities():
    # an HD patient now on CRRT in intensive care
    s = snap([hd_session(ago(days=3)), hd_session(None, start=ago(hours=20), status="in-progress", code="714749008")])
    assert s.modality == "CRRT"
    # a PD patient who had a temporary HD session since the last PD record
    s = snap([hd_session(ago(days=5), code="71192002"), hd_session(ago(hours=30))])
    assert s.modality == "HD"


def test_dialysis_encounter_is_an_hd_session():
    s = snap([dialysis_encounter(ago(hours=7), ago(hours=3))])
    assert s.modality == "HD" and s.last_session.end == ago(hours=3)


def test_esrd_without_dialysis_evidence_is_not_on_dialysis():
    s = snap([condition(ESRD, onset=ago(days=300)), condition(coding(ICD10CM, "N18.6"), onset=ago(days=300))])
    assert not s.dialysis.on_dialysis and s.modality is None


def test_transplant_with_an_old_dialysis_code_is_not_on_dialysis():
    s = snap([condition(DIALYSIS_CONDITION, onset=ago(days=900)), condition(TRANSPLANT, onset=ago(days=400)),
              hd_session(ago(days=31))])
    assert not s.dialysis.on_dialysis and s.modality is None


def test_transplant_with_a_recent_dialysis_session_is_on_dialysis():
    # boundary: a session 29 days ago (graft failure, back on HD)
    s = snap([condition(DIALYSIS_CONDITION, onset=ago(days=900)), condition(TRANSPLANT, onset=ago(days=400)),
              hd_session(ago(days=29))])
    assert s.dialysis.on_dialysis and s.modality == "HD"


def test_sessions_oldest_first_and_older_sessions_kept_for_timing():
    s = snap([hd_session(ago(days=40)), hd_session(ago(days=1)), hd_session(ago(days=20))])
    assert [x.end for x in s.sessions] == [ago(days=40), ago(days=20), ago(days=1)]
    s = snap([hd_session(ago(days=47))])
    assert not s.sessions  # past the 46-day session history


def test_hd_session_in_an_encounter_in_progress():
    s = snap([dialysis_encounter(ago(hours=2), None, status="in-progress")])
    assert s.modality == "HD" and s.session_in_progress is not None
