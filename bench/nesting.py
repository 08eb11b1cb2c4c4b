"""Benchmark: CPU time to refuse (or accept) 5 MB of brackets in a request body.

Calls ``cds_service.hooks.strict_json.parse`` (what the web edge calls on every body) with
``CDS_MAX_JSON_DEPTH=64`` on bodies of 5 MB (the default ``CDS_MAX_BODY_BYTES``) built to be
expensive for a depth check: one deep nest, a nest left open, many nests of depth 64 side by
side (accepted by the depth check, then parsed), nests of depth 65 side by side, brackets hidden
inside strings, and a wide flat array. Process CPU time (``time.process_time``), best of 5 runs.
Target: every deep body refused in under 50 ms of CPU. Writes bench/results/nesting.json.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

SIZE = 5 * 1024 * 1024
LIMIT = 64
TARGET_MS = 50.0


def bodies() -> dict[str, tuple[bytes, bool]]:
    """name -> (body of about SIZE bytes, whether it must be refused as too deep)."""
    half = SIZE // 2
    d64 = b"[" * 64 + b"]" * 64
    d65 = b"[" * 65 + b"]" * 65
    return {
        "one nest 2.6 M deep": (b"[" * half + b"]" * half, True),
        "5 MB of open brackets": (b"[" * SIZE, True),
        "objects 0.5 M deep": (b'{"a":' * (SIZE // 6) + b"1" + b"}" * (SIZE // 6), True),
        "depth-65 nests side by side": (b"[" + b",".join([d65] * (SIZE // (len(d65) + 1))) + b"]", True),
        "depth-64 nests side by side (limit 64)": (b"[" + b",".join([d64[:-2] + b"1" + d64[-2:]]
                                                                      * (SIZE // (len(d64) + 2)))[1:-1] + b"]",
                                                   False),
        "brackets inside strings": (b'["' + b"[" * (SIZE - 4) + b'"]', False),
        "flat array of empty arrays": (b"[" + b",".join([b"[]"] * (SIZE // 3)) + b"]", False),
    }


def cpu_ms(fn) -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        fn()
        best = min(best, (time.process_time() - t0) * 1000.0)
    return best


def main() -> int:
    from cds_service.hooks.errors import HookError
    from cds_service.hooks.strict_json import deeper_than, parse

    runs = []
    for name, (raw, deep) in bodies().items():
        assert deeper_than(raw, LIMIT) == deep, name

        def once(raw=raw):
            try:
                parse(raw, LIMIT)
            except HookError:
                pass

        check_ms = cpu_ms(lambda raw=raw: deeper_than(raw, LIMIT))
        total_ms = cpu_ms(once)
        runs.append({"body": name, "bytes": len(raw), "refused_as_too_deep": deep,
                     "depth_check_cpu_ms": round(check_ms, 1), "parse_cpu_ms": round(total_ms, 1),
                     "passed": (total_ms <= TARGET_MS) if deep else True})
        print(f"{name:42s} {len(raw) / 1e6:5.2f} MB  depth check {check_ms:6.1f} ms  "
              f"{'refused' if deep else 'parsed '} {total_ms:6.1f} ms CPU")
    refused = [r["parse_cpu_ms"] for r in runs if r["refused_as_too_deep"]]
    result = {"limit": LIMIT, "target_refusal_cpu_ms": TARGET_MS, "max_refusal_cpu_ms": max(refused),
              "runs": runs, "passed": all(r["passed"] for r in runs),
              "method": "strict_json.parse on 5 MB bodies, CDS_MAX_JSON_DEPTH=64, process CPU time, best of 5"}
    write_result("nesting", result)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
