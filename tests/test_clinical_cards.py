"""Card files of the clinical rules: present, complete, citing their source, summaries short enough."""
from __future__ import annotations


import pytest

from cds_service.clinical.rules import load_all
from cds_service.hooks.cards import fill

from support.clinical import cards

RULES = load_all()
# data-unavailable is a data notice, not clinical guidance; the clinical rules are what these tests are about.
PATIENT_VIEW_RULES = sorted(r for r, rule in RULES.items() if "patient-view" in rule.hooks and r != "data-unavailable")


def test_every_rule_has_one_card_file():
    cards().require(RULES)


@pytest.mark.parametrize("rule_id", PATIENT_VIEW_RULES)
def test_summaries_are_short_with_the_longest_values(rule_id):
    card = cards().files[rule_id]
    longest = card.data.get("placeholders") or {}
    blocks = [card.data, *(card.data.get("variants") or {}).values()]
    for block in blocks:
        if "summary" in block:
            text = fill(block["summary"], longest)
            assert len(text) < 140, (rule_id, len(text), text)
            assert "(not available)" not in text


# Primary sources only (policy section 1.7): a guideline, a DailyMed label by setid, or a paper (DOI/PubMed).
PRIMARY = ("https://doi.org/", "https://pubmed.ncbi.nlm.nih.gov/", "https://pmc.ncbi.nlm.nih.gov/articles/PMC",
           "https://dailymed.nlm.nih.gov/dailymed/drugInfo.cfm?setid=", "https://ukkidney.org/",
           "https://kidneyfoundation.cachefly.net/professionals/KDOQI/")
# The cards' one spelling convention is US English (the rule ids': hyperkalemia, aluminum-toxicity).
BRITISH = ("haem", "aluminium", "kalaem", "calcaem", "magnesaem", "ionised", "oedema", "anaem", "diarrhoea",
           "dialysed", "behaviour", "colour", "centre")
INTERNAL = ("seed", "project", "reference file", "verified reference", "internal", "cramp guidance")
# Indicators the policy allows per rule (section 4); critical only where it lists it.
ALLOWED = {"electrolyte-review": {"warning", "info"}, "hyperkalemia": {"warning", "critical"},
           "hypokalemia-severe": {"critical", "warning"}, "hypocalcemia-severe": {"critical", "warning"},
           "hypomagnesemia-severe": {"critical", "warning"}, "hypermagnesemia": {"warning", "critical"},
           "aluminum-toxicity": {"info", "warning", "critical"}, "dysrhythmia-risk": {"warning"},
           "ultrafiltration-rate": {"warning"}}


def _texts(data: dict) -> list[str]:
    out = [data.get("title", ""), data["summary"], data["detail"], data["source"]["label"],
           *(link["label"] for link in data.get("links") or [])]
    for variant in (data.get("variants") or {}).values():
        out += [variant.get("summary", ""), variant.get("detail", "")]
    for suggestion in (data.get("suggestions") or {}).values():
        out += [suggestion.get("label", ""), suggestion.get("description", "")]
    return out


def test_the_policy_rule_set_is_what_runs_on_patient_view():
    assert set(PATIENT_VIEW_RULES) == set(ALLOWED)
    for gone in ("hypomagnesemia", "magnesium-first", "hypokalemia", "hypocalcemia", "spasm-workup",
                 "post-dialysis-monitoring"):
        assert gone not in RULES and gone not in cards().files


@pytest.mark.parametrize("rule_id", PATIENT_VIEW_RULES)
def test_cards_cite_primary_sources_only(rule_id):
    data = cards().files[rule_id].data
    urls = [data["source"]["url"], *(link["url"] for link in data.get("links") or [])]
    for url in urls:
        assert url.startswith(PRIMARY), (rule_id, url)
        assert "search" not in url.lower() and "droracle" not in url and "infectiousdiseaseadvisor" not in url
    for detail in (data["detail"], *(v.get("detail", "") for v in (data.get("variants") or {}).values())):
        if detail:
            assert "Source:" in detail or "Sources:" in detail, rule_id


@pytest.mark.parametrize("rule_id", PATIENT_VIEW_RULES)
def test_card_wording_follows_the_policy(rule_id):
    for text in _texts(cards().files[rule_id].data):
        low = text.lower()
        assert not any(word in low for word in INTERNAL), (rule_id, text)
        assert not any(word in low for word in BRITISH), (rule_id, text)
        assert "mg first" not in low and "magnesium first" not in low and "check mg before" not in low
        assert "never give iv magnesium" not in low
        if "sodium profiling" in low:
            assert "avoid sodium profiling" in low, (rule_id, text)  # never recommended


@pytest.mark.parametrize("rule_id", PATIENT_VIEW_RULES)
def test_indicators_are_those_the_policy_lists(rule_id):
    data = cards().files[rule_id].data
    used = {data["indicator"], *(v["indicator"] for v in (data.get("variants") or {}).values() if "indicator" in v)}
    assert used <= ALLOWED[rule_id], (rule_id, used)


def test_aluminum_card_cites_the_adult_kdoqi_guideline_not_the_pediatric_one():
    data = cards().files["aluminum-toxicity"].data
    assert "guidelines_bone/guide11" in data["source"]["url"] and "pedbone" not in str(data)
    assert cards().files["aluminum-toxicity"].thresholds == {"al_sources": 20, "al_dfo": 60, "al_no_dfo": 200,
                                                             "result_window": 365, "sign_window": 90}


@pytest.mark.parametrize("rule_id", PATIENT_VIEW_RULES)
def test_thresholds_the_rule_declares_are_in_its_card(rule_id):
    assert set(cards().files[rule_id].thresholds) == set(RULES[rule_id].thresholds)


def test_design_numbers_are_card_file_thresholds():
    """Policy numbers marked (design) are card-file thresholds a site can change."""
    for rule_id in ("hyperkalemia", "hypokalemia-severe", "hypocalcemia-severe", "hypomagnesemia-severe",
                    "hypermagnesemia", "electrolyte-review", "dysrhythmia-risk"):
        t = cards().files[rule_id].thresholds
        assert (t["acute_window"], t["crrt_window"], t["chronic_window"]) == (72, 12, 45), rule_id
    assert cards().files["electrolyte-review"].thresholds["shifting_window"] == 5


def test_suggesting_rules_have_suggestion_text_and_any_selection_for_the_panel():
    for rule_id in ("electrolyte-review", "hyperkalemia", "hypokalemia-severe", "hypocalcemia-severe",
                    "hypomagnesemia-severe", "hypermagnesemia", "aluminum-toxicity"):
        assert "order-lab" in cards().files[rule_id].data["suggestions"], rule_id
    assert cards().files["electrolyte-review"].data["selectionBehavior"] == "any"
