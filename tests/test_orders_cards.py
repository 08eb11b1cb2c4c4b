"""The order rules' card files: valid, complete, consistent with the rules that fill them."""
from __future__ import annotations

import pytest

from cds_service.clinical.rules import ORDER_SELECT, ORDER_SIGN, load_all
from cds_service.config import REPO_ROOT
from cds_service.hooks.cards import SUMMARY_LIMIT, CardLibrary, fill, placeholders_in

ORDER_RULES = ["iv-magnesium-dialysis", "replacement-before-magnesium", "potassium-in-dialysis", "quinine-for-cramps",
               "baclofen-dialysis", "gabapentin-dialysis-dose", "hypertonic-saline"]
SUGGESTION_PARAMS = {"remove-draft": {"resource_id", "medication"}, "order-lab": {"analyte", "loinc", "display"}}


@pytest.fixture(scope="module")
def library():
    return CardLibrary(REPO_ROOT / "cards")


@pytest.mark.parametrize("rule_id", ORDER_RULES)
def test_rule_is_registered_for_both_order_hooks(rule_id):
    rule = load_all()[rule_id]
    assert rule.hooks == {ORDER_SELECT, ORDER_SIGN}
    assert not rule.always  # dialysis patients only


@pytest.mark.parametrize("rule_id", ORDER_RULES)
def test_card_file_placeholders_match_the_rule(library, rule_id):
    card = library.files[rule_id]
    declared = set(card.data["placeholders"])
    for where, template in card.text_blocks():
        extra = SUGGESTION_PARAMS.get(where.split(".")[1], set()) if where.startswith("suggestions.") else set()
        assert placeholders_in(template) <= declared | extra, where


@pytest.mark.parametrize("rule_id", ORDER_RULES)
def test_summaries_fit_with_the_longest_values(library, rule_id):
    card = library.files[rule_id]
    values = card.data["placeholders"]
    for where, template in card.text_blocks():
        if where.endswith("summary"):
            assert len(" ".join(fill(template, values).split())) < SUMMARY_LIMIT, where


@pytest.mark.parametrize("rule_id", ORDER_RULES)
def test_card_cites_a_source_and_codes_its_override_reasons(library, rule_id):
    data = library.files[rule_id].data
    assert data["source"]["label"] and data["source"]["url"].startswith("http")
    assert "Source" in data["detail"]
    reasons = data.get("overrideReasons") or []
    assert reasons and all(r["code"] and r["display"] for r in reasons)
    assert len({r["code"] for r in reasons}) == len(reasons)


def test_thresholds_live_in_the_card_files(library):
    assert library.files["replacement-before-magnesium"].thresholds == {"mg_low": 0.70}
    assert library.files["potassium-in-dialysis"].thresholds == {"k_replace_below": 3.5, "k_recent": 72}
    assert library.files["baclofen-dialysis"].thresholds == {"critical_daily": 30}
    assert library.files["gabapentin-dialysis-dose"].thresholds == {"max_single": 300, "max_daily": 300}
    assert library.files["hypertonic-saline"].thresholds == {"concentration": 234}


def test_changing_a_threshold_in_the_card_file_changes_the_rule(tmp_path):
    """Thresholds reach the rules only through the card files."""
    import shutil

    from cds_service.app import create_app
    from orders_support import SIGN, call, draft_bundle, med_request, patient_bundle, rx

    cards = tmp_path / "cards"
    shutil.copytree(REPO_ROOT / "cards", cards)
    path = cards / "gabapentin-dialysis-dose.yaml"
    path.write_text(path.read_text().replace("max_single: {value: 300,", "max_single: {value: 500,"), encoding="utf-8")
    app = create_app({"CDS_REQUIRE_JWT": "false", "CDS_FEEDBACK_DB": str(tmp_path / "fb.db"),
                      "CDS_CARDS_DIR": str(cards)})
    order = med_request("g", rx("310432", "gabapentin 400 MG Oral Capsule"), dose=(400, "mg"))
    assert call(app.test_client(), SIGN, "pt-1", patient_bundle("pt-1"), draft_bundle([order])) == []
