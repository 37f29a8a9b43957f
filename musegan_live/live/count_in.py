"""The count-in of sync start: side-stick clicks on the drums channel before bar 1
(``clock.count_in_beats``; the clock layer decides when bar 1 begins, this builds the clicks)."""

from __future__ import annotations

import mido

from musegan_live.config.live import LiveConfig
from musegan_live.live.outgoing import Outgoing
from musegan_live.representation import BEATS_PER_BAR, DRUMS

SIDE_STICK = 37  # General MIDI percussion key
#: the first click of each bar is accented, as a metronome does
ACCENT_VELOCITY, CLICK_VELOCITY = 110, 80
CLICK_SECONDS = 0.05


def count_in_clicks(config: LiveConfig, first_seconds: float, beats: int,
                    seconds_per_beat: float) -> list[Outgoing]:
    """``beats`` clicks, the first at ``first_seconds`` (monotonic clock), each with its note-off;
    a count-in is never dropped as late (the note that asked for it is already sounding)."""
    try:
        port = config.port_index_of(DRUMS)
    except ValueError:  # the player plays the drums with no thru port: its first port
        port = 0
    channel = config.track(DRUMS).channel_index
    clicks = []
    for beat in range(beats):
        due = first_seconds + beat * seconds_per_beat
        velocity = ACCENT_VELOCITY if (beats - beat) % BEATS_PER_BAR == 0 else CLICK_VELOCITY
        clicks.append(Outgoing(port, mido.Message("note_on", channel=channel, note=SIDE_STICK,
                                                  velocity=velocity), due))
        clicks.append(Outgoing(port, mido.Message("note_off", channel=channel, note=SIDE_STICK),
                               due + min(CLICK_SECONDS, seconds_per_beat / 2)))
    return clicks
