"""``decode_notes``: hysteresis, shortest note, voice limit, carry-in, each on a hand-made map."""

from __future__ import annotations

import numpy as np
import pytest

from musegan_live.model.decoding import NoteDecoding, decode_notes
from musegan_live.representation import BASS, DRUMS, GUITAR, STRINGS

TRACKS = [DRUMS, GUITAR, BASS, STRINGS]  # the accompaniment of a piano model
C4 = 36  # pitch index of MIDI 60


def probabilities() -> np.ndarray:
    """An all-silent ``float32[1, 4, 48, 84, 4]`` map to draw on."""
    return np.full((1, 4, 48, 84, 4), 0.05, dtype=np.float32)


def along_phrase(probs: np.ndarray, slot: int, pitch: int) -> np.ndarray:
    """A writable view of one pitch of one track across the 192 steps of the phrase."""
    return probs[0, :, :, pitch, slot].reshape(192)


def notes_of(notes: np.ndarray, slot: int, pitch: int) -> list[tuple[int, int]]:
    """(start step, length) of each note of one pitch, across bar lines."""
    row = notes[0, :, :, pitch, slot].reshape(192).astype(np.int8)
    edges = np.diff(np.concatenate([[0], row, [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)]


def test_a_held_note_does_not_stutter_where_its_probability_dips() -> None:
    probs = probabilities()
    row = along_phrase(probs, 3, C4)
    row[10:22] = [0.9, 0.8, 0.45, 0.42, 0.7, 0.6, 0.44, 0.41, 0.48, 0.3, 0.9, 0.9]
    plain = decode_notes(probs, TRACKS, NoteDecoding(0.5))
    assert notes_of(plain, 3, C4) == [(10, 2), (14, 2), (20, 2)]
    held = decode_notes(probs, TRACKS, NoteDecoding(0.5, sustain_threshold=0.4))
    assert notes_of(held, 3, C4) == [(10, 9), (20, 2)]


def test_a_run_that_never_reaches_the_start_threshold_is_not_a_note() -> None:
    probs = probabilities()
    along_phrase(probs, 2, 12)[40:60] = 0.45
    notes = decode_notes(probs, TRACKS, NoteDecoding(0.5, sustain_threshold=0.4))
    assert not notes.any()


def test_notes_shorter_than_the_track_minimum_are_dropped_except_at_the_phrase_end() -> None:
    probs = probabilities()
    guitar = along_phrase(probs, 1, C4)
    guitar[5:7] = 0.9  # 2 steps: a blip
    guitar[20:23] = 0.9  # 3 steps: a 16th note
    guitar[190:192] = 0.9  # 2 steps still sounding when the phrase ends: it may go on
    strings = along_phrase(probs, 3, C4)
    strings[30:35] = 0.9  # 5 steps
    strings[44:52] = 0.9  # 8 steps across the line between bars 1 and 2
    decoding = NoteDecoding(0.5, min_note_steps={"Guitar": 3, "Strings": 6})
    notes = decode_notes(probs, TRACKS, decoding)
    assert notes_of(notes, 1, C4) == [(20, 3), (190, 2)]
    assert notes_of(notes, 3, C4) == [(44, 8)]


def test_no_more_pitches_sound_at_once_than_the_track_has_voices() -> None:
    probs = probabilities()
    for k, pitch in enumerate(range(C4, C4 + 9)):
        along_phrase(probs, 1, pitch)[0:12] = 0.6 + 0.04 * k  # 9 pitches, C4 least probable
        along_phrase(probs, 2, pitch - 24)[0:12] = 1.0  # 9 bass pitches, all saturated
    notes = decode_notes(probs, TRACKS, NoteDecoding(0.5, max_voices={"Guitar": 6, "Bass": 2}))
    guitar_steps = notes[0, 0, :12, :, 1]
    assert (guitar_steps.sum(axis=1) == 6).all()
    assert guitar_steps[:, C4 + 3 : C4 + 9].all()  # the six most probable pitches
    assert (notes[0, 0, :12, :, 2].sum(axis=1) == 2).all()  # ties still give exactly 2


def test_drums_are_thresholded_hit_by_hit() -> None:
    probs = probabilities()
    kick = along_phrase(probs, 0, 12)
    kick[0:3] = 0.9
    kick[3] = 0.45  # between two hits: holding would merge them
    kick[4] = 0.9  # a 1-step hit is still a hit
    decoding = NoteDecoding(0.5, sustain_threshold=0.4, min_note_steps={"Drums": 3})
    assert notes_of(decode_notes(probs, TRACKS, decoding), 0, 12) == [(0, 3), (4, 1)]


def test_another_threshold_keeps_the_sustain_threshold_below_it() -> None:
    decoding = NoteDecoding(0.5, sustain_threshold=0.4, min_note_steps={"Bass": 3})
    assert decoding.with_threshold(None) is decoding
    assert decoding.with_threshold(0.7).hold_threshold("Bass") == 0.4
    lowered = decoding.with_threshold(0.3)
    assert (lowered.threshold, lowered.hold_threshold("Bass")) == (0.3, 0.3)
    assert lowered.min_note_steps == {"Bass": 3}
    assert NoteDecoding(0.6).with_threshold(0.2).hold_threshold("Guitar") == 0.2


def test_a_track_can_have_its_own_start_threshold() -> None:
    probs = probabilities()
    along_phrase(probs, 1, C4)[0:12] = 0.3  # a guitar note the model is not sure of
    along_phrase(probs, 3, C4)[0:12] = 0.3  # the same on strings
    decoding = NoteDecoding(0.5, 0.4, track_thresholds={"Guitar": 0.25})
    notes = decode_notes(probs, TRACKS, decoding)
    assert notes_of(notes, 1, C4) == [(0, 12)] and notes_of(notes, 3, C4) == []
    assert decoding.hold_threshold("Guitar") == 0.25 and decoding.hold_threshold("Bass") == 0.4
    # one --threshold for the whole band replaces them
    assert decoding.with_threshold(0.6).track_thresholds == {}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"sustain_threshold": 0.7}, r"sustain_threshold must be in \(0, threshold = 0.5\]"),
        ({"min_note_steps": {"Banjo": 3}}, "'Banjo', which is not one of"),
        ({"max_voices": {"Bass": 0}}, "max_voices.Bass must be between 1 and 84"),
        ({"min_note_steps": {"Bass": 2.5}}, "min_note_steps.Bass must be a whole number"),
        ({"max_voices": [2, 3]}, "max_voices must map track names to numbers"),
        ({"sustain": 0.4}, r"unknown decoding key\(s\) \['sustain'\]"),
        ({"track_thresholds": {"Bass": 1.5}}, r"track_thresholds.Bass must be in \(0, 1\)"),
    ],
)
def test_bad_decoding_values_are_named(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NoteDecoding.from_mapping(0.5, values)


def test_the_model_yaml_section_round_trips() -> None:
    decoding = NoteDecoding(0.5, 0.4, {"Strings": 6}, {"Guitar": 6}, {"Bass": 0.3})
    assert NoteDecoding.from_mapping(0.5, decoding.to_mapping()) == decoding
    assert NoteDecoding.from_mapping(0.5, None) == NoteDecoding(0.5)


def test_wrong_shapes_are_explained() -> None:
    with pytest.raises(ValueError, match=r"expected \[B, bars, 48, 84, 4\]"):
        decode_notes(np.zeros((4, 48, 84, 4)), TRACKS, NoteDecoding())
    with pytest.raises(ValueError, match="5 bars; expected 1 to 4"):
        decode_notes(np.zeros((1, 5, 48, 84, 4)), TRACKS, NoteDecoding())
    with pytest.raises(ValueError, match=r"sounding_before has shape \(84, 4\)"):
        decode_notes(np.zeros((1, 1, 48, 84, 4)), TRACKS, NoteDecoding(),
                     sounding_before=np.zeros((84, 4), bool))


def test_the_last_bar_alone_decodes_as_the_phrase_does_given_what_sounded_before_it() -> None:
    probs = probabilities()
    held = along_phrase(probs, 3, C4)
    held[130:144] = 0.9  # a note of bar 3 ...
    held[144:148] = 0.45  # ... held into bar 4 below the start threshold
    short = along_phrase(probs, 1, C4 + 4)
    short[140:146] = 0.9  # 6 steps, of which only 2 in bar 4: shorter than the minimum there
    fresh = along_phrase(probs, 1, C4 + 7)
    fresh[144:146] = 0.45  # never reached the start: no note, with or without the carry-in
    decoding = NoteDecoding(0.5, sustain_threshold=0.4, min_note_steps={"Guitar": 3})
    whole = decode_notes(probs, TRACKS, decoding)[:, 3:]
    before = decode_notes(probs, TRACKS, decoding)[:, 2, -1]  # what sounded at bar 3's last step
    last_bar = decode_notes(probs[:, 3:], TRACKS, decoding, sounding_before=before)
    np.testing.assert_array_equal(last_bar, whole)
    assert last_bar[0, 0, 0:4, C4, 3].all() and last_bar[0, 0, 0:2, C4 + 4, 1].all()
    alone = decode_notes(probs[:, 3:], TRACKS, decoding)  # without the carry-in both are cut
    assert not alone[0, 0, 0:2, C4, 3].any() and not alone[0, 0, :, C4 + 4, 1].any()
    assert not last_bar[0, 0, :, C4 + 7, 1].any()


def test_density_raises_each_named_tracks_start_threshold_to_its_factor() -> None:
    probs = probabilities()
    along_phrase(probs, 1, C4)[0:12] = 0.3  # below the guitar's 0.5, above 0.5 ** 2
    along_phrase(probs, 2, C4)[0:12] = 0.6  # above the bass's 0.5, below 0.5 ** 0.5
    decoding = NoteDecoding(0.5, 0.25)
    plain = decode_notes(probs, TRACKS, decoding)
    assert notes_of(plain, 1, C4) == [] and notes_of(plain, 2, C4) == [(0, 12)]
    denser = decoding.with_density({"Guitar": 2.0, "Bass": 0.5})
    notes = decode_notes(probs, TRACKS, denser)
    assert notes_of(notes, 1, C4) == [(0, 12)] and notes_of(notes, 2, C4) == []
    assert denser.start_threshold("Strings") == 0.5  # tracks not named keep their own
    assert decoding.with_density(None) is decoding
    with pytest.raises(ValueError, match="density of Bass must be > 0"):
        decoding.with_density({"Bass": 0.0})
