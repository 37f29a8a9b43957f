#!/usr/bin/env bash
# Set everything up, then run the whole test suite (unit tests, JACK integration tests, the
# tiny training -> export -> onnxruntime smoke test). This is what .ci/run calls.
# Arguments go to pytest as given.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh all
. .venv/bin/activate
ruff check musegan_live training tests benchmarks harness
exec python -m pytest -q "$@"
