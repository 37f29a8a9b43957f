#!/usr/bin/env bash
# Set up the runtime (no PyTorch), then run the live daemon on the shipped default model:
#   scripts/run.sh                         listens on "Keyboard", plays into "DAW"
#   scripts/run.sh --in "Oxygen" --out "Bitwig" --bpm 100
# Any musegan-live option can follow. Ports that do not exist yet are created as virtual ports,
# so a DAW (or any MIDI client) can connect to "musegan-live" afterwards.
# If neither an ALSA sequencer nor a JACK server is running (a headless box, a container), a
# JACK server with a dummy audio driver is started for the session, so the daemon still runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh runtime
. .venv/bin/activate

jack_pid=""
if [ ! -e /dev/snd/seq ] && ! jack_lsp >/dev/null 2>&1; then
    echo "run: no ALSA sequencer and no JACK server; starting 'jackd -d dummy' for this session"
    jackd --no-realtime -d dummy -r 48000 -p 256 >/tmp/musegan-live-jackd.log 2>&1 &
    jack_pid=$!
    # Stop the server we started however this script ends (normal exit, Ctrl-C, kill).
    stop_jack() { kill "$jack_pid" 2>/dev/null || true; }
    trap stop_jack EXIT
    trap 'stop_jack; exit 130' INT
    trap 'stop_jack; exit 143' TERM
    for _ in $(seq 50); do jack_lsp >/dev/null 2>&1 && break; sleep 0.1; done
fi

if [ "$#" -eq 0 ]; then
    set -- --in Keyboard --out DAW
fi
musegan-live "$@" || status=$?
exit "${status:-0}"
