"""Print every benchmark result beside its target, from bench/results/*.json (a table for docs/performance.md)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rows() -> list[tuple[str, str, str, str]]:
    out = []
    lat = load("latency")
    if lat:
        for run in lat["runs"]:
            out.append((f"1. in-process latency, {run['observations']:,} observations",
                        f"p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms",
                        f"p99 <= {run['target_p99_ms']:g} ms", "met" if run["passed"] else "MISSED"))
        ctl = lat.get("machine_control")
        if ctl:
            out.append(("1c. control: fixed Python loop of the same median, timed the same way",
                        f"p50 {ctl['p50_ms']:.2f} ms, p99 {ctl['p99_ms']:.2f} ms ({ctl['p99_over_p50']:.2f}x)",
                        "(the machine's own tail)", ""))
    thr = load("throughput")
    if thr:
        out.append(("2. HTTP throughput vs bare Flask (gunicorn, 2 workers)",
                    f"{thr['service_rps']:.0f} vs {thr['bare_rps']:.0f} req/s = {thr['ratio']:.3f}x",
                    ">= 0.6x", "met" if thr["ratio"] >= 0.6 else "MISSED"))
        hc = thr.get("healthchain") or {}
        if hc.get("rps"):
            out.append((f"2b. HTTP throughput vs {hc['package']} (same check, same request, 2 workers)",
                        f"{thr['service_rps']:.0f} vs {hc['rps']:.0f} req/s = {hc['service_over_healthchain']:.1f}x",
                        ">= 10x", "met" if hc["service_over_healthchain"] >= 10 else "MISSED"))
        elif "healthchain" in thr:
            out.append((f"2b. HTTP throughput vs {hc.get('package')}", "not measured: could not be installed",
                        ">= 10x", "MISSED"))
        one, eight = thr.get("one_connection"), thr.get("eight_connections")
        if one and eight:
            out.append(("2c. HTTP latency, 1 connection / 8 connections",
                        f"p50 {one['p50_ms']:.2f} ms, p99 {one['p99_ms']:.2f} ms ({one['p99_over_p50']:.2f}x) / "
                        f"p50 {eight['p50_ms']:.1f} ms, p99 {eight['p99_ms']:.1f} ms",
                        "p99 <= 2x p50 at 1 connection", "met" if one["p99_over_p50"] <= 2 else "MISSED"))
        bare_one = thr.get("bare_one_connection")
        if bare_one:
            out.append(("2d. control: the bare endpoint at 1 connection, same rounds",
                        f"p50 {bare_one['p50_ms']:.2f} ms, p99 {bare_one['p99_ms']:.2f} ms "
                        f"({bare_one['p99_over_p50']:.2f}x)", "(the machine's and HTTP stack's own tail)", ""))
    fm = load("fetch_mode")
    if fm:
        out.append(("3. fetch mode, stub +50 ms per request",
                    f"hook {fm['hook_wall_median_ms']:.1f} ms / slowest query {fm['slowest_single_ms']:.1f} ms "
                    f"= {fm['ratio']:.2f}x (fetch stage {fm['fetch_stage_median_ms']:.1f} ms)",
                    f"<= {fm.get('target_ratio', 1.1):g}x", "met" if fm["passed"] else "MISSED"))
    hung = load("hung")
    if hung:
        out.append(("4. hung FHIR server, 100 calls", f"max {hung['max_ms']:.0f} ms, {hung['over_limit']} over",
                    f"every call <= {hung['limit_ms']} ms", "met" if hung["passed"] else "MISSED"))
    soak = load("soak")
    if soak:
        peak = max(soak["peak_rss_mb"].values())
        out.append(("5a. peak RSS per worker, mixed load (soak)", f"{peak:.0f} MB", "<= 120 MB",
                    "met" if soak["peak_rss_ok"] else "MISSED"))
    rss = load("rss")
    if rss:
        out.append(("5b. peak RSS per worker, largest template-conforming data (prefetch and fetch)",
                    f"{rss['templated_peak_mb']:.0f} MB", "<= 120 MB",
                    "met" if rss["phases"][0]["passed"] else "MISSED"))
        caps = rss.get("caps") or {"CDS_MAX_BODY_BYTES": 5 * 1024 * 1024, "CDS_FHIR_MAX_ENTRIES": 5000}
        out.append((f"5c. peak RSS per worker at the caps: {caps['CDS_MAX_BODY_BYTES'] / 1048576:g} MiB bodies, "
                    f"{caps['CDS_FHIR_MAX_ENTRIES']:,}-entry Bundles, 4 at a time",
                    f"{rss['worst_case_peak_mb']:.0f} MB", "<= 120 MB",
                    "met" if rss["phases"][1]["passed"] else "MISSED"))
    if soak:
        growth = ", ".join(f"{g:+.1f}" for g in soak["rss_growth_mb"].values())
        out.append((f"soak {soak['seconds']:.0f} s at {soak['rate_per_s']:g} req/s",
                    f"{soak['errors']} errors of {soak['sent']}; RSS change {growth} MB",
                    "0 errors, RSS flat (+-10 MB)", "met" if soak["passed"] else "MISSED"))
    fz = load("schemathesis")
    if fz:
        out.append(("schemathesis against the live service", f"{fz['cases']} cases, {fz['server_errors']} 5xx, "
                    f"{fz['failure_count']} failures", ">= 1000 cases, 0 5xx, 4xx all OperationOutcome",
                    "met" if fz["passed"] else "MISSED"))
    pv = load("preview_load")
    if pv:
        c = pv["cases"]
        out.append((f"card preview load in Chromium, {c['reload']['scenarios']} scenarios",
                    f"after an edit max {c['after_an_edit']['max_ms']} ms, reload max {c['reload']['max_ms']} ms, "
                    f"first after start {c['first_after_start']['load_ms']} ms", "every load < 1,000 ms",
                    "met" if pv["met"] else "MISSED"))
    slow = load("slow_clients")
    if slow:
        shipped, alone = slow["runs"][0], slow["runs"][-1]
        out.append((f"6. {shipped['slow_clients']} slow clients for {shipped['seconds']:g} s: probes answered within 2 s",
                    f"{shipped['share_answered']:.0%} ({shipped['probes_answered_within_limit']}/"
                    f"{shipped['probes_sent']}) behind nginx; gunicorn alone {alone['share_answered']:.0%}",
                    f">= {slow['target_share']:.0%}", "met" if slow["passed"] else "MISSED"))
    nest = load("nesting")
    if nest:
        out.append(("7. 5 MB of brackets refused (nesting check, CPU)", f"max {nest['max_refusal_cpu_ms']:.0f} ms",
                    f"< {nest['target_refusal_cpu_ms']:g} ms", "met" if nest["passed"] else "MISSED"))
    app = load("smart_app")
    if app:
        out.append((f"trend app, {app['observations']:,} observations over a year, load and draw",
                    f"browser {app['browser_median_ms']:.0f} ms (server {app['server_median_ms']:.0f} ms)",
                    f"< {app['target_ms']:.0f} ms", "met" if app["passed"] else "MISSED"))
    return out


def main() -> int:
    table = ["| Benchmark | Result | Target | |", "| --- | --- | --- | --- |"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows()]
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
