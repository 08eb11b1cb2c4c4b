"""Docs stay true: the README's settings table matches the code, and the conformance matrix cites real tests."""
from __future__ import annotations

import re
from pathlib import Path

from cds_service.config import SETTINGS
from cds_service.devtools.docs import render

REPO = Path(__file__).resolve().parent.parent


def test_readme_settings_table_is_in_sync_with_config():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert render(readme) == readme, "run: python -m cds_service.devtools.docs"
    for setting in SETTINGS:
        assert f"`{setting.name}`" in readme


def test_readme_opens_with_the_two_commands():
    lines = [line for line in (REPO / "README.md").read_text().splitlines() if line.strip()]
    block = "\n".join(lines[:6])
    assert "./scripts/demo.sh" in block and "./scripts/test.sh" in block


def _test_names() -> set[str]:
    names = set()
    for path in (REPO / "tests").glob("test_*.py"):
        for match in re.finditer(r"^def (test_\w+)", path.read_text(), re.M):
            names.add(f"{path.name}::{match.group(1)}")
    return names


def test_conformance_matrix_cites_existing_tests():
    text = (REPO / "docs" / "conformance.md").read_text(encoding="utf-8")
    cited = set(re.findall(r"`(test_\w+\.py::test_\w+)`", text))
    assert cited, "the matrix cites no tests"
    missing = sorted(cited - _test_names())
    assert not missing, f"conformance matrix cites tests that do not exist: {missing}"


def _table_rules(path: Path) -> list[str]:
    """Rule ids in the first column of the doc's tables (rows starting with | `rule-id` |)."""
    return re.findall(r"^\| `([a-z0-9]+(?:-[a-z0-9]+)*)` \|", path.read_text(encoding="utf-8"), re.M)


def test_rule_tables_in_the_docs_name_registered_rules_of_their_hooks():
    """The docs describe rules in prose; the registry is the list (`cds-service cards list` prints it). A row
    for a rule that was renamed or removed, or moved to another hook, fails here."""
    from cds_service.clinical.rules import ORDER_HOOKS, PATIENT_VIEW, load_all

    registry = load_all()
    for doc, hooks in (("clinical-rules.md", {PATIENT_VIEW}), ("order-rules.md", set(ORDER_HOOKS))):
        named = _table_rules(REPO / "docs" / doc)
        assert named, doc
        for rule_id in named:
            assert rule_id in registry, f"docs/{doc} describes {rule_id}, which is not a registered rule"
            assert hooks <= registry[rule_id].hooks, f"docs/{doc}: {rule_id} does not run on {sorted(hooks)}"


def test_cards_list_prints_every_rule_in_run_order_with_its_status_and_thresholds(capsys):
    from cds_service.cli import main
    from cds_service.clinical.rules import load_all, rules_for

    assert main(["cards", "list"]) == 0
    out = capsys.readouterr().out
    for rule_id in load_all():
        assert f"`{rule_id}`" in out
    patient_view = out.split("## order-select")[0]
    positions = [patient_view.index(f"`{r.id}`") for r in rules_for("patient-view")]
    assert positions == sorted(positions)
    assert ("| `hypomagnesemia-severe` | active | critical | mg_severe_low = 0.4 mmol/L (0.2–0.6), acute_window = 72 h "
            "(6–168), crrt_window = 12 h (2–48), chronic_window = 45 d (7–90) |") in out
