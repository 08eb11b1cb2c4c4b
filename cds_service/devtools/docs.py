"""Keep the README's configuration table in step with config.SETTINGS (`python -m cds_service.devtools.docs`)."""
from __future__ import annotations

import sys
from pathlib import Path

from ..config import REPO_ROOT, SETTINGS

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"


def settings_table() -> str:
    rows = ["| Variable | Default | What it does |", "|---|---|---|"]
    for s in SETTINGS:
        default = str(s.default)
        if s.name == "CDS_CARDS_DIR":
            default = "`cards/` in the checkout"
        elif default == "":
            default = "(empty)"
        else:
            default = f"`{default}`"
        rows.append(f"| `{s.name}` | {default} | {s.doc} |")
    return "\n".join(rows)


def render(readme: str) -> str:
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{settings_table()}\n{END}{tail}"


def main() -> int:
    path = Path(REPO_ROOT) / "README.md"
    text = path.read_text(encoding="utf-8")
    new = render(text)
    if "--check" in sys.argv:
        return 0 if new == text else 1
    path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
