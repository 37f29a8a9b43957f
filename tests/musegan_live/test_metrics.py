"""Metrics on hand-made rolls, each answer worked out by hand in a comment."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musegan_live import metrics
from musegan_live.representation import (
    BASS,
    DRUMS,
    GUITAR,
    LOWEST_PITCH,
    N_PITCHES,
    PIANO,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
)


def idx(midi_pitch: int) -> int:
    """Pitch index of a MIDI pitch (index 0 is MIDI 24, a C)."""
    return midi_pitch - LOWEST_PITCH


C4, CS4, D4, E4, FS4, G4 = 60, 61, 62, 64, 66, 67


def phrase(n_tracks: int = 1, bars: int = 4) -> np.ndarray:
    return np.zeros((bars, STEPS_PER_BAR, N_PITCHES, n_tracks), dtype=bool)


def track_roll(bars: int = 4) -> np.ndarray:
    return np.zeros((bars, STEPS_PER_BAR, N_PITCHES), dtype=bool)


def put(roll: np.ndarray, bar: int, start_step: int, length_steps: int, midi: int, t=None):
    """Sound ``midi`` from step ``start_step`` of ``bar`` for ``length_steps`` (may cross bars)."""
    flat = roll.reshape(-1, *roll.shape[2:])  # a view: [bars*48, 84(, T)]
    begin = bar * STEPS_PER_BAR + start_step
    if t is None:
        flat[begin : begin + length_steps, idx(midi)] = True
    else:
        flat[begin : begin + length_steps, idx(midi), t] = True


# --- chroma: pitch index i is MIDI 24 + i, class (24 + i) % 12 --------------------------------
def test_pitch_index_zero_is_c_and_neighbours_are_different_classes():
    # index 0 = MIDI 24 = C1 -> class 0; index 1 = C#1 -> class 1; index 36 = MIDI 60 = C4 -> 0.
    assert metrics.PITCH_CLASSES[0] == 0
    assert metrics.PITCH_CLASSES[1] == 1
    assert metrics.PITCH_CLASSES[idx(C4)] == 0
    roll = track_roll(bars=1)
    roll[0, 0, 0] = True  # C1 at step 0 of beat 0
    roll[0, 12, 1] = True  # C#1 at step 12 = first step of beat 1
    chroma = metrics.beat_chroma(roll)
    assert chroma.shape == (1, 4, 12)
    np.testing.assert_array_equal(chroma[0, 0], np.eye(12)[0])  # one C cell
    np.testing.assert_array_equal(chroma[0, 1], np.eye(12)[1])  # one C# cell


def test_used_pitch_classes_counts_semitones_apart_and_merges_octaves():
    # Would fail under MuseGAN's chroma, which summed runs of adjacent semitones into one bin.
    # Phrase A, bar 0: C4, C#4, D4 -> 3 classes {C, C#, D} (the bug puts them in 1 bin).
    # Phrase B, bar 1: C2, C3, C4 -> 1 class {C} (the bug sees 3 different bins).
    # Empty bars do not count, so each phrase's mean is its one non-empty bar.
    a, b = phrase(), phrase()
    for midi in (C4, CS4, D4):
        put(a, 0, 0, 4, midi, t=0)
    for midi in (36, 48, 60):
        put(b, 1, 10, 4, midi, t=0)
    assert metrics.used_pitch_classes(a, [PIANO])[0] == pytest.approx(3.0)
    assert metrics.used_pitch_classes(b, [PIANO])[0] == pytest.approx(1.0)
    # Both phrases as one batch: (3 + 1) / 2 non-empty bars = 2.
    assert metrics.used_pitch_classes(np.stack([a, b]), [PIANO])[0] == pytest.approx(2.0)


# --- empty bars ------------------------------------------------------------------------------
def test_empty_bar_rate_is_the_share_of_empty_bars_not_of_full_ones():
    # Notes in bars 0, 1, 2; bar 3 silent -> 1 empty bar of 4 = 0.25.
    # MuseGAN's inverted figure would be 3/4 = 0.75.
    x = phrase()
    for bar in range(3):
        put(x, bar, 5, 3, C4, t=0)
    assert metrics.empty_bar_rate(x, [PIANO])[0] == pytest.approx(0.25)


def test_empty_bar_rate_pools_phrases_and_tracks_are_independent():
    # Two phrases, two tracks. Track 0 (Drums): phrase 0 all 4 bars sound, phrase 1 none
    # -> 4 empty of 8 = 0.5. Track 1 (Bass): only bar 2 of phrase 1 sounds -> 7/8 = 0.875.
    x = np.zeros((2, 4, STEPS_PER_BAR, N_PITCHES, 2), dtype=bool)
    x[0, :, 0, idx(36), 0] = True
    x[1, 2, 7, idx(40), 1] = True
    np.testing.assert_allclose(metrics.empty_bar_rate(x, [DRUMS, BASS]), [0.5, 0.875])


# --- qualified notes -------------------------------------------------------------------------
def test_qualified_note_rate_of_notes_of_length_1_3_5():
    # Three notes of C4 separated by silence: lengths 1 (too short), 3, 5 -> 2 of 3 qualified.
    x = phrase()
    put(x, 0, 0, 1, C4, t=0)
    put(x, 0, 4, 3, C4, t=0)
    put(x, 0, 10, 5, C4, t=0)
    assert metrics.qualified_note_rate(x, [PIANO])[0] == pytest.approx(2 / 3)


def test_qualified_notes_continue_across_bar_lines_but_end_with_the_phrase():
    # Note A: steps 46..49 of the phrase (crosses the bar 0/1 line) = one note of length 4, OK.
    # Note B: the last 2 steps of the phrase = length 2, too short.
    # Note C: a 1-step C4 at step 0 of phrase 2 is a separate note even though phrase 1 ends with
    # C4 sounding (notes do not run across phrases). Qualified: 1 of 3 = 1/3.
    x = np.zeros((2, 4, STEPS_PER_BAR, N_PITCHES, 1), dtype=bool)
    put(x[0], 0, 46, 4, G4, t=0)
    put(x[0], 3, 46, 2, C4, t=0)
    put(x[1], 0, 0, 1, C4, t=0)
    assert metrics.qualified_note_rate(x, [PIANO])[0] == pytest.approx(1 / 3)


# --- drum pattern ----------------------------------------------------------------------------
def test_drum_pattern_rate_onsets_at_steps_0_3_5():
    # Hits held 3 steps (as drums are stored) on three drums, onsets at steps 0, 3, 5:
    # 0 % 3 == 0 and 3 % 3 == 0 are on the 16th grid, 5 is not -> 2/3.
    x = phrase()
    put(x, 0, 0, 3, 36, t=0)  # kick
    put(x, 0, 3, 3, 38, t=0)  # snare
    put(x, 0, 5, 3, 42, t=0)  # closed hat
    assert metrics.drum_pattern_rate(x, [DRUMS])[0] == pytest.approx(2 / 3)


def test_drum_pattern_grid_is_relative_to_each_bar():
    # Onsets at phrase steps 48 + 6 (bar 1, step 6: on grid) and 96 + 7 (bar 2, step 7: off)
    # -> 1/2.
    x = phrase()
    put(x, 1, 6, 1, 36, t=0)
    put(x, 2, 7, 1, 36, t=0)
    assert metrics.drum_pattern_rate(x, [DRUMS])[0] == pytest.approx(0.5)


# --- polyphony -------------------------------------------------------------------------------
def test_polyphony_share_of_sounding_steps_with_two_or_more_pitches():
    # C4 alone for steps 0..11 (12 steps), then C4 + E4 for steps 12..17 (6 steps), then silence:
    # sounding steps 18, of which 6 have >= 2 pitches -> 6/18 = 1/3.
    x = phrase()
    put(x, 0, 0, 18, C4, t=0)
    put(x, 0, 12, 6, E4, t=0)
    assert metrics.polyphony(x, [PIANO])[0] == pytest.approx(1 / 3)


def test_undefined_metrics_are_nan_per_track():
    # Slice 0 = Drums with one hit, slice 1 = Guitar silent, slice 2 = Piano with one note.
    x = phrase(n_tracks=3)
    put(x, 0, 0, 3, 36, t=0)
    put(x, 0, 0, 6, C4, t=2)
    tracks = [DRUMS, GUITAR, PIANO]
    for fn in (metrics.used_pitch_classes, metrics.qualified_note_rate, metrics.polyphony):
        values = fn(x, tracks)
        assert np.isnan(values[0]) and np.isnan(values[1]) and not np.isnan(values[2]), fn
    pattern = metrics.drum_pattern_rate(x, tracks)
    assert pattern[0] == 1.0 and np.isnan(pattern[1]) and np.isnan(pattern[2])
    np.testing.assert_allclose(metrics.empty_bar_rate(x, tracks), [0.75, 1.0, 0.75])


# --- tonal distance --------------------------------------------------------------------------
def test_tonal_distance_of_identical_chroma_is_zero_across_octaves_and_durations():
    # A: C major triad C4 E4 G4 for a whole beat. B: the same classes voiced C2 E3 G5, each for
    # 1 step. Both chromas L1-normalise to 1/3 on C, E, G -> identical centroids -> distance 0.
    a, b = track_roll(1), track_roll(1)
    for midi in (C4, E4, G4):
        put(a, 0, 0, STEPS_PER_BEAT, midi)
    for midi in (36, 52, 79):
        put(b, 0, 4, 1, midi)
    assert metrics.tonal_distance(a, b) == pytest.approx(0.0, abs=1e-12)


def test_tonal_distance_c_against_f_sharp():
    # Centroid of a lone class l: (sin l*7pi/6, cos l*7pi/6, sin l*3pi/2, cos l*3pi/2,
    # .5 sin l*2pi/3, .5 cos l*2pi/3).  C (l=0): (0, 1, 0, 1, 0, .5).
    # F# (l=6): sin 7pi = 0, cos 7pi = -1; sin 9pi = 0, cos 9pi = -1; sin 4pi = 0, cos 4pi = 1
    # -> (0, -1, 0, -1, 0, .5).  Distance = sqrt(2^2 + 2^2) = 2*sqrt(2) ~ 2.828.
    a, b = track_roll(1), track_roll(1)
    put(a, 0, 0, 12, C4)
    put(b, 0, 0, 12, FS4)
    assert metrics.tonal_distance(a, b) == pytest.approx(2 * math.sqrt(2))


def test_tonal_distance_averages_only_beats_where_both_sound():
    # Beat 0: C vs C -> 0. Beat 1: C vs F# -> 2*sqrt(2). Beat 2: only A sounds -> skipped.
    # Beat 3: only B sounds -> skipped. Mean over 2 beats = sqrt(2).
    a, b = track_roll(1), track_roll(1)
    put(a, 0, 0, 36, C4)  # beats 0, 1, 2
    put(b, 0, 0, 12, C4)
    put(b, 0, 12, 12, FS4)
    put(b, 0, 36, 12, E4)
    assert metrics.tonal_distance(a, b) == pytest.approx(math.sqrt(2))
    silent = track_roll(1)
    assert math.isnan(metrics.tonal_distance(a, silent))


def test_tonal_distance_is_unchanged_when_both_tracks_are_transposed_together():
    # Transposing by k semitones rotates each of the three circles by k*angle, an isometry.
    rng = np.random.default_rng(3)
    a = rng.random((2, 4, STEPS_PER_BAR, N_PITCHES)) < 0.02
    b = rng.random((2, 4, STEPS_PER_BAR, N_PITCHES)) < 0.02
    a[..., -5:] = b[..., -5:] = False  # room to transpose up by 5 without wrapping
    up = metrics.tonal_distance(np.roll(a, 5, axis=-1), np.roll(b, 5, axis=-1))
    assert up == pytest.approx(metrics.tonal_distance(a, b))
    assert 0.0 < up < 3.0


# --- harmony ratio ---------------------------------------------------------------------------
def test_harmony_ratio_c_against_c_major_triad_and_the_reverse():
    # Condition: C4 E4 G4 in beat 0. Generated C3 (class C) in beat 0: 1 of 1 note-steps in a
    # class the condition plays -> 1.0. Generated C#4 instead: 0 of 1 -> 0.0.
    # Reverse: triad (3 note-steps C, E, G) against a lone C -> only C matches -> 1/3.
    triad, c_note, cs_note = track_roll(1), track_roll(1), track_roll(1)
    for midi in (C4, E4, G4):
        put(triad, 0, 0, 1, midi)
    put(c_note, 0, 3, 1, 48)
    put(cs_note, 0, 3, 1, CS4)
    assert metrics.harmony_ratio(c_note, triad) == pytest.approx(1.0)
    assert metrics.harmony_ratio(cs_note, triad) == pytest.approx(0.0)
    assert metrics.harmony_ratio(triad, c_note) == pytest.approx(1 / 3)


def test_harmony_ratio_counts_note_steps_within_beats_where_the_condition_sounds():
    # Condition: C4 over beat 0 only. Generated in beat 0: C5 for 6 steps (match) and C#5 for
    # 6 steps (no match); in beat 1 (condition silent) G4 for 12 steps -> not counted.
    # Ratio = 6 / (6 + 6) = 0.5. Moving the C5 to beat 2 would leave 0 / 6 in beat 0.
    cond, gen = track_roll(1), track_roll(1)
    put(cond, 0, 0, 12, C4)
    put(gen, 0, 0, 6, 72)
    put(gen, 0, 6, 6, 73)
    put(gen, 0, 12, 12, G4)
    assert metrics.harmony_ratio(gen, cond) == pytest.approx(0.5)
    only_outside = track_roll(1)
    put(only_outside, 0, 12, 12, C4)  # beat 1, where the condition is silent
    assert math.isnan(metrics.harmony_ratio(only_outside, cond))


# --- summarize -------------------------------------------------------------------------------
def test_summarize_matches_the_single_metrics_and_scores_against_the_condition():
    x = np.zeros((2, 4, STEPS_PER_BAR, N_PITCHES, 3), dtype=bool)
    tracks = [DRUMS, PIANO, BASS]
    for p in range(2):
        put(x[p], 0, 0, 48, C4, t=1)  # piano condition: C4 through bar 0
        put(x[p], 0, 0, 3, 36, t=0)  # drums
        put(x[p], 0, 0, 24, 36, t=2)  # bass C2: classes match the condition
        put(x[p], 0, 24, 24, 37, t=2)  # bass C#2: does not
    summary = metrics.summarize(x, tracks, PIANO)
    assert summary["n_phrases"] == 2 and summary["n_bars"] == 4
    assert summary["tracks"] == ["Drums", "Piano", "Bass"]
    assert summary["condition_track"] == "Piano"
    m = summary["metrics"]
    assert set(m) == set(metrics.METRIC_NAMES)
    for name in metrics.PER_TRACK_METRICS:
        expected = getattr(metrics, name)(x, tracks)
        np.testing.assert_allclose(list(m[name].values()), expected, equal_nan=True)
    # Bass: 24 matching and 24 non-matching note-steps per phrase -> 0.5.
    assert m["harmony_ratio"]["Bass"] == pytest.approx(0.5)
    # Beats 0-1: C vs C = 0; beats 2-3: C# vs C -> mean of 0, 0, d, d = d / 2.
    d = np.linalg.norm(metrics.TONAL_MATRIX[:, 1] - metrics.TONAL_MATRIX[:, 0])
    assert m["tonal_distance"]["Bass"] == pytest.approx(d / 2)
    for pair in metrics.PAIR_METRICS:
        assert math.isnan(m[pair]["Drums"]) and math.isnan(m[pair]["Piano"])


def test_one_phrase_and_a_batch_of_one_give_the_same_numbers():
    x = phrase(n_tracks=2)
    put(x, 0, 0, 7, C4, t=0)
    put(x, 1, 2, 2, E4, t=1)
    one = metrics.summarize(x, [PIANO, GUITAR], PIANO)
    batch = metrics.summarize(x[np.newaxis], [PIANO, GUITAR], PIANO)
    assert one["n_phrases"] == batch["n_phrases"] == 1
    for name in metrics.METRIC_NAMES:
        np.testing.assert_array_equal(
            list(one["metrics"][name].values()), list(batch["metrics"][name].values())
        )
    # Piano: 1 note of 7 steps -> qualified 1.0; Guitar: 1 note of 2 steps -> 0.0.
    assert one["metrics"]["qualified_note_rate"] == {"Piano": 1.0, "Guitar": 0.0}


def test_bad_shapes_and_tracks_raise_clear_errors():
    x = phrase(n_tracks=2)
    with pytest.raises(ValueError, match="one representation track index per slice"):
        metrics.empty_bar_rate(x, [PIANO])
    with pytest.raises(ValueError, match="expected"):
        metrics.polyphony(np.zeros((4, 96, 84, 1), dtype=bool), [PIANO])
    with pytest.raises(ValueError, match="not among the tracks"):
        metrics.summarize(x, [PIANO, GUITAR], BASS)
    with pytest.raises(ValueError, match="equal shape"):
        metrics.tonal_distance(track_roll(1), track_roll(2))
