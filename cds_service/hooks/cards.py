"""Card files (one YAML file per rule, owned by informaticists) and card rendering."""
from __future__ import annotations

import json
import logging
import re
import string
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import yaml

from ..clinical import codes
from ..clinical.rules import Finding, SuggestionSpec
from .topics import topic_code, topic_display

log = logging.getLogger(__name__)

SCHEMA_DIR = Path(__file__).parent / "schemas"
OVERRIDE_SYSTEM = codes.TOPIC_SYSTEM.rsplit("/", 1)[0] + "/override-reason"
SUMMARY_LIMIT = 140  # summaries must be shorter than this


class CardFileError(ValueError):
    pass


class YamlLoader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2 booleans: only true/false are booleans, so `status: off` is the word "off"."""


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
YamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - YamlLoader is a SafeLoader


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


def placeholders_in(template: str) -> set[str]:
    """Names used as {name} in a template (format-string syntax; {{ and }} are literal braces)."""
    names = set()
    for _literal, field, _spec, _conv in string.Formatter().parse(template):
        if field is not None and field != "":
            names.add(field.split(".")[0].split("[")[0])
    return names


@dataclass
class CardFile:
    rule: str
    data: dict
    path: Path

    @property
    def thresholds(self) -> dict[str, float]:
        """The threshold values (already checked against the rule's declared unit and range)."""
        return {name: float(entry["value"]) for name, entry in (self.data.get("thresholds") or {}).items()}

    @property
    def placeholders(self) -> frozenset[str]:
        """The placeholder names the card declares: exactly the values the rule's findings must give."""
        return frozenset(self.data.get("placeholders") or {})

    @property
    def status(self) -> str:
        return str(self.data.get("status") or "active")

    def text_blocks(self) -> Iterable[tuple[str, str]]:
        """(where, template) for every templated string in the file."""
        yield "summary", self.data["summary"]
        yield "detail", self.data["detail"]
        for name, variant in (self.data.get("variants") or {}).items():
            for key in ("summary", "detail"):
                if key in variant:
                    yield f"variants.{name}.{key}", variant[key]
        for kind, text in (self.data.get("suggestions") or {}).items():
            yield f"suggestions.{kind}.label", text["label"]
            yield f"suggestions.{kind}.description", text["description"]


class CardLibrary:
    """All card files of a folder. Loading refuses the folder when the linter finds any problem in it
    (schema, thresholds, placeholders, wording, sources), naming each file and line, so that a card
    file that lint refuses can never be served."""

    def __init__(self, folder: str | Path):
        from ..authoring.lint import lint  # the linter imports this module

        self.folder = Path(folder)
        self.files: dict[str, CardFile] = {}
        if not self.folder.is_dir():
            raise CardFileError(f"card folder {self.folder} does not exist")
        paths, problems = lint([self.folder])
        if problems:
            raise CardFileError("card files refused:\n" + "\n".join(str(p) for p in problems))
        for path in paths:
            data = load_yaml(path.read_text(encoding="utf-8"))
            self.files[data["rule"]] = CardFile(data["rule"], data, path)
        # What every hook call asks of the library, worked out once: a library never changes once loaded (an
        # edited folder is loaded as a new library). Read-only, so that no rule can change another call's values.
        self._thresholds = MappingProxyType({rule: MappingProxyType(f.thresholds) for rule, f in self.files.items()})
        self._silent = frozenset(rule for rule, f in self.files.items() if f.status == "silent")
        self._placeholders = MappingProxyType({rule: f.placeholders for rule, f in self.files.items()
                                               if f.status != "off"})

    def thresholds(self) -> Mapping[str, Mapping[str, float]]:
        return self._thresholds

    def silent(self) -> frozenset[str]:
        """Rules whose card file says ``status: silent``: they run, their findings are recorded, no card is shown."""
        return self._silent

    def placeholders(self) -> Mapping[str, frozenset[str]]:
        """Placeholders of every rule that runs (status active or silent; a rule with status off is absent)."""
        return self._placeholders

    def require(self, rule_ids: Iterable[str]) -> None:
        missing = sorted(set(rule_ids) - set(self.files))
        if missing:
            raise CardFileError(f"no card file for rule(s): {', '.join(missing)} in {self.folder}")


class _Values(dict):
    def __missing__(self, key: str) -> str:
        log.error("card placeholder {%s} has no value", key)
        return "(not available)"


def fill(template: str, values: Mapping[str, Any]) -> str:
    # str.format_map is the C implementation of the same format syntax (string.Formatter is its Python twin)
    return template.format_map(_Values(values))


def _clip_summary(text: str, rule: str) -> str:
    text = " ".join(text.split())
    if len(text) >= SUMMARY_LIMIT:
        log.error("summary of %s is %d characters; clipped", rule, len(text))
        text = text[: SUMMARY_LIMIT - 2].rstrip() + "…"
    return text


SMART_APP_LABEL = "Open the electrolyte trends"


def smart_app_link(card: CardFile, launch_url: str, hook_instance: str | None) -> dict | None:
    """The card file's ``smart_app`` key as a CDS Hooks link of type smart; appContext names the analyte to open
    on and the hookInstance of this call (the app opens on magnesium when an EHR passes no appContext)."""
    spec = card.data.get("smart_app")
    if not spec or not launch_url:
        return None
    context = {"analyte": spec["analyte"]}
    if hook_instance:
        context["hookInstance"] = hook_instance
    return {"label": spec.get("label", SMART_APP_LABEL), "url": launch_url, "type": "smart",
            "appContext": json.dumps(context, separators=(",", ":"))}


def render_card(finding: Finding, card: CardFile, patient_id: str, smart_launch_url: str | None = None,
                hook_instance: str | None = None) -> dict:
    data = card.data
    variant = (data.get("variants") or {}).get(finding.variant or "", {})
    values = dict(finding.values)
    summary = _clip_summary(fill(variant.get("summary", data["summary"]), values), card.rule)
    detail = fill(variant.get("detail", data["detail"]), values).strip()
    indicator = finding.indicator or variant.get("indicator") or data["indicator"]
    topic = {"system": codes.TOPIC_SYSTEM, "code": topic_code(card.rule),
             "display": topic_display(card.rule, data.get("title"))}
    cited = variant.get("source") or data["source"]  # a variant about another drug cites its own source
    source = {"label": cited["label"], "url": cited["url"], "topic": topic}
    if data["source"].get("icon"):
        source["icon"] = data["source"]["icon"]
    out: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": summary,
        "indicator": indicator,
        "source": source,
    }
    if detail:
        out["detail"] = detail
    suggestions = [s for s in (_render_suggestion(spec, card, values, patient_id) for spec in finding.suggestions) if s]
    if suggestions:
        out["suggestions"] = suggestions
        # "any" unless the card file says its suggestions are alternatives: Epic supports only "any".
        out["selectionBehavior"] = data.get("selectionBehavior") or "any"
    if data.get("overrideReasons"):
        out["overrideReasons"] = [
            {"system": OVERRIDE_SYSTEM, "code": r["code"], "display": r["display"]} for r in data["overrideReasons"]
        ]
    if data.get("links"):
        links = []
        for link in data["links"]:
            item = {"label": fill(link["label"], values), "url": link["url"], "type": link.get("type", "absolute")}
            if item["type"] == "smart" and link.get("appContext"):
                item["appContext"] = link["appContext"]
            links.append(item)
        out["links"] = links
    app_link = smart_app_link(card, smart_launch_url or "", hook_instance)
    if app_link is not None:
        out["links"] = [app_link, *out.get("links", [])]
    return out


