"""FluidSynth as the DAW: the daemon's output played by a real General MIDI synth in JACK, its
audio recorded. While the transport rolls the band is heard; after Stop and after SIGTERM the
audio falls below -60 dBFS once the release tails have died and stays there (a note left
hanging would keep a string pad sounding)."""

from __future__ import annotations

import signal
import time

import pytest

from harness.piano_part import play_piano
from harness.synth_rig import FluidSynthJack, JackAudioRecorder, missing_synth
from tests.integration.test_daemon_jack import daemon_args, start_daemon

pytestmark = [pytest.mark.jack, pytest.mark.flaky(reruns=2)]

SOUNDING_DBFS = -45.0
SILENT_DBFS = -60.0
TAIL_SECONDS = 5.0  # GM release tails, reverb off (measured: ~4 s down to -60 dBFS)
QUIET_SECONDS = 1.5  # then this long measured, in quarter-second windows


@pytest.fixture
def synth(jack_server):
    reason = missing_synth()
    if reason is not None:
        pytest.skip(reason)
    synth = FluidSynthJack(jack_server)
    audio = JackAudioRecorder(jack_server)
    audio.connect_from(jack_server, synth.audio_ports)
    yield synth, audio
    audio.close()
    synth.close()


def test_the_synth_sounds_while_rolling_and_falls_silent_after_stop_and_sigterm(
    jack_server, playing_model, recorder, player, clock_master, synth, tmp_path
):
    synth, audio = synth
    rate = audio.rate
    args = daemon_args(playing_model, player, recorder)
    args[args.index("--out") + 1] = synth.midi_port  # the synth is the DAW
    daemon = start_daemon(jack_server, args, tmp_path, player, clock_master)
    try:
        play_piano(player, 20.0)
        clock_master.play()
        rolled = audio.now_frame()
        time.sleep(3.0)
        clock_master.stop()
        stopped = audio.now_frame()
        time.sleep(TAIL_SECONDS + QUIET_SECONDS + 0.3)
        clock_master.locate(0)
        time.sleep(0.2)
        clock_master.play()
        rolled_again = audio.now_frame()
        time.sleep(2.5)
        terminated = audio.now_frame()
        daemon.signal(signal.SIGTERM)  # while rolling
        assert daemon.wait(10) == 0, daemon.log()
        time.sleep(TAIL_SECONDS + QUIET_SECONDS + 0.3)
    finally:
        daemon.close()
    window = rate // 4

    def quiet_after(frame: int) -> list[float]:
        first = frame + int(TAIL_SECONDS * rate)
        return audio.levels_dbfs(first, first + int(QUIET_SECONDS * rate), window)

    playing = audio.level_dbfs(rolled + rate, stopped)
    assert playing > SOUNDING_DBFS, f"the band was not heard: {playing:.1f} dBFS"
    after_stop = quiet_after(stopped)
    stops = [e.frame for e in recorder.events("clock") if e.data[0] == 0xFC]
    assert [f for f in stops if f >= stopped - rate // 10], "the clock master sent no Stop"
    assert max(after_stop) < SILENT_DBFS, f"still sounding after Stop: {after_stop}"
    again = audio.level_dbfs(rolled_again + rate // 2, terminated)
    assert again > SOUNDING_DBFS, f"the band was not heard after Start: {again:.1f} dBFS"
    after_term = quiet_after(terminated)
    assert max(after_term) < SILENT_DBFS, f"still sounding after SIGTERM: {after_term}"
