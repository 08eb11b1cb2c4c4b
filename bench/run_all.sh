#!/usr/bin/env bash
# Run every benchmark in turn (on demand, not in CI); each writes bench/results/<name>.json.
# Usage: bash bench/run_all.sh            (about 7 minutes on 2 cores)
#        SOAK_SECONDS=300 bash bench/run_all.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ]; then
  echo "no $PY: run scripts/test.sh once (it creates .venv with the test extras)" >&2
  exit 2
fi
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
status=0
run() {
  echo "== $*"
  "$PY" "$@" > /dev/null || { echo "   -> target missed (see the JSON)"; status=1; }
}
run bench/latency.py
run bench/edge.py
run bench/throughput.py
run bench/fetch_mode.py
run bench/hung.py
run bench/rss.py
run bench/soak.py --seconds "${SOAK_SECONDS:-60}"
run bench/fuzz_api.py --cases 1000
run bench/preview_load.py
run bench/slow_clients.py
run bench/nesting.py
run bench/smart_app.py
"$PY" bench/summary.py
exit $status
