"""Card preview page, in-process: switched by CDS_PREVIEW, driven by the scenario files and card files,
grouped by rule from the scenarios themselves, markdown rendered with HTML escaped, nothing recorded.
(The browser tests, with screenshots, are test_preview_browser.py.)"""
from __future__ import annotations

import re
import shutil
import time
from html import unescape

import yaml
from sqlalchemy import func, select

from cds_service.authoring import scenarios as sc
from cds_service.hooks.feedback import issued_cards
from cds_service.preview import group_by_rule
from support.helpers import REPO

SCENARIOS = REPO / "cards" / "scenarios"


def same_rule(topic_code: str, rule_id: str) -> bool:
    """A card's source.topic.code names the rule: its id, or the id's words run together (EHR-safe codes)."""
    return re.sub(r"[^a-z0-9]", "", topic_code.lower()) == re.sub(r"[^a-z0-9]", "", rule_id.lower())


def nav_keys(html: str) -> list[str]:
    return re.findall(r'<a href="\?s=[^"]*" class="nav-item[^"]*"[^>]*data-key="([^"]+)"', html)


def shown(html: str) -> str:
    """The HTML of the one scenario drawn on the page."""
    return html.split('<section class="scenario"', 1)[1].split("</section>\n", 1)[0]


def shown_key(html: str) -> str:
    return re.search(r'<section class="scenario" id="scenario" data-scenario="([^"]+)"', html).group(1)


def summaries(fragment: str) -> list[str]:
    return [unescape(s) for s in re.findall(r'<h4 class="card-summary">(.*?)</h4>', fragment, re.S)]


def groups_of(html: str) -> dict[str, dict[str, list[str]]]:
    """rule -> {"positive": [keys], "decoys": [keys]} as the navigation shows them."""
    nav = html.split('<nav class="rules"', 1)[1].split("</nav>", 1)[0]
    out = {}
    for part in re.split(r'(?=<section class="rule-group")', nav)[1:]:
        rule = re.search(r'data-rule="([^"]*)"', part).group(1)
        body = part.split("</section>", 1)[0]
        positive, _, decoys = body.partition('<details class="decoys"')
        out[rule] = {"positive": nav_keys(positive), "decoys": nav_keys(decoys)}
    tail = nav.split('<details class="rule-group decoys decoys--all"', 1)
    out[""] = {"positive": [], "decoys": nav_keys(tail[1]) if len(tail) > 1 else []}
    return out


def test_preview_is_off_by_default(client):
    resp = client.get("/preview")
    assert resp.status_code == 404
    assert resp.get_json()["resourceType"] == "OperationOutcome"
    assert client.post("/preview/render", json={"status": 200, "body": {"cards": []}}).status_code == 404


def test_navigation_lists_every_scenario_file_grouped_by_the_rules_it_expects(make_app):
    resp = make_app(CDS_PREVIEW="true").test_client().get("/preview")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    html = resp.get_data(as_text=True)
    files = {p.stem: sc.load(p) for p in sc.scenario_files([SCENARIOS])}
    assert set(nav_keys(html)) == set(files) and len(files) > 20
    groups = groups_of(html)
    for key, s in files.items():
        expected = [c.rule for c in s.cards]
        for rule in expected:  # under every rule it expects a card of, among the positive scenarios
            assert key in groups[rule]["positive"], (key, rule)
        for rule in set(s.absent) - set(expected):  # under the rules it must keep silent, collapsed
            assert key in groups[rule]["decoys"], (key, rule)
        assert (key in groups[""]["decoys"]) == (not expected), key  # "No card expected" at the end
    for rule, group in groups.items():
        assert not set(group["positive"]) & set(group["decoys"]), rule
    # The first scenario drawn is a positive one, not a decoy.
    assert files[shown_key(html)].cards


def test_group_by_rule_follows_whatever_rules_the_scenarios_name():
    def view(key, hook, expected, absent=(), fired=()):
        return {"key": key, "hook": hook, "title": key, "expected": expected, "absent": list(absent),
                "fired": list(fired)}

    views = [view("b-sign", "order-sign", ["new-rule"]), view("a-view", "patient-view", ["new-rule", "other"]),
             view("decoy", "patient-view", [], absent=["new-rule"]), view("quiet", "order-select", []),
             view("no-expectations", "patient-view", None, fired=["other"])]
    groups, no_card = group_by_rule(views, ["other", "new-rule"], {"new-rule": "A rule added later"})
    assert [g["rule"] for g in groups] == ["other", "new-rule"]  # registry order
    by_rule = {g["rule"]: g for g in groups}
    assert [v["key"] for v in by_rule["new-rule"]["positive"]] == ["a-view", "b-sign"]  # patient-view first
    assert [v["key"] for v in by_rule["new-rule"]["decoys"]] == ["decoy"]
    assert by_rule["new-rule"]["title"] == "A rule added later" and by_rule["other"]["title"] == "other"
    assert [v["key"] for v in by_rule["other"]["positive"]] == ["a-view", "no-expectations"]
    assert [v["key"] for v in no_card] == ["decoy", "quiet"]


