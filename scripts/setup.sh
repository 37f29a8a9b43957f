#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for musegan-live: system packages, a virtual environment
# in .venv, and the package itself.
#   scripts/setup.sh           the runtime: the daemon and the offline jobs (no PyTorch)
#   scripts/setup.sh all       + training (PyTorch CPU, MMA for the corpus) + the test tools
#                              (jack_midi_clock, FluidSynth with a General MIDI soundfont)
# Re-running is cheap: each step is skipped when it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-runtime}
case "$mode" in
    runtime) packages=(jackd:jackd2) ;;
    all) packages=(jackd:jackd2 jack_midi_clock:jack-midi-clock mma:mma fluidsynth:fluidsynth) ;;
    *) echo "setup: unknown mode '$mode' (runtime or all)" >&2; exit 2 ;;
esac

need_apt=()
for cmd in "${packages[@]}"; do
    command -v "${cmd%%:*}" >/dev/null 2>&1 || need_apt+=("${cmd##*:}")
done
if [ "$mode" = all ] && [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ]; then
    need_apt+=(fluid-soundfont-gm)
fi
if ((${#need_apt[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing system packages: ${need_apt[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${need_apt[@]}" libjack-jackd2-0 >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$python" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=.venv/.musegan-live-$mode
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing Python packages into .venv ($mode)"
    python -m pip install -q --upgrade pip
    if [ "$mode" = all ]; then
        # The CPU build of PyTorch first, so the 'train' extra does not pull CUDA wheels.
        python -m pip install -q torch==2.13.0 || python -m pip install -q torch \
            --index-url https://download.pytorch.org/whl/cpu
        python -m pip install -q -e ".[train,dev]"
    else
        python -m pip install -q -e .
    fi
    touch "$stamp"
fi
