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
