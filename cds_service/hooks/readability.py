"""Card text that reads well in every EHR: summaries for a narrow sidebar, detail that survives as plain text.

CDS Hooks detail is GitHub-flavoured Markdown, but clients differ: Epic shows detail as plain text unless
the card asks otherwise, and Oracle Health wraps cards in a panel about an eighth of the screen wide
(its CDS Hooks page). So detail keeps to Markdown that still reads as plain text (bold, lists, line
breaks, simple pipe tables) and summaries stay one short line without markup or long unbreakable words.
"""
from __future__ import annotations

import re

SUMMARY_LIMIT = 140
LONGEST_WORD = 30  # characters without a space: wider than a narrow sidebar column would overflow it

_DETAIL_RULES = [
    (re.compile(r"<\s*/?\s*[A-Za-z][^>]*>"), "HTML tag"),
    (re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);"), "HTML entity"),
    (re.compile(r"!\["), "image"),
    (re.compile(r"\[[^\]\n]+\]\([^)\n]*\)"), "Markdown link (put URLs in source.url or links)"),
    (re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s", re.M), "Markdown link definition"),
    (re.compile(r"^\s{0,3}#{1,6}\s", re.M), "heading"),
    (re.compile(r"^\s{0,3}(```|~~~)", re.M), "fenced code block"),
    (re.compile(r"\\[\\`*_{}\[\]()#+\-.!|>]"), "backslash escape"),
    (re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$", re.M), "horizontal rule"),
]
_SUMMARY_MARKUP = re.compile(r"[*`<>|#\[\]]|(^|\s)_|_(\s|$)")


def detail_problems(detail: str) -> list[str]:
    """What in a detail would show as stray markup when a client renders it as plain text."""
    return [f"{what}: {match.group(0).strip()[:40]!r}" for pattern, what in _DETAIL_RULES
            for match in [pattern.search(detail or "")] if match]


def summary_problems(summary: str) -> list[str]:
    """What keeps a summary from reading well as one line of a narrow sidebar."""
    out = []
    if len(summary) >= SUMMARY_LIMIT:
        out.append(f"{len(summary)} characters (must be under {SUMMARY_LIMIT})")
    if "\n" in summary or "\r" in summary:
        out.append("line break")
    if _SUMMARY_MARKUP.search(summary):
        out.append("markup characters")
    long_words = [w for w in summary.split() if len(w) > LONGEST_WORD]
    if long_words:
        out.append(f"word longer than {LONGEST_WORD} characters: {long_words[0][:50]!r}")
    return out
