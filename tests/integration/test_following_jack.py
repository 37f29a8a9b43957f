"""Does the daemon follow the player through JACK? The shipped model, a real clock master.

``musegan-live`` runs as a user runs it, following ``jack_midi_clock`` at 120 BPM; a player
client alternates C major and F# major bars (they share no pitch class), each chord struck on
the bar line of the clock and held to the end of the bar. The daemon's notes, stamped with
JACK frames, are put back on the step grid of the clock: a band that follows plays the current
bar's chord, one that is a bar behind plays the previous bar's.
"""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from harness.jack_rig import DaemonProcess, wait_until
from musegan_live.metrics import chord_shares
from musegan_live.model.model_dir import default_model_dir
from musegan_live.representation import LOWEST_PITCH, N_PITCHES, STEPS_PER_BAR

pytestmark = [pytest.mark.jack, pytest.mark.flaky(reruns=2)]

C_MAJOR = (60, 64, 67)
F_SHARP_MAJOR = (66, 70, 73)
TICK_FRAMES_120 = 1_000  # 48 kHz, 24 ticks per beat at 120 BPM
STEP_FRAMES = 2 * TICK_FRAMES_120
BAR_FRAMES = STEPS_PER_BAR * STEP_FRAMES
PLAYED_BARS = 8  # bars 1..8 (bar 0 is silent while the clock starts)
PITCHED_CHANNELS = {1: "Guitar", 2: "Bass", 3: "Strings"}  # 0-based, the default config


def chord_of(bar: int) -> tuple[int, ...]:
    return C_MAJOR if bar % 2 else F_SHARP_MAJOR


def test_the_daemon_plays_the_chord_of_the_current_bar(
    jack_server, recorder, player, clock_master, tmp_path
):
    args = ["--model", str(default_model_dir()), "--backend", "jack", "--in", player.port_name,
            "--out", recorder.port_name("in"), "--seed", "1", "--clock", "external"]
    daemon = DaemonProcess(jack_server, args, tmp_path)
    try:
        assert daemon.wait_for_log("musegan-live ready", 30.0), daemon.log()
        clock_master.connect(player.peer_of("musegan-live"))
        clock_master.play()
        assert wait_until(lambda: any(e.data[0] == 0xF8 for e in recorder.events("clock")), 5.0)
        first_tick = next(e.frame for e in recorder.events("clock") if e.data[0] == 0xF8)
        for bar in range(1, PLAYED_BARS + 1):
            start = first_tick + bar * BAR_FRAMES
            for pitch in chord_of(bar):
                player.send_at(start + 100, [0x90, pitch, 90])
                player.send_at(start + BAR_FRAMES - STEP_FRAMES, [0x80, pitch, 0])
        end = first_tick + (PLAYED_BARS + 1) * BAR_FRAMES
        assert wait_until(lambda: recorder.now_frame() > end + STEP_FRAMES, 30.0)
        clock_master.stop()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0, daemon.log()
        time.sleep(0.1)
    finally:
        daemon.close()

    # the daemon's notes back on the clock's step grid, per channel
    n_steps = (PLAYED_BARS + 1) * STEPS_PER_BAR
    roll = np.zeros((n_steps, N_PITCHES, len(PITCHED_CHANNELS)), bool)
    onsets: dict[tuple[int, int], int] = {}
    for event in recorder.events("in"):
        kind, channel = event.data[0] & 0xF0, event.data[0] & 0x0F
        if channel not in PITCHED_CHANNELS or kind not in (0x80, 0x90) or len(event.data) < 3:
            continue
        key = (channel, event.data[1])
        step = round((event.frame - first_tick) / STEP_FRAMES)
        if kind == 0x90 and event.data[2] > 0:
            onsets[key] = step
        elif key in onsets:
            begin = max(onsets.pop(key), 0)
            column = sorted(PITCHED_CHANNELS).index(channel)
            roll[begin : min(step, n_steps), event.data[1] - LOWEST_PITCH, column] = True
    chords = [set()] + [{p % 12 for p in chord_of(bar)} for bar in range(1, PLAYED_BARS + 1)]
    scored = roll[2 * STEPS_PER_BAR :].reshape(PLAYED_BARS - 1, STEPS_PER_BAR, N_PITCHES, -1)
    for column, name in enumerate(PITCHED_CHANNELS.values()):
        playing = scored[..., column].any(axis=(1, 2)).mean()
        assert playing >= 0.75, f"{name} plays in only {playing:.0%} of the bars"
    current, previous = chord_shares(roll, chords, first_bar=2)
    assert current >= 0.6, f"in the current bar's chord {current:.2f}, previous {previous:.2f}"
    assert previous <= 0.25, f"in the previous bar's chord {previous:.2f}"
