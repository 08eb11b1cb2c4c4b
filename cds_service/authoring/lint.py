"""Card-file linter: catches in review what would otherwise only show on a clinician's screen.

Every problem is reported as ``Problem(path, line, message)`` with the 1-based line of
the YAML node it concerns (PyYAML's composer keeps node marks, so the line numbers
point at the offending key or, inside a ``|`` block, at the offending line).

Checks, per file:
- YAML syntax, duplicate keys, and the card-file JSON Schema;
- ``rule:`` (the card's ``source.topic.code``) names a registered rule, and matches the file name;
- source label and url present, url absolute http(s);
- indicators (top level and variants) are CDS Hooks indicators;
- links: absolute http(s) URL, type absolute|smart, appContext only on smart links;
- ``thresholds:``: exactly the thresholds the rule declares (``@rule(thresholds=...)``), each a
  number in the declared unit and inside the declared plausible range;
- templates parse; every placeholder used is declared under ``placeholders:`` (or, in suggestion
  text, is a parameter of that suggestion kind). The ``placeholders:`` block is the contract with
  the rule: at run time a finding must give exactly those names;
- every summary (and variant summary), filled with the longest realistic example values,
  stays under the 140-character limit of CDS Hooks 2.0;
- wording: no internal language (INTERNAL_WORDING) in the summaries, details, titles and labels;
- citations: source and link URLs are https, never a search-results page, and each is a guideline
  (GUIDELINE_HOSTS), a DailyMed label by setid, or a paper (DOI, PubMed id, PMC id).
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

import jsonschema
import yaml

from ..hooks.cards import SUMMARY_LIMIT, YamlLoader, load_schema, load_yaml

INDICATORS = ("info", "warning", "critical")
LINK_TYPES = ("absolute", "smart")

# Placeholders a suggestion's label/description may use besides the rule's own values: the
# parameters of its SuggestionSpec (hooks/cards.py renders them with {**values, **spec.params}).
SUGGESTION_PARAMS: dict[str, frozenset[str]] = {
    "order-lab": frozenset({"analyte", "loinc", "display"}),
    "remove-draft": frozenset({"resource_id", "medication"}),
}


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


# ------------------------------------------------------------------------------------------ YAML with marks

class _Located:
    """A parsed YAML document plus the line of every node, keyed by its path (tuple of keys/indexes)."""

    def __init__(self, root: yaml.Node):
        self.lines: dict[tuple, int] = {}
        self.nodes: dict[tuple, yaml.Node] = {}
        self.duplicates: list[tuple[tuple, int]] = []
        self._walk(root, ())

    def _walk(self, node: yaml.Node, path: tuple) -> None:
        self.nodes[path] = node
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, value_node in node.value:
                key = key_node.value
                if key in seen:
                    self.duplicates.append((path + (key,), key_node.start_mark.line + 1))
                seen.add(key)
                # the key's own line is more useful than the value's (a block scalar starts on the next line)
                self.lines[path + (key,)] = key_node.start_mark.line + 1
                self._walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, path + (i,))

    def line(self, path: Iterable) -> int:
        """Line of the deepest existing node on ``path`` (a missing key reports its parent)."""
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def line_in_text(self, path: tuple, offset: int) -> int:
        """Line of character ``offset`` of the string at ``path`` (exact for `|` blocks and plain one-liners)."""
        node = self.nodes.get(path)
        if not isinstance(node, yaml.ScalarNode):
            return self.line(path)
        if node.style == "|":
            # content starts on the line after the indicator
            return node.start_mark.line + 2 + node.value[:offset].count("\n")
        return node.start_mark.line + 1


# ------------------------------------------------------------------------------------------ helpers

def _template_fields(template: str) -> Iterator[tuple[str, int]]:
    """(placeholder name, character offset) for every {field}; raises ValueError on a broken template."""
    position = 0
    for _literal, field, _spec, _conv in string.Formatter().parse(template):
        if field is not None:
            name = field.split(".")[0].split("[")[0]
            if name == "" or name.isdigit():
                raise ValueError("positional placeholder {} is not allowed; name it")
            found = template.find("{" + field, position)
            position = found + 1 if found >= 0 else position
            yield name, max(found, 0)


def _fill(template: str, values: dict[str, str]) -> str:
    return string.Formatter().vformat(template, (), values)


def _url_problem(url: Any) -> str | None:
    if not isinstance(url, str) or not url.strip():
        return "is empty"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"must be an absolute http(s) URL, got {url!r}"
    if not parts.netloc or " " in url:
        return f"is not a well-formed URL: {url!r}"
    return None


# ------------------------------------------------------------------------------------------ wording and sources

# Words of the team's own documents, meaningless (or misleading) to a clinician reading a card.
INTERNAL_WORDING: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bseeds?\b", re.I), "'seed'"),
    (re.compile(r"\bproject(?:'s)?\b", re.I), "'project'"),
    (re.compile(r"\breference files?\b", re.I), "'reference file'"),
    (re.compile(r"\bverified\b[^.;:\n]{0,40}?\breference\b", re.I), "'verified reference'"),
    (re.compile(r"\bsource\s+(?:\w+\s+)?guidance\b", re.I), "'source guidance'"),
    (re.compile(r"\bcramp guidance\b", re.I), "'cramp guidance' (an unpublished document)"),
)
# Where a source or link may point: a guideline body, a drug label on DailyMed by setid, or a paper.
GUIDELINE_HOSTS = frozenset({
    "kdigo.org", "www.kidney.org", "kidneyfoundation.cachefly.net", "ukkidney.org", "www.nice.org.uk",
    "www.ismp.org", "www.fda.gov", "cds-hooks.hl7.org",
})
_DAILYMED_SETID = re.compile(r"(?:^|&)setid=[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:&|$)")
_PAPER = (
    ("doi.org", re.compile(r"^/10\.\d{4,9}/\S+$")),
    ("pubmed.ncbi.nlm.nih.gov", re.compile(r"^/\d+/?$")),
    ("pmc.ncbi.nlm.nih.gov", re.compile(r"^/articles/PMC\d+/?$")),
    ("www.ncbi.nlm.nih.gov", re.compile(r"^/pmc/articles/PMC\d+/?$")),
)
_SEARCH = re.compile(r"search\.cfm|[?&](?:query|term|q|search)=|/search(?:/|$)", re.I)


def citation_problem(url: str) -> str | None:
    """Why ``url`` cannot be cited on a card, or None."""
    parts = urlsplit(url)
    if _SEARCH.search(parts.path + ("?" + parts.query if parts.query else "")):
        return (f"is a search-results page ({url}); cite the document itself: a DailyMed label by setid, "
                "a DOI, or a PubMed id")
    if parts.scheme == "http":
        return f"uses http://; use https:// ({url.replace('http://', 'https://', 1)})"
    host = parts.netloc.lower()
    if host in GUIDELINE_HOSTS:
        return None
    if host == "dailymed.nlm.nih.gov":
        return None if _DAILYMED_SETID.search(parts.query) else (
            f"is a DailyMed page without a setid ({url}); use "
            "https://dailymed.nlm.nih.gov/dailymed/drugInfo.cfm?setid=<setid>")
    for paper_host, path in _PAPER:
        if host == paper_host:
            return None if path.match(parts.path) else f"is not a paper's page ({url})"
    return (f"is neither a guideline ({', '.join(sorted(GUIDELINE_HOSTS))}), a DailyMed label by setid, nor a "
            f"paper (https://doi.org/..., https://pubmed.ncbi.nlm.nih.gov/<PMID>/, PMC): {url}")


def _registry():
    from ..clinical.rules import load_all
    return load_all()


# ------------------------------------------------------------------------------------------ the linter

class _FileLinter:
    def __init__(self, path: Path, display: str, registry):
        self.path = path
        self.display = display
        self.registry = registry
        self.problems: list[Problem] = []

    def error(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.display, line, message))

    rule_line = 1

    def run(self) -> tuple[str | None, list[Problem]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.error(1, f"cannot read the file: {exc}")
            return None, self.problems
        try:
            root = yaml.compose(text, Loader=YamlLoader)
            data = load_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            line = mark.line + 1 if mark else 1
            self.error(line, f"not valid YAML: {getattr(exc, 'problem', None) or exc}")
            return None, self.problems
        if root is None or not isinstance(data, dict):
            self.error(1, "a card file must be a YAML mapping (rule:, indicator:, summary:, ...)")
            return None, self.problems
        loc = _Located(root)
        for path, line in loc.duplicates:
            self.error(line, f"duplicate key '{'.'.join(map(str, path))}' (the later one silently wins)")
        self._schema(data, loc)
        rule_id = data.get("rule") if isinstance(data.get("rule"), str) else None
        rule = self._rule(rule_id, loc)
        self._source(data, loc)
        self._indicators(data, loc)
        self._links(data, loc)
        self._thresholds(data, loc, rule)
        self._templates(data, loc)
        self._wording(data, loc)
        return rule_id, self.problems

    # -- schema: messages for what the specific checks below do not already say
    def _schema(self, data: dict, loc: _Located) -> None:
        validator = jsonschema.Draft202012Validator(load_schema("card-file.schema.json"))
        for err in sorted(validator.iter_errors(data), key=lambda e: (list(e.absolute_path), e.message)):
            path = tuple(err.absolute_path)
            if self._covered_elsewhere(err, path):
                continue
            where = ".".join(str(p) for p in path) or "card file"
            message = err.message if len(err.message) < 160 else err.message[:157] + "..."
            self.error(loc.line(path), f"schema: {where}: {message}")

    @staticmethod
    def _covered_elsewhere(err: jsonschema.ValidationError, path: tuple) -> bool:
        """Schema errors that a dedicated check reports with a clearer message."""
        if path[:1] == ("source",) or (err.validator == "required" and "'source'" in err.message):
            return True
        if path and path[-1] == "indicator":
            return True
        if path[:1] == ("thresholds",) and len(path) >= 2:
            return True
        if path[:1] == ("links",) and (len(path) >= 3 and path[2] in ("url", "type", "appContext")):
            return True
        return False

    def _rule(self, rule_id: str | None, loc: _Located):
        if rule_id is None:
            return None
        line = self.rule_line = loc.line(("rule",))
        rule = self.registry.get(rule_id)
        if rule is None:
            known = ", ".join(sorted(self.registry)) or "none"
            self.error(line, f"rule '{rule_id}' is not a registered rule, so no card would ever use this file "
                             f"(topic code must match a rule; known: {known})")
        if self.path.stem != rule_id:
            self.error(line, f"file name '{self.path.name}' does not match rule '{rule_id}' "
                             f"(expected {rule_id}.yaml)")
        return rule

    def _source(self, data: dict, loc: _Located) -> None:
        source = data.get("source")
        if source is None:
            self.error(1, "source is missing: every card needs source.label and source.url (the reference it rests on)")
            return
        if not isinstance(source, dict):
            self.error(loc.line(("source",)), "source must be a mapping with label and url")
            return
        label = source.get("label")
        if not isinstance(label, str) or not label.strip():
            self.error(loc.line(("source", "label")), "source.label is missing or empty")
        if "url" not in source:
            self.error(loc.line(("source",)), "source.url is missing: cite the reference the card rests on")
        else:
            problem = _url_problem(source.get("url")) or citation_problem(source["url"])
            if problem:
                self.error(loc.line(("source", "url")), f"source.url {problem}")
        if "icon" in source:
            problem = _url_problem(source.get("icon"))
            if problem:
                self.error(loc.line(("source", "icon")), f"source.icon {problem}")
        for extra in sorted(set(source) - {"label", "url", "icon"}):
            self.error(loc.line(("source", extra)), f"source.{extra} is not a card-file field (label, url, icon)")
        variants = data.get("variants")
        for name, variant in variants.items() if isinstance(variants, dict) else []:
            own = variant.get("source") if isinstance(variant, dict) else None
            if isinstance(own, dict) and isinstance(own.get("url"), str):
                problem = _url_problem(own["url"]) or citation_problem(own["url"])
                if problem:
                    self.error(loc.line(("variants", name, "source", "url")), f"variants.{name}.source.url {problem}")

    def _indicators(self, data: dict, loc: _Located) -> None:
        checks: list[tuple[tuple[str, ...], Any, bool]] = [(("indicator",), data.get("indicator"), "indicator" in data)]
        for name, variant in (data.get("variants") or {}).items() if isinstance(data.get("variants"), dict) else []:
            if isinstance(variant, dict) and "indicator" in variant:
                checks.append((("variants", name, "indicator"), variant["indicator"], True))
        for path, value, present in checks:
            if not present:
                continue  # a missing top-level indicator is a schema error
            if value not in INDICATORS:
                self.error(loc.line(path), f"{'.'.join(map(str, path))} '{value}' is not valid "
                                           f"(use one of: {', '.join(INDICATORS)})")

    def _links(self, data: dict, loc: _Located) -> None:
        links = data.get("links")
        if not isinstance(links, list):
            return
        for i, link in enumerate(links):
            if not isinstance(link, dict):
                continue
            where = f"links[{i}]"
            if "url" not in link:
                self.error(loc.line(("links", i)), f"{where}.url is missing")
            else:
                problem = _url_problem(link.get("url")) or citation_problem(link["url"])
                if problem:
                    self.error(loc.line(("links", i, "url")), f"{where}.url {problem}")
            kind = link.get("type", "absolute")
            if kind not in LINK_TYPES:
                self.error(loc.line(("links", i, "type")), f"{where}.type '{kind}' is not valid (absolute or smart)")
            if "appContext" in link and kind != "smart":
                self.error(loc.line(("links", i, "appContext")),
                           f"{where}.appContext is only allowed on smart links (type: smart)")
            if "appContext" in link and not isinstance(link["appContext"], str):
                self.error(loc.line(("links", i, "appContext")), f"{where}.appContext must be a string")

    def _wording(self, data: dict, loc: _Located) -> None:
        texts: list[tuple[tuple, str]] = [(path, template) for path, template, _extra in self._blocks(data)]
        for key in ("title",):
            if isinstance(data.get(key), str):
                texts.append(((key,), data[key]))
        if isinstance(data.get("source"), dict) and isinstance(data["source"].get("label"), str):
            texts.append((("source", "label"), data["source"]["label"]))
        for i, reason in enumerate(data.get("overrideReasons") or [] if isinstance(data.get("overrideReasons"), list) else []):
            if isinstance(reason, dict) and isinstance(reason.get("display"), str):
                texts.append((("overrideReasons", i, "display"), reason["display"]))
        for path, text in texts:
            where = ".".join(str(p) for p in path)
            reported: list[tuple[int, int]] = []
            for pattern, name in INTERNAL_WORDING:
                for match in pattern.finditer(text):
                    if any(start < match.end() and match.start() < end for start, end in reported):
                        continue  # one message per phrase ("source cramp guidance")
                    reported.append(match.span())
                    self.error(loc.line_in_text(path, match.start()),
                               f"{where}: internal wording {name} (\"{match.group(0)}\"): a clinician cannot look "
                               "it up; name the guideline, label or paper itself")

    # -- templates, placeholders and summary length
    def _blocks(self, data: dict) -> Iterator[tuple[tuple, str, frozenset[str]]]:
        """(path, template, extra allowed names) for every templated string."""
        for key in ("summary", "detail"):
            if isinstance(data.get(key), str):
                yield (key,), data[key], frozenset()
        variants = data.get("variants")
        if isinstance(variants, dict):
            for name, variant in variants.items():
                for key in ("summary", "detail"):
                    if isinstance(variant, dict) and isinstance(variant.get(key), str):
                        yield ("variants", name, key), variant[key], frozenset()
        suggestions = data.get("suggestions")
        if isinstance(suggestions, dict):
            for kind, texts in suggestions.items():
                for key in ("label", "description"):
                    if isinstance(texts, dict) and isinstance(texts.get(key), str):
                        yield ("suggestions", kind, key), texts[key], SUGGESTION_PARAMS.get(kind, frozenset())
        links = data.get("links")
        if isinstance(links, list):
            for i, link in enumerate(links):
                if isinstance(link, dict) and isinstance(link.get("label"), str):
                    yield ("links", i, "label"), link["label"], frozenset()

    def _thresholds(self, data: dict, loc: _Located, rule) -> None:
        given = data.get("thresholds")
        if rule is None or (given is not None and not isinstance(given, dict)):
            return  # an unknown rule is reported already; a non-mapping is a schema error
        given = given or {}
        declared = rule.thresholds
        for name, spec in declared.items():
            if name not in given:
                self.error(loc.line(("thresholds",)), f"thresholds.{name} is missing: rule '{rule.id}' reads it "
                                                      f"({{value: ..., unit: {spec.unit}}}, plausible range "
                                                      f"{spec.low:g}–{spec.high:g})")
        for name, entry in given.items():
            line = loc.line(("thresholds", name))
            spec = declared.get(name)
            if spec is None:
                known = ", ".join(sorted(declared)) or "none"
                self.error(line, f"thresholds.{name}: rule '{rule.id}' reads no threshold '{name}' (it reads: {known})")
                continue
            if not isinstance(entry, dict) or "value" not in entry or "unit" not in entry:
                self.error(line, f"thresholds.{name} must be {{value: <number>, unit: {spec.unit}}}, got {entry!r}")
                continue
            extra = sorted(set(entry) - {"value", "unit"})
            if extra:
                self.error(line, f"thresholds.{name}: unknown key(s) {', '.join(extra)} (only value and unit)")
            problem = spec.problem(entry["value"], entry["unit"])
            if problem:
                self.error(line, f"thresholds.{name}: {problem}")

    def _templates(self, data: dict, loc: _Located) -> None:
        examples_raw = data.get("placeholders")
        examples = {k: v for k, v in examples_raw.items() if isinstance(v, str)} if isinstance(examples_raw, dict) else {}
        for path, template, extra in self._blocks(data):
            where = ".".join(str(p) for p in path)
            try:
                fields = list(_template_fields(template))
            except ValueError as exc:
                self.error(loc.line(path), f"{where}: broken template ({exc}); write literal braces as {{{{ and }}}}")
                continue
            reported: set[str] = set()
            for name, offset in fields:
                if name in reported:
                    continue
                reported.add(name)
                line = loc.line_in_text(path, max(offset, 0))
                if name not in examples and name not in extra:
                    allowed = sorted(set(examples) | extra)
                    self.error(line, f"{where}: placeholder {{{name}}} is not declared under placeholders: "
                                     f"(declared: {', '.join(allowed) or 'none'}); declare it with its longest "
                                     "realistic value, and have the rule fill it")
            if path[-1] == "summary":
                self._summary_length(path, where, template, fields, examples, loc)

    def _summary_length(self, path: tuple, where: str, template: str, fields, examples: dict, loc: _Located) -> None:
        if any(name not in examples for name, _ in fields):
            return  # already reported; the length cannot be known
        try:
            filled = " ".join(_fill(template, examples).split())
        except (KeyError, ValueError, IndexError) as exc:
            self.error(loc.line(path), f"{where}: cannot be filled with the example values ({exc})")
            return
        if len(filled) >= SUMMARY_LIMIT:
            self.error(loc.line(path), f"{where} is {len(filled)} characters with the longest example values; "
                                       f"it must stay under {SUMMARY_LIMIT}: \"{filled}\"")


def card_files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(list(p.glob("*.yaml")) + list(p.glob("*.yml"))))
        else:
            out.append(p)
    return out


def lint(paths: Iterable[str | Path], registry=None) -> tuple[list[Path], list[Problem]]:
    """Lint every card file under ``paths`` (files or folders). Returns (files checked, problems)."""
    registry = _registry() if registry is None else registry
    files = card_files(paths)
    problems: list[Problem] = []
    seen_rules: dict[str, str] = {}
    for path in files:
        if not path.exists():
            problems.append(Problem(str(path), 1, "no such file"))
            continue
        linter = _FileLinter(path, str(path), registry)
        rule_id, found = linter.run()
        problems.extend(found)
        if rule_id is not None:
            if rule_id in seen_rules:
                problems.append(Problem(str(path), linter.rule_line, f"rule '{rule_id}' already has a card file: {seen_rules[rule_id]}"))
            else:
                seen_rules[rule_id] = str(path)
    return files, sorted(problems)
