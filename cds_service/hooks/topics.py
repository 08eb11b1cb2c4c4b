"""``source.topic`` of every card: a code every EHR accepts, derived from the rule id and never changed.

Epic keeps a clinician's override of a card against ``source.topic.code`` and accepts only letters and
digits there, at most 100 characters (Epic's CDS Hooks documentation, "Card Attributes"). The code is
therefore the rule id with its hyphens dropped and each part capitalised (``electrolyte-review`` ->
``ElectrolyteReview``), the same in every EHR. ``topic-codes.json`` beside this module lists every code
ever released; a test checks that the derivation still gives each of them, so a released code can never
change (a rule id that is retired keeps its entry, and new rule ids are added to the table).
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable

TOPIC_CODE = re.compile(r"^[A-Za-z0-9]{1,100}$")
RELEASED_FILE = Path(__file__).with_name("topic-codes.json")


def topic_code(rule_id: str) -> str:
    """The topic code of a rule id; ValueError when the id cannot give a code Epic accepts."""
    code = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", rule_id) if part)
    if not TOPIC_CODE.match(code):
        raise ValueError(f"rule id {rule_id!r} gives {code!r}, not 1-100 letters and digits")
    return code


def topic_display(rule_id: str, title: str | None = None) -> str:
    """The rule named in words: the card file's title, else the rule id spelt out."""
    if title and title.strip():
        return " ".join(title.split())
    words = " ".join(part for part in re.split(r"[^A-Za-z0-9]+", rule_id) if part)
    return words[:1].upper() + words[1:]


@lru_cache(maxsize=1)
def released() -> dict[str, str]:
    """rule id -> topic code, for every code ever released."""
    return dict(json.loads(RELEASED_FILE.read_text(encoding="utf-8"))["codes"])


def rule_for_code(code: str, rule_ids: Iterable[str] = ()) -> str | None:
    """The rule id behind a topic code (released table first, then the given ids); None when unknown."""
    for rule_id, released_code in released().items():
        if released_code == code:
            return rule_id
    return next((r for r in rule_ids if topic_code(r) == code), None)