def test_shown_scenario_has_the_real_endpoints_cards_beside_its_values(make_app):
    client = make_app(CDS_PREVIEW="true").test_client()
    html = client.get("/preview?s=dx-low-mg").get_data(as_text=True)
    assert shown_key(html) == "dx-low-mg"
    assert 'class="nav-item nav-item--current" aria-current="page"' in html
    section = shown(html)
    request = client.get("/preview/request/dx-low-mg").get_json()
    answer = client.post("/cds-services/dialysis-electrolytes-patient-view", json=request).get_json()
    assert summaries(section) == [c["summary"] for c in answer["cards"]] != []
    card_file = yaml.safe_load((REPO / "cards" / "electrolyte-review.yaml").read_text())
    assert 'data-indicator="warning"' in section
    assert same_rule(re.search(r'data-topic="([^"]*)"', section).group(1), "electrolyte-review")
    assert "<strong>low</strong>" in section and "<table>" in section  # markdown rendered
    assert f'href="{card_file["source"]["url"]}"' in section
    for reason in card_file["overrideReasons"]:
        assert f'<option value="{reason["code"]}">{reason["display"]}</option>' in section
    # The values the request carries, beside the cards: the low Mg result and the dialysis session.
    values = section.split('<div class="values">', 1)[1].split('<div class="sidebar"', 1)[0]
    assert "Magnesium" in values and "1.3 mg/dL" in values and "Hemodialysis" in values  # as sent, unconverted
    assert "As the scenario expects" in section
    # A decoy: no cards, said plainly.
    quiet = shown(client.get("/preview?s=decoy-urine-mg").get_data(as_text=True))
    assert summaries(quiet) == [] and "No cards" in quiet


def test_page_has_no_raw_spec_words(make_app):
    client = make_app(CDS_PREVIEW="true").test_client()
    for key in sorted(set(nav_keys(client.get("/preview").get_data(as_text=True)))):
        text = re.sub(r"<[^>]+>", " ", client.get(f"/preview?s={key}").get_data(as_text=True))
        assert "Selection:" not in text and "at-most-one" not in text and "selectionBehavior" not in text, key
    card = {"summary": "s", "indicator": "info", "source": {"label": "x"}, "selectionBehavior": "at-most-one",
            "suggestions": [{"label": "One", "actions": [{"type": "create", "description": "Order Mg"}]},
                            {"label": "Two", "actions": [{"type": "delete", "description": "Remove it"}]}]}
    html = client.post("/preview/render", json={"status": 200, "body": {"cards": [card]}}).get_data(as_text=True)
    assert "Choose one of these." in html and "at-most-one" not in html


def test_page_follows_the_card_files_without_a_restart(make_app, tmp_path):
    cards = tmp_path / "cards"
    shutil.copytree(REPO / "cards", cards)
    client = make_app(CDS_PREVIEW="true", CDS_CARDS_DIR=str(cards)).test_client()
    before = summaries(shown(client.get("/preview?s=dx-low-mg").get_data(as_text=True)))
    assert before[0].startswith("Low Mg 0.53 mmol/L")
    # An edit to a scenario file is seen on the next load.
    path = cards / "scenarios" / "dx-low-mg.yaml"
    path.write_text(path.read_text().replace("rule: electrolyte-review\n    indicator: warning",
                                             "rule: electrolyte-review\n    indicator: critical"))
    time.sleep(0.01)
    html = client.get("/preview?s=dx-low-mg").get_data(as_text=True)
    assert "Not what the scenario expects" in shown(html) and "electrolyte-review" in shown(html)
    assert 'nav-item--mismatch' in html and "1 not as expected" in html


def test_page_follows_the_scenario_folder(make_app, tmp_path):
    cards = tmp_path / "cards"
    shutil.copytree(REPO / "cards", cards, ignore=shutil.ignore_patterns("scenarios"))
    (cards / "scenarios").mkdir()
    shutil.copy(SCENARIOS / "dx-low-mg.yaml", cards / "scenarios" / "only-one.yaml")
    (cards / "scenarios" / "broken.yaml").write_text("name: [unclosed\n")
    client = make_app(CDS_PREVIEW="true", CDS_CARDS_DIR=str(cards)).test_client()
    resp = client.get("/preview")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert sorted(set(nav_keys(html))) == ["broken", "only-one"]
    broken = shown(client.get("/preview?s=broken").get_data(as_text=True))
    assert "Not what the scenario expects" in broken and "not valid YAML" in broken
    assert client.get("/preview/request/broken").status_code == 404
    assert client.get("/preview/request/only-one").get_json()["hook"] == "patient-view"
    assert client.get("/preview/request/no-such").status_code == 404


def test_preview_records_nothing(make_app):
    app = make_app(CDS_PREVIEW="true")
    assert app.test_client().get("/preview").status_code == 200
    store = app.extensions["cds"].feedback
    store.flush()
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(issued_cards)).scalar() == 0


def test_render_escapes_html_and_unsafe_links(make_app):
    client = make_app(CDS_PREVIEW="true").test_client()
    card = {"uuid": "u1", "summary": "<img src=x onerror=alert(1)>", "indicator": "critical",
            "detail": "**bold** <script>alert(1)</script> [click](javascript:alert(1))",
            "source": {"label": "Ref", "url": "javascript:alert(1)"},
            "links": [{"label": "bad", "url": "javascript:alert(2)", "type": "absolute"}],
            "suggestions": [{"label": "Do it", "uuid": "s1", "isRecommended": True,
                             "actions": [{"type": "create", "description": "Order Mg"}]}],
            "selectionBehavior": "at-most-one"}
    resp = client.post("/preview/render", json={"status": 200, "body": {"cards": [card]}})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html
    assert "<strong>bold</strong>" in html
    assert "javascript:" not in html.replace("[click](javascript:alert(1))", "")
    assert 'data-indicator="critical"' in html and "Do it" in html and "Order Mg" in html


def test_render_shows_an_operation_outcome(make_app):
    client = make_app(CDS_PREVIEW="true").test_client()
    outcome = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "error", "code": "invalid", "details": {"text": "The request is bad."}}]}
    html = client.post("/preview/render", json={"status": 400, "body": outcome}).get_data(as_text=True)
    assert "HTTP 400" in html and "invalid: The request is bad." in html
    assert client.post("/preview/render", json={"nope": 1}).status_code == 400
