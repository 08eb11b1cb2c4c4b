#!/usr/bin/env bash
# Install the service with its test extras, install the pinned FHIR server used by the integration tests,
# then run the whole test suite. Extra arguments go to pytest (e.g. scripts/test.sh -k feedback).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "from cds_service.devtools.fhir_server import ensure_installed; ensure_installed()"
exec .venv/bin/python -m pytest "$@"
