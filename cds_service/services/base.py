"""What a CDS service is: its discovery entry beside the data it needs and the rules it runs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..hooks.prefetch import PrefetchKey


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, PrefetchKey]
    usage_requirements: str = ""
    # rule ids to run; None = every registered rule for the hook
    rules: frozenset[str] | None = None
    extension: Mapping[str, object] = field(default_factory=dict)

    def discovery(self) -> dict:
        entry = {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": {name: key.template for name, key in self.prefetch.items()},
        }
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        if self.extension:
            entry["extension"] = dict(self.extension)
        return entry
