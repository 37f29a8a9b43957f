#!/usr/bin/env bash
# Set everything up, then run the whole test suite (unit tests, JACK integration tests, the
# tiny training -> export -> onnxruntime smoke test). This is what .ci/run calls.
#
# The rtmidi-on-JACK port tests run in a pytest process of their own: python-rtmidi's wheel
# bundles its own libjack, and with two libjacks in one process JACK-Client's clients (the
# recorder, the player, FluidSynth's audio recorder) misbehave or crash (measured: segfault in
# jack_deactivate, and a recorder that heard nothing, only after those tests had run).
# Arguments go to one pytest run as given.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh all
. .venv/bin/activate
ruff check musegan_live training tests benchmarks harness
if [ "$#" -gt 0 ]; then
    exec python -m pytest -q "$@"
fi
RTMIDI_JACK_TESTS=tests/integration/test_jack_ports.py
python -m pytest -q --ignore="$RTMIDI_JACK_TESTS"
python -m pytest -q "$RTMIDI_JACK_TESTS"
