"""The keyboard's controls: read from control changes, applied by the session on a simulated
clock (new idea, density, mute, hold), and checked against each other in the config."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from musegan_live.config.live import load_config
from musegan_live.errors import ConfigError
from musegan_live.live.controls import Controls, density_for_value
from musegan_live.representation import TICKS_PER_BAR
from tests.musegan_live.fakes import RuleAccompanist, strings_pitch
from tests.musegan_live.live.test_session import Rig, note_offs, note_ons

OUTPUTS = ["Drums", "Guitar", "Bass", "Strings"]
GUITAR_CHANNEL, BASS_CHANNEL, STRINGS_CHANNEL = 1, 2, 3


def cc(number: int, value: int = 127, channel: int = 0) -> mido.Message:
    return mido.Message("control_change", control=number, value=value, channel=channel)


def press(rig: Rig, number: int) -> None:
    """A button press as keyboards send it: 127, then 0 on release."""
    rig.play(cc(number, 127))
    rig.play(cc(number, 0))


def chord(rig: Rig, notes: list[int], on: bool = True) -> None:
    for note in notes:
        kind = "note_on" if on else "note_off"
        rig.play(mido.Message(kind, note=note, velocity=80 if on else 0))


def test_a_knob_maps_to_a_density_factor_around_the_models_own() -> None:
    assert density_for_value(64) == 1.0
    assert density_for_value(0) == 0.25
    assert density_for_value(127) == pytest.approx(3.9, abs=0.05)
    values = [density_for_value(v) for v in range(128)]
    assert values == sorted(values)


def test_a_button_acts_once_per_press_and_other_messages_are_the_players() -> None:
    controls = Controls(load_config(None, {}), OUTPUTS)
    assert controls.handle(mido.Message("note_on", note=60, velocity=90)) is None
    assert controls.handle(cc(64)) is None  # the sustain pedal is the player's
    assert controls.handle(cc(108, 127)).kind == "mute"  # Bass
    assert controls.handle(cc(108, 127)).kind == "none"  # still down: no second toggle
    assert controls.handle(cc(108, 0)).kind == "none"
    assert controls.state.muted == {"Bass"}
    assert controls.handle(cc(108, 100)).kind == "unmute"
    assert controls.handle(cc(106)) is None  # Piano is the player's track, not an output
    assert controls.handle(cc(103, 127)).kind == "hold"
    assert controls.handle(cc(103, 0)).kind == "release"
    assert controls.handle(cc(74, 127)).tracks == tuple(OUTPUTS)
    assert controls.density_exponents() == {n: density_for_value(127) for n in OUTPUTS}
    assert controls.handle(cc(104)).kind == "stop" and controls.is_stop(cc(104))
    assert not controls.is_stop(cc(104, 0))
    controls.handle(cc(108, 0))
    controls.handle(cc(108))
    assert controls.state.describe() == "mute Bass  density 3.91x"


def test_controls_can_be_limited_to_one_channel_and_a_track_can_have_its_own_knob() -> None:
    config = load_config(None, {"controls.channel": "16", "tracks.Strings.density_cc": "21"})
    controls = Controls(config, OUTPUTS)
    assert controls.handle(cc(102, channel=0)) is None
    assert controls.handle(cc(102, channel=15)).kind == "new_idea"
    assert controls.handle(cc(21, 0, channel=15)).tracks == ("Strings",)
    assert controls.density_exponents() == {"Strings": 0.25}
    assert controls.state.describe() == "density Strings 0.25x"


def test_two_controls_on_one_controller_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="controls.hold_cc and tracks.Bass.mute_cc are both "
                                          "controller 103"):
        load_config(None, {"tracks.Bass.mute_cc": "103"})
    load_config(None, {"tracks.Bass.mute_cc": "103", "controls.hold_cc": "null"})


def test_mute_ends_the_tracks_notes_at_once_and_unmute_brings_them_back() -> None:
    rig = Rig()
    rig.start()
    chord(rig, [60, 64, 67])
    rig.ticks(TICKS_PER_BAR)
    assert note_ons(rig.out, channel=BASS_CHANNEL, note=48)
    before = len(rig.out)
    press(rig, 108)  # Bass
    muted = rig.ticks(2)
    assert note_offs(muted, channel=BASS_CHANNEL, note=48)  # at the very next step
    assert not note_ons(rig.ticks(TICKS_PER_BAR), channel=BASS_CHANNEL)
    assert not note_offs(rig.out[before:], channel=GUITAR_CHANNEL)  # the others play on
    assert rig.session.stats.controls == "mute Bass"
    press(rig, 108)
    assert note_ons(rig.ticks(2), channel=BASS_CHANNEL, note=48)
    assert not [o for o in rig.out if o.message.type == "control_change"]  # nothing forwarded


def test_hold_repeats_the_bar_under_way_until_released() -> None:
    rig = Rig()
    rig.start()
    chord(rig, [60, 64, 67])  # C major in bar 1
    rig.ticks(TICKS_PER_BAR // 2)
    rig.play(cc(103, 127))  # hold, mid bar 1: bar 1 ends as planned, then repeats
    rig.ticks(TICKS_PER_BAR // 2)
    chord(rig, [60, 64, 67], on=False)
    chord(rig, [66, 70, 73])  # F# major in bars 2 and 3
    held = rig.ticks(2 * TICKS_PER_BAR)
    assert note_ons(held, channel=GUITAR_CHANNEL, note=64) and not note_ons(held, channel=1,
                                                                                note=70)
    rig.play(cc(103, 0))  # released at the start of bar 4: the plans follow again
    assert note_ons(rig.ticks(4), channel=GUITAR_CHANNEL, note=70)


def test_a_new_idea_redraws_z_from_the_next_bar_only() -> None:
    model = RuleAccompanist()
    rig = Rig(model=model)
    rig.start()
    rig.ticks(TICKS_PER_BAR // 4)
    first_z = model.calls[-1][2]
    press(rig, 102)
    rig.ticks(TICKS_PER_BAR // 2)  # to the last beat of bar 1
    assert np.array_equal(model.calls[-1][2], first_z)  # bar 1 plays on as planned
    assert not note_offs(rig.out, channel=STRINGS_CHANNEL)
    rig.ticks(TICKS_PER_BAR)
    pitches = [o.message.note for o in note_ons(rig.out, channel=STRINGS_CHANNEL)]
    assert pitches[0] == strings_pitch(first_z) and len(pitches) == 2
    assert pitches[1] == strings_pitch(model.calls[-1][2]) != pitches[0]
    (change,) = [o for o in note_ons(rig.out, channel=STRINGS_CHANNEL)][1:]
    assert change.due_seconds == pytest.approx(TICKS_PER_BAR * rig.spt)  # on the bar line


class UnsureGuitar(RuleAccompanist):
    """The rule model, with the guitar's chord at probability 0.3 instead of 1."""

    def probabilities(self, condition, known_mask, z) -> np.ndarray:
        out = super().probabilities(condition, known_mask, z)
        out[..., 1] *= 0.3
        return out


def test_the_density_knob_changes_which_notes_start_from_the_next_step() -> None:
    rig = Rig(model=UnsureGuitar())
    rig.start()
    chord(rig, [60, 64, 67])
    assert not note_ons(rig.ticks(TICKS_PER_BAR // 2), channel=GUITAR_CHANNEL)
    rig.play(cc(74, 127))  # densest: threshold 0.5 ** 3.9 < 0.3
    sent = rig.ticks(4)
    assert {o.message.note for o in note_ons(sent, channel=GUITAR_CHANNEL)} == {60, 64, 67}
    rig.play(cc(74, 64))  # back to the model's own
    ended = rig.ticks(4)
    assert {o.message.note for o in note_offs(ended, channel=GUITAR_CHANNEL)} == {60, 64, 67}
    assert rig.session.stats.controls == ""
