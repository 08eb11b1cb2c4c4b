"""Card files of the clinical rules: present, complete, citing their source, summaries short enough."""
from __future__ import annotations


import pytest

from cds_service.clinical.rules import load_all
from cds_service.hooks.cards import fill

from _clinical_builders import cards

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


@pytest.mark.parametrize("rule_id", PATIENT_VIEW_RULES)
def test_cards_cite_a_source(rule_id):
    data = cards().files[rule_id].data
    assert data["source"]["label"] and data["source"]["url"].startswith("https://")
    details = [data["detail"], *(v.get("detail", "") for v in (data.get("variants") or {}).values())]
    for detail in details:
        if detail:
            assert "Source:" in detail, rule_id


@pytest.mark.parametrize("rule_id", PATIENT_VIEW_RULES)
def test_thresholds_the_rule_declares_are_in_its_card(rule_id):
    assert set(cards().files[rule_id].thresholds) == set(RULES[rule_id].thresholds)


def test_cards_that_override_the_seed_say_so():
    """Where the verified reference overrides the source cramp guidance, the card text (what the
    clinician reads) says so, in words a clinician understands."""
    for rule_id in ("aluminum-toxicity", "magnesium-first", "spasm-workup"):
        text = cards().files[rule_id].data["detail"]
        assert "cramp guidance" in text and "verified reference" in text, rule_id
        assert "seed" not in text.lower(), rule_id
    assert cards().files["aluminum-toxicity"].thresholds["al_warning"] == 60


def test_suggesting_rules_have_suggestion_text_and_any_selection_for_the_panel():
    for rule_id in ("magnesium-first", "spasm-workup", "aluminum-toxicity"):
        assert "order-lab" in cards().files[rule_id].data["suggestions"]
    assert cards().files["spasm-workup"].data["selectionBehavior"] == "any"
