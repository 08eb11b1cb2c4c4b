"""Schema-driven fuzzing of the running service with schemathesis (docs/openapi.yaml).

Every operation of the OpenAPI description gets generated cases, valid ones (positive)
and invalid ones (negative), sent over real HTTP. The checks:

- no response is a 5xx;
- every 4xx body is a FHIR OperationOutcome with at least one issue;
- every 200 from a hook is a valid CDS Hooks response (the project's own response check).

``run()`` is used by the short CI test (tests/test_schemathesis_api.py) and by the long
run here (``python bench/fuzz_api.py --cases 1000``), which starts the service under
gunicorn itself and writes bench/results/schemathesis.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "docs" / "openapi.yaml"


def load_schema():
    import schemathesis

    return schemathesis.openapi.from_dict(yaml.safe_load(SPEC.read_text()))


def _check(label: str, resp) -> str | None:
    """A problem with this response, or None."""
    status = resp.status_code
    if status >= 500:
        return f"{status} from {label}"
    if 400 <= status < 500:
        try:
            body = json.loads(resp.content)
        except ValueError:
            return f"{status} from {label}: body is not JSON"
        if not (isinstance(body, dict) and body.get("resourceType") == "OperationOutcome"
                and isinstance(body.get("issue"), list) and body["issue"]):
            return f"{status} from {label}: body is not an OperationOutcome"
        return None
    if status == 200 and "/cds-services/" in label and "feedback" not in label and label.startswith("POST"):
        from cds_service.hooks.validation import response_problems

        problems = response_problems(json.loads(resp.content))
        if problems:
            return f"200 from {label}: invalid CDS Hooks response: {problems[:3]}"
    return None


def run(base_url: str, cases: int, seed: int = 0, request_timeout: float = 30.0) -> dict:
    """Send at least ``cases`` generated requests; return counts, status histogram and failures."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    schema = load_schema()
    operations = [op.ok() for op in schema.get_all_operations()]
    statuses: dict[str, int] = {}
    per_operation: dict[str, int] = {}
    failures: list[dict] = []
    sent = 0
    started = time.monotonic()
    round_no = 0
    # Each round runs every operation in both modes; rounds repeat (new seed) until enough cases were sent.
    per_round = max(1, cases // (len(operations) * 2))
    while sent < cases:
        round_before = sent
        for op in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    strategy = op.as_strategy(generation_mode=mode)
                except Exception:  # e.g. no negative cases for an operation without inputs
                    continue

                @settings(max_examples=per_round, database=None, deadline=None, derandomize=False,
                          phases=[Phase.generate], suppress_health_check=list(HealthCheck))
                @given(case=strategy)
                def probe(case):
                    nonlocal sent
                    resp = case.call(base_url=base_url, timeout=request_timeout)
                    sent += 1
                    statuses[str(resp.status_code)] = statuses.get(str(resp.status_code), 0) + 1
                    per_operation[op.label] = per_operation.get(op.label, 0) + 1
                    problem = _check(op.label, resp)
                    if problem:
                        failures.append({"problem": problem, "mode": mode.value,
                                         "curl": case.as_curl_command()[:4000]})

                try:
                    probe()
                except Unsatisfiable:
                    pass  # nothing invalid can be generated for an operation without inputs
                except Exception as exc:  # generation problems are reported, not hidden
                    failures.append({"problem": f"generation error on {op.label} ({mode.value}): {exc!r}"[:500]})
        round_no += 1
        if sent == round_before:
            break  # nothing more can be generated
    return {"cases": sent, "rounds": round_no, "seconds": round(time.monotonic() - started, 1),
            "statuses": dict(sorted(statuses.items())), "per_operation": per_operation,
            "server_errors": sum(v for k, v in statuses.items() if k.startswith("5")),
            "failures": failures[:50], "failure_count": len(failures)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--url", help="an already running service (default: start one under gunicorn)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import ServiceProcess, write_result

    if args.url:
        result = run(args.url, args.cases)
    else:
        with ServiceProcess(workers=2) as service:
            result = run(service.base_url, args.cases)
    result["target"] = {"cases": ">= 1000", "server_errors": 0, "non_outcome_4xx": 0}
    result["passed"] = result["cases"] >= 1000 and result["failure_count"] == 0
    write_result("schemathesis", result)
    print(json.dumps({k: v for k, v in result.items() if k != "failures"}, indent=2))
    for failure in result["failures"][:10]:
        print(failure["problem"])
    return 0 if result["failure_count"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
