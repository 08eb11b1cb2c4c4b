"""Card rendering from card files: suggestions, actions, links, override reasons, summary limit."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from cds_service.clinical.rules import Finding, SuggestionSpec
from cds_service.hooks.cards import CardFile, CardFileError, CardLibrary, placeholders_in, render_card
from cds_service.hooks.validation import response_problems

BASE = {
    "rule": "example-rule",
    "title": "Example",
    "indicator": "warning",
    "summary": "Value {value} is low",
    "detail": "The value was **{value}** at {when}.",
    "source": {"label": "A reference", "url": "https://example.org/ref"},
    "links": [{"label": "More about {value}", "url": "https://example.org/more"}],
    "overrideReasons": [{"code": "not-relevant", "display": "Not relevant"}],
    "suggestions": {
        "order-lab": {"label": "Order {display}", "description": "Order a {display} for this patient"},
        "remove-draft": {"label": "Remove {medication}", "description": "Delete the draft order for {medication}"},
    },
}


def _card(data=None, **finding_kw):
    card_file = CardFile("example-rule", data or BASE, Path("x.yaml"))
    finding = Finding(rule_id="example-rule", values={"value": "0.5 mmol/L", "when": "today"}, **finding_kw)
    return render_card(finding, card_file, "pat-1")


def test_rendered_card_is_valid_and_cites_its_source():
    card = _card()
    assert response_problems({"cards": [card]}) == []
    uuid.UUID(card["uuid"])
    assert card["summary"] == "Value 0.5 mmol/L is low"
    assert card["source"] == {"label": "A reference", "url": "https://example.org/ref",
                              "topic": {"system": "https://cds.dialysis-cramps.example/rules",
                                        "code": "ExampleRule", "display": "Example"}}
    assert "suggestions" not in card and "selectionBehavior" not in card


def test_override_reasons_are_codings_with_display():
    card = _card()
    assert card["overrideReasons"] == [{"system": "https://cds.dialysis-cramps.example/override-reason",
                                        "code": "not-relevant", "display": "Not relevant"}]


def test_links_are_absolute_without_app_context():
    link = _card()["links"][0]
    assert link == {"label": "More about 0.5 mmol/L", "url": "https://example.org/more", "type": "absolute"}


def test_order_lab_suggestion_creates_a_draft_proposal_service_request():
    card = _card(suggestions=[SuggestionSpec("order-lab", {"analyte": "mg", "loinc": "19123-9",
                                                            "display": "Magnesium [Mass/volume] in Serum or Plasma"})])
    assert response_problems({"cards": [card]}) == []
    assert card["selectionBehavior"] == "at-most-one"
    suggestion = card["suggestions"][0]
    uuid.UUID(suggestion["uuid"])
    assert "isRecommended" not in suggestion
    action = suggestion["actions"][0]
    assert action["type"] == "create"
    resource = action["resource"]
    assert resource["resourceType"] == "ServiceRequest"
    assert (resource["status"], resource["intent"]) == ("draft", "proposal")
    assert resource["code"]["coding"][0] == {"system": "http://loinc.org", "code": "19123-9",
                                             "display": "Magnesium [Mass/volume] in Serum or Plasma"}
    assert resource["subject"] == {"reference": "Patient/pat-1"}


def test_remove_draft_suggestion_is_a_delete_with_resource_id_only():
    card = _card(suggestions=[SuggestionSpec("remove-draft", {"resource_id": "MedicationRequest/d1",
                                                               "medication": "magnesium sulfate"}, recommended=True)])
    assert response_problems({"cards": [card]}) == []
    suggestion = card["suggestions"][0]
    assert suggestion["isRecommended"] is True
    assert suggestion["actions"] == [{"type": "delete", "description": "Delete the draft order for magnesium sulfate",
                                      "resourceId": "MedicationRequest/d1"}]


def test_several_suggestions_default_to_any():
    specs = [SuggestionSpec("order-lab", {"analyte": a, "loinc": c, "display": a}) for a, c in
             (("mg", "19123-9"), ("k", "2823-3"))]
    assert _card(suggestions=specs)["selectionBehavior"] == "any"


def test_indicator_and_variant_overrides():
    data = dict(BASE, variants={"info": {"indicator": "info", "summary": "Value {value} worth a look"}})
    assert _card(data, variant="info")["indicator"] == "info"
    assert _card(data, variant="info")["summary"] == "Value 0.5 mmol/L worth a look"
    assert _card(indicator="critical")["indicator"] == "critical"


def test_overlong_summary_is_clipped_below_140():
    data = dict(BASE, summary="x" * 200)
    summary = _card(data)["summary"]
    assert len(summary) < 140 and summary.endswith("…")


def test_missing_placeholder_value_never_crashes():
    data = dict(BASE, summary="Value {nope}")
    assert _card(data)["summary"] == "Value (not available)"


def test_placeholders_in_ignores_literal_braces():
    assert placeholders_in("a {x} b {{literal}} {y:.2f}") == {"x", "y"}


def test_library_rejects_invalid_card_files(tmp_path):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"rule": "bad", "indicator": "urgent", "summary": "s",
                                                       "detail": "d", "source": {"label": "l", "url": "https://x"}}))
    with pytest.raises(CardFileError) as err:
        CardLibrary(tmp_path)
    assert "indicator" in str(err.value)


def test_shipped_card_files_cover_every_registered_rule():
    from cds_service.clinical.rules import load_all
    from cds_service.config import load_config
    library = CardLibrary(load_config({})["CDS_CARDS_DIR"])
    library.require(load_all().keys())
