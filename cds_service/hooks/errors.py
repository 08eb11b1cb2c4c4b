"""Protocol errors, answered as FHIR OperationOutcome bodies."""
from __future__ import annotations

from typing import Iterable


class HookError(Exception):
    """An error to answer with ``status`` and an OperationOutcome naming the problem."""

    def __init__(self, status: int, code: str, message: str, details: Iterable[str] = (), headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code  # FHIR issue-type code: invalid, not-found, not-supported, security, too-costly, ...
        self.message = message
        self.details = list(details)
        self.headers = headers or {}

    def outcome(self) -> dict:
        return operation_outcome(self.code, self.message, self.details)


def operation_outcome(code: str, message: str, details: Iterable[str] = (), severity: str = "error") -> dict:
    issues = [{"severity": severity, "code": code, "diagnostics": message}]
    for detail in list(details)[:20]:
        issues.append({"severity": severity, "code": code, "diagnostics": str(detail)[:500]})
    return {"resourceType": "OperationOutcome", "issue": issues}