def _render_suggestion(spec: SuggestionSpec, card: CardFile, values: Mapping[str, Any], patient_id: str) -> dict | None:
    texts = (card.data.get("suggestions") or {}).get(spec.kind)
    if texts is None:
        log.error("card file for %s has no text for suggestion kind %s", card.rule, spec.kind)
        return None
    local = {**values, **spec.params}
    label = fill(texts["label"], local)
    description = fill(texts["description"], local)
    if spec.kind == "order-lab":
        loinc, display = spec.params["loinc"], spec.params["display"]
        resource = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "proposal",
            "category": [{"coding": [{"system": codes.SNOMED, "code": "108252007", "display": "Laboratory procedure"}]}],
            "code": {"coding": [{"system": codes.LOINC, "code": loinc, "display": display}], "text": display},
            "subject": {"reference": f"Patient/{patient_id}"},
        }
        action = {"type": "create", "description": description, "resource": resource}
    elif spec.kind == "remove-draft":
        action = {"type": "delete", "description": description, "resourceId": spec.params["resource_id"]}
    else:
        log.error("unknown suggestion kind %s", spec.kind)
        return None
    out: dict[str, Any] = {"label": label, "uuid": str(uuid.uuid4()), "actions": [action]}
    if spec.recommended:
        out["isRecommended"] = True
    return out
