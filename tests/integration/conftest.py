"""Fixtures for the JACK integration tests (``docs/DESIGN.md``, "Testing with real MIDI").

Locally the tests skip, saying what is missing, when jackd / jack_midi_clock / JACK-Client are
not installed; in CI (``CI=true``) a missing tool is a failure, so the suite cannot silently
stop testing real MIDI.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.jack_clients import JackMidiPlayer, JackMidiRecorder
from harness.jack_rig import ClockMaster, JackServer, missing_jack_tools
from harness.piano_part import model_playing_every_track

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
FALLBACK_MODEL_DIR = Path("/tmp/musegan_models/tiny")
#: the test servers' period (5.3 ms at 48 kHz, a common setting for playing live). The daemon's
#: JACK process callback is Python: on a 2-core machine at 64 frames (1.3 ms) it misses cycles
#: and the server drops what they carried (measured 2026-12-03, benchmarks/bench_jack_latency.py
#: and the closing note of issue 13). MUSEGAN_TEST_JACK_PERIOD overrides it.
PERIOD_FRAMES = int(os.environ.get("MUSEGAN_TEST_JACK_PERIOD", "256"))


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the JACK integration tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def jack_tools() -> None:
    missing = missing_jack_tools()
    if missing:
        _unavailable(
            f"JACK integration tests need {', '.join(missing)}; install them with "
            "`apt-get install jackd2 jack-midi-clock` and `pip install JACK-Client` "
            "(scripts/setup.sh does both)"
        )


@pytest.fixture(scope="session")
def jack_server(jack_tools):
    """One private JACK server (realtime if allowed) for the whole session."""
    with JackServer(period_frames=PERIOD_FRAMES) as server:
        yield server


@pytest.fixture
def private_jack_server(jack_tools):
    """A JACK server of the test's own, for tests that kill it."""
    server = JackServer(period_frames=PERIOD_FRAMES).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def live_model_dir(request) -> Path:
    """The tiny exported model: the lead's ``tiny_model_dir`` fixture, else /tmp's copy."""
    try:
        return Path(request.getfixturevalue("tiny_model_dir"))
    except pytest.FixtureLookupError:
        pass
    if (FALLBACK_MODEL_DIR / "model.yaml").is_file():
        return FALLBACK_MODEL_DIR
    _unavailable(f"no tiny exported model (tiny_model_dir fixture or {FALLBACK_MODEL_DIR})")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def playing_model(live_model_dir, tmp_path_factory) -> Path:
    """The tiny model with a start threshold per track at which it plays every track."""
    return model_playing_every_track(live_model_dir, tmp_path_factory.mktemp("playing"))


@pytest.fixture
def recorder(jack_server):
    rec = JackMidiRecorder(jack_server, inputs=("in", "clock"))
    yield rec
    rec.close()


@pytest.fixture
def player(jack_server):
    p = JackMidiPlayer(jack_server)
    yield p
    p.close()


@pytest.fixture
def clock_master(jack_server, recorder):
    """jack_midi_clock at 120 BPM, already connected to the recorder's clock input."""
    master = ClockMaster(jack_server, bpm=120)
    master.connect(recorder.port_name("clock"))
    yield master
    master.close()
