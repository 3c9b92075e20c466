#!/usr/bin/env bash
# Build NannyML's own environment (.venv-nannyml) from pinned versions, once: the test that
# compares Vigil's multiclass CBPE with NannyML's runs NannyML there (it needs pandas 3,
# beside which evidently 0.7 cannot import, so it cannot live in .venv).
set -euo pipefail
PYTHON=${PYTHON:-python3}
venv=${1:-.venv-nannyml}
stamp="$venv/.installed"
if [ -f "$stamp" ] && [ "$stamp" -nt constraints/nannyml.txt ]; then exit 0; fi
"$PYTHON" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -r constraints/nannyml.txt
touch "$stamp"
