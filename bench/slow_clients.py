"""Benchmark: N slow clients for 20 s; share of ordinary requests (probes) answered within 2 s.

The service as shipped (`cds-service serve`: nginx in front of gunicorn, 2 workers x 4 threads), then
gunicorn alone (`--no-proxy`) for comparison. Slow clients connect over loopback and send their request a
byte every half second: half trickle header lines, half trickle a body (cds_service/devtools/slow_clients.py).
Probes are GET /health and discovery on new connections, one after the other, 0.25 s apart. Target: with
150 slow clients, >= 99% of probes answered within 2 s by the shipped set-up. Writes bench/results/slow_clients.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ServiceProcess, write_result  # noqa: E402

TARGET_SHARE = 0.99


class _Service(ServiceProcess):
    def __init__(self, proxy: bool, **kwargs):
        super().__init__(**kwargs)
        self.proxy = proxy

    def command(self) -> list[str]:
        return super().command() + ([] if self.proxy else ["--no-proxy"])


def main() -> int:
    from cds_service.devtools import slow_clients

    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=150)
    args = parser.parse_args()
    runs = []
    for proxy, clients in ((True, args.clients), (False, 12), (False, args.clients)):
        with _Service(proxy, workers=2, env={"CDS_THREADS": "4"}) as svc:
            result = slow_clients.run(svc.base_url, clients=clients, seconds=args.seconds, probe_timeout_s=2.0)
        row = {"setup": "nginx + gunicorn (cds-service serve)" if proxy else "gunicorn alone (--no-proxy)",
               **result.as_dict()}
        runs.append(row)
        print(f"{row['setup']:40s} {clients:4d} slow clients: {row['probes_answered_within_limit']}/"
              f"{row['probes_sent']} probes answered within 2 s ({row['share_answered']:.0%})")
    shipped = runs[0]
    result = {"target_share": TARGET_SHARE, "shipped_share": shipped["share_answered"],
              "passed": shipped["share_answered"] >= TARGET_SHARE, "runs": runs,
              "method": f"{args.clients} loopback slow clients for {args.seconds:g} s (a byte every 0.5 s, half "
                        "headers, half bodies), probes GET /health and /cds-services 0.25 s apart, 2 s limit; "
                        "2 gunicorn workers x 4 threads"}
    write_result("slow_clients", result)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
