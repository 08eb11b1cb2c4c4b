"""The order rules' card files: valid, complete, consistent with the rules that fill them."""
from __future__ import annotations

import pytest

from cds_service.clinical.rules import ORDER_SELECT, ORDER_SIGN, load_all
from cds_service.config import REPO_ROOT
from cds_service.hooks.cards import SUMMARY_LIMIT, CardLibrary, fill, placeholders_in

ORDER_RULES = ["potassium-supplement", "magnesium-co-management", "parenteral-magnesium", "oral-magnesium",
               "aluminum-containing-drug", "quinine-for-cramps", "baclofen-dialysis", "gabapentin-dialysis-dose",
               "hypertonic-saline"]
REPLACED = ["iv-magnesium-dialysis", "replacement-before-magnesium", "potassium-in-dialysis"]
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
    """The policy's numbers, design ones included, are card-file thresholds."""
    acute = {"acute_hours": 72, "acute_hours_crrt": 12}
    assert library.files["potassium-supplement"].thresholds == {"k_critical": 6.0, "k_high": 5.0, "k_low": 3.5, "k_early_post_low": 3.0,
                                                                "k_recent": 7, **acute}
    assert library.files["magnesium-co-management"].thresholds == {
        "mg_low": 0.70, "k_low": 3.5, "k_early_post_low": 3.0, "ica_low": 1.12, "k_hyperkalemia": 6.0, "mg_lookback": 45}
    assert library.files["parenteral-magnesium"].thresholds == {"mg_high": 1.50, "mg_low": 0.70, "max_48h": 20,
                                                                "max_24h": 8, "mg_recent": 7, **acute}
    assert library.files["oral-magnesium"].thresholds == {"mg_high": 1.50, "mg_recent": 7, **acute}
    assert library.files["baclofen-dialysis"].thresholds == {"max_daily": 5, "max_single": 5}
    assert library.files["gabapentin-dialysis-dose"].thresholds == {"max_daily": 300, "critical_daily": 600}
    assert library.files["hypertonic-saline"].thresholds == {"max_volume": 20}


def test_replaced_rules_are_gone():
    rules = load_all()
    assert not set(REPLACED) & set(rules)
    assert not any((REPO_ROOT / "cards" / f"{rule}.yaml").exists() for rule in REPLACED)


@pytest.mark.parametrize("rule_id", ORDER_RULES)
def test_wording_follows_the_policy(library, rule_id):
    """No 'never give IV magnesium', no 'check Mg first', the cards' one spelling (US), no internal words,
    no search pages, primary sources only."""
    from test_clinical_cards import BRITISH, INTERNAL

    data = library.files[rule_id].data
    labels = [data["title"], data["source"]["label"], *(link["label"] for link in data.get("links") or []),
              *(r["display"] for r in data.get("overrideReasons") or [])]
    text = " ".join([*(t for _w, t in library.files[rule_id].text_blocks()), *labels]).lower()
    assert "never give iv magnesium" not in text and "mg first" not in text and "magnesium first" not in text
    assert not [word for word in BRITISH if word in text], rule_id
    assert not [word for word in INTERNAL if word in text], rule_id
    for url in [data["source"]["url"]] + [link["url"] for link in data.get("links") or []]:
        assert url.startswith("https://") and "search" not in url and "?term=" not in url and "query=" not in url
        assert any(host in url for host in ("dailymed.nlm.nih.gov/dailymed/drugInfo.cfm?setid=", "doi.org/",
                                            "pubmed.ncbi.nlm.nih.gov/", "ukkidney.org", "kidneyfoundation",
                                            "ismp.org")), url


def test_changing_a_threshold_in_the_card_file_changes_the_rule(tmp_path):
    """Thresholds reach the rules only through the card files."""
    import shutil

    from cds_service.app import create_app
    from support.orders import SIGN, call, draft_bundle, med_request, patient_bundle, rx

    cards = tmp_path / "cards"
    shutil.copytree(REPO_ROOT / "cards", cards)
    order = med_request("g", rx("310432", "gabapentin 400 MG Oral Capsule"), dose=(400, "mg"), frequency=1, period=1)

    def answer():
        app = create_app({"CDS_REQUIRE_JWT": "false", "CDS_FEEDBACK_DB": str(tmp_path / "fb.db"),
                          "CDS_CARDS_DIR": str(cards)})
        return call(app.test_client(), SIGN, "pt-1", patient_bundle("pt-1"), draft_bundle([order]))

    assert [c["indicator"] for c in answer()] == ["warning"]  # 400 mg/day > 300 mg/day
    path = cards / "gabapentin-dialysis-dose.yaml"
    path.write_text(path.read_text().replace("max_daily: {value: 300,", "max_daily: {value: 500,"), encoding="utf-8")
    assert answer() == []
