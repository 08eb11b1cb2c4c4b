"""The README as a newcomer reads it: prerequisites before the commands, every file it names exists,
and what it claims of the cards is what the card files do."""
from __future__ import annotations

import re

from support.helpers import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
GENERATED = (".venv", "var/", "test-artifacts/")  # made by the scripts on first run, not in the repository


def test_prerequisites_come_before_the_two_commands():
    before = README.split("./scripts/demo.sh", 1)[0]
    for needed in ("Python 3.11", "PyPI", "chromium", "postgresql", "nginx", ".ci/run"):
        assert needed in before, f"{needed!r} is not stated before the commands"


def _mentioned_paths() -> set[str]:
    paths = set()
    for target in re.findall(r"\]\(([^)\s]+)\)", README):  # Markdown links
        if not re.match(r"[a-z]+://", target) and not target.startswith("#"):
            paths.add(target.split("#", 1)[0])
    for token in re.findall(r"`([^`\s]+)`", README):  # code spans that name a repository file or folder
        token = token.removeprefix("./")
        if any(c in token for c in "<>*{}[]=:@") or token.startswith(("-", "/", *GENERATED)):
            continue
        if re.fullmatch(r"[\w.-]+(/[\w.-]+)*/?", token) and ("/" in token or re.search(
                r"\.(md|py|sh|yaml|yml|toml|lock|json|example)$", token)):
            paths.add(token)
    return paths


def test_every_file_and_document_the_readme_names_exists():
    paths = _mentioned_paths()
    assert {"docs/deployment.md", "compose.yaml", "requirements.lock", ".env.example"} <= paths, sorted(paths)
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing, f"the README names files that are not in the repository: {missing}"


def test_readme_does_not_promise_suggestions_on_every_card():
    import yaml

    cards = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((REPO / "cards").glob("*.yaml"))]
    with_suggestions = sum(1 for c in cards if c.get("suggestions"))
    assert 0 < with_suggestions < len(cards)
    assert not re.search(r"every card[^.]*offers suggestions", README, re.I | re.S)
    assert "most cards are advice only" in README
