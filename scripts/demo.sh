#!/usr/bin/env bash
# Install everything into .venv (and the FHIR server into .venv-fhir), then start a real FHIR server with the
# demo patients and the CDS service against it. Prints ready-to-paste requests. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv ..."
  "$PY" -m venv .venv
fi
echo "Installing the CDS service into .venv ..."
.venv/bin/python -m pip install -q --disable-pip-version-check -e . 2>&1 | grep -v "^WARNING: Location" || true
exec .venv/bin/cds-service demo "$@"
