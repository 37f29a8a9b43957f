"""MIDI file -> song roll: tempo map, meter, drums, pitch range, merging, errors, annotations."""

from __future__ import annotations

import logging
from pathlib import Path

import mido
import numpy as np
import pytest

from musegan_live.errors import DataFileError, MidiFileError
from musegan_live.files.midi_read import MAX_BARS, SongRoll, read_midi, read_pop909_beats
from musegan_live.representation import (
    BASS,
    DRUM_NOTE_STEPS,
    DRUMS,
    GUITAR,
    LOWEST_PITCH,
    PIANO,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    STRINGS,
)
from tests.midi_fixtures import (
    Part,
    rubato_beats_seconds,
    rubato_part,
    write_corrupt_midi,
    write_fixture_midi,
    write_zero_byte_file,
)

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"


def on_runs(song: SongRoll, track: int, pitch: int) -> list[tuple[int, int]]:
    """(start_step, end_step) of each run of True for one pitch of one track."""
    column = np.concatenate(([0], song.roll[:, pitch - LOWEST_PITCH, track].astype(int), [0]))
    edges = np.diff(column)
    starts, ends = np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()
    return list(zip(starts, ends, strict=True))


def test_shapes_dtypes_and_whole_bars(tmp_path):
    path = write_fixture_midi(tmp_path / "a.mid", [Part(notes=[(60, 0, 1), (64, 4, 5.5)])])
    song = read_midi(path)
    assert song.roll.dtype == np.bool_ and song.velocity.dtype == np.uint8
    assert song.roll.shape == (2 * STEPS_PER_BAR, 84, 5) == song.velocity.shape
    assert song.n_bars == 2
    assert song.source == str(path)
    assert on_runs(song, PIANO, 60) == [(0, 12)]
    assert on_runs(song, PIANO, 64) == [(48, 66)]
    assert (song.velocity[song.roll] == 100).all() and not song.velocity[~song.roll].any()


def test_note_after_tempo_change_lands_on_its_beat(tmp_path):
    # 120 bpm for 4 beats (2 s), then 60 bpm: beat 6 sounds at 4 s. A reader that used one fixed
    # tempo would put it at step 96 (8 beats at 120 bpm); the tempo map puts it at beat 6.
    path = write_fixture_midi(
        tmp_path / "tempo.mid",
        [Part(notes=[(60, 0, 1), (62, 6, 6.5)])],
        tempo_changes=[(0, 120), (4, 60)],
    )
    song = read_midi(path)
    assert on_runs(song, PIANO, 62) == [(6 * STEPS_PER_BEAT, 6 * STEPS_PER_BEAT + 6)]
    assert song.tempo_bpm == pytest.approx(120)


def test_tempo_at_the_first_downbeat(tmp_path):
    # The first note is in bar 2 (beat 8), where the tempo is 75 bpm.
    path = write_fixture_midi(
        tmp_path / "t.mid",
        [Part(notes=[(60, 9, 10)])],
        tempo_changes=[(0, 140), (8, 75)],
    )
    song = read_midi(path)
    assert song.tempo_bpm == pytest.approx(75, abs=1e-3)
    assert on_runs(song, PIANO, 60) == [(12, 24)]


def test_no_time_signature_means_4_4(tmp_path):
    notes = [(60, 0, 1), (62, 3, 4), (64, 5, 6)]
    plain = read_midi(write_fixture_midi(tmp_path / "none.mid", [Part(notes=notes)]))
    explicit = read_midi(
        write_fixture_midi(tmp_path / "44.mid", [Part(notes=notes)], time_signatures=[(0, 4, 4)])
    )
    np.testing.assert_array_equal(plain.roll, explicit.roll)
    assert plain.n_bars == 2


@pytest.mark.parametrize(
    "time_signatures",
    [[(0, 3, 4)], [(0, 4, 4), (8, 3, 4)], [(0, 6, 8)], [(0, 2, 4)]],
    ids=["3/4", "4/4 then 3/4", "6/8", "2/4"],
)
def test_other_meters_are_refused(tmp_path, time_signatures):
    path = write_fixture_midi(
        tmp_path / "waltz.mid", [Part(notes=[(60, 0, 1)])], time_signatures=time_signatures
    )
    with pytest.raises(MidiFileError) as info:
        read_midi(path)
    assert info.value.reason == "not_4_4"
    assert str(path) in str(info.value) and "--assume-4-4" in str(info.value)


def test_a_file_marked_1_4_reads_as_4_4_when_asked(tmp_path):
    """POP909's files mark every beat a 1/4 bar; asked to, the reader takes bars of four beats
    from the first signature (yesterday such files were refused with no way round)."""
    path = write_fixture_midi(tmp_path / "pop.mid", [Part(notes=[(60, 4, 6), (64, 8, 9)])],
                              time_signatures=[(0, 1, 4)])
    with pytest.raises(MidiFileError):
        read_midi(path)
    song = read_midi(path, assume_4_4=True)
    assert song.roll.shape[0] == 2 * STEPS_PER_BAR  # beats 4-7 and 8-11: two bars
    assert on_runs(song, PIANO, 60) == [(0, 2 * STEPS_PER_BEAT)]  # on the downbeat of beat 4
    assert on_runs(song, PIANO, 64) == [(STEPS_PER_BAR, STEPS_PER_BAR + STEPS_PER_BEAT)]


def test_leading_empty_bars_are_skipped_whole(tmp_path):
    # First note at beat 9.5 (bar 3, beat 2): two empty bars go, the note keeps its place in bar.
    path = write_fixture_midi(tmp_path / "late.mid", [Part(notes=[(60, 9.5, 10)])])
    song = read_midi(path)
    assert song.n_bars == 1
    assert on_runs(song, PIANO, 60) == [(18, 24)]


def test_bars_follow_a_late_time_signature(tmp_path):
    # A 2-beat pickup: 4/4 starts at beat 2, so bars start at beats 2, 6, ... (and -2 before).
    path = write_fixture_midi(
        tmp_path / "pickup.mid",
        [Part(notes=[(60, 0, 1), (62, 2, 3)])],
        time_signatures=[(2, 4, 4)],
    )
    song = read_midi(path)
    # step 0 is beat -2: the pickup note sits on beat 2 of that bar, the downbeat note on step 48
    assert on_runs(song, PIANO, 60) == [(24, 36)]
    assert on_runs(song, PIANO, 62) == [(48, 60)]


def test_onsets_and_offsets_round_to_the_nearest_step(tmp_path):
    # 480 ticks per beat = 40 ticks per step: 19 ticks rounds down, 20 (half) rounds up.
    path = write_fixture_midi(
        tmp_path / "round.mid",
        [Part(notes=[(60, 0, 1), (62, 19 / 480, 1 + 61 / 480), (64, 20 / 480, 1 + 59 / 480)])],
    )
    song = read_midi(path)
    assert on_runs(song, PIANO, 62) == [(0, 14)]
    assert on_runs(song, PIANO, 64) == [(1, 13)]


def test_zero_length_and_tiny_notes_keep_one_step(tmp_path):
    path = write_fixture_midi(
        tmp_path / "zero.mid", [Part(notes=[(60, 1, 1), (62, 2, 2 + 5 / 480)])]
    )
    song = read_midi(path)
    assert on_runs(song, PIANO, 60) == [(12, 13)]
    assert on_runs(song, PIANO, 62) == [(24, 25)]


def test_overlapping_notes_merge_and_keep_the_loudest_velocity(tmp_path):
    path = write_fixture_midi(
        tmp_path / "overlap.mid", [Part(notes=[(60, 0, 2, 50), (60, 1, 3, 90), (60, 3, 4, 30)])]
    )
    song = read_midi(path)
    # [0,2) and [1,3) overlap; [3,4) touches: a boolean roll keeps one run for all three
    assert on_runs(song, PIANO, 60) == [(0, 48)]
    column = song.velocity[:48, 60 - LOWEST_PITCH, PIANO]
    assert (column[:12] == 50).all() and (column[12:36] == 90).all() and (column[36:] == 30).all()


def test_instruments_of_one_track_merge_with_max_velocity(tmp_path):
    parts = [
        Part(program=0, channel=0, notes=[(60, 0, 1, 40)]),
        Part(program=5, channel=1, notes=[(60, 0, 2, 70), (67, 0, 1)]),
    ]
    song = read_midi(write_fixture_midi(tmp_path / "two_pianos.mid", parts))
    assert on_runs(song, PIANO, 60) == [(0, 24)]
    assert (song.velocity[:24, 60 - LOWEST_PITCH, PIANO] == 70).all()
    assert song.roll[:, :, [DRUMS, GUITAR, BASS, STRINGS]].sum() == 0


def test_program_mapping_to_lpd5_tracks(tmp_path):
    parts = [
        Part(program=30, channel=0, notes=[(64, 0, 1)]),  # distortion guitar -> Guitar
        Part(program=33, channel=1, notes=[(40, 0, 1)]),  # finger bass -> Bass
        Part(program=48, channel=2, notes=[(72, 0, 1)]),  # string ensemble -> Strings
        Part(program=56, channel=3, notes=[(74, 0, 1)]),  # trumpet -> Strings ('other')
        Part(program=100, channel=4, notes=[(76, 0, 1)]),  # FX 5 -> dropped
        Part(program=120, channel=5, notes=[(78, 0, 1)]),  # guitar fret noise -> dropped
        Part(program=None, channel=6, notes=[(80, 0, 1)]),  # no program change -> Piano
    ]
    song = read_midi(write_fixture_midi(tmp_path / "programs.mid", parts))
    on = {(int(t), int(p) + LOWEST_PITCH) for _, p, t in zip(*np.nonzero(song.roll), strict=True)}
    assert on == {(GUITAR, 64), (BASS, 40), (STRINGS, 72), (STRINGS, 74), (PIANO, 80)}


def test_program_change_applies_from_the_next_note(tmp_path):
    part = Part(
        program=0,
        notes=[(60, 0, 1), (62, 2, 3)],
        extra=[(1.5, mido.Message("program_change", channel=0, program=26))],
    )
    song = read_midi(write_fixture_midi(tmp_path / "switch.mid", [part]))
    assert on_runs(song, PIANO, 60) == [(0, 12)] and on_runs(song, PIANO, 62) == []
    assert on_runs(song, GUITAR, 62) == [(24, 36)]


def test_drums_are_onsets_of_drum_note_steps(tmp_path):
    drums = Part(
        program=30,  # the program of channel 10 does not matter: it is the drum kit
        channel=9,
        notes=[(36, 0, 2), (38, 1, 1.01), (42, 2, 2.5), (42, 2.25, 3)],
    )
    song = read_midi(write_fixture_midi(tmp_path / "drums.mid", [drums]))
    assert on_runs(song, DRUMS, 36) == [(0, DRUM_NOTE_STEPS)]
    assert on_runs(song, DRUMS, 38) == [(12, 12 + DRUM_NOTE_STEPS)]
    # two hits 3 steps apart touch and read as one run (back-to-back hits of one drum merge)
    assert on_runs(song, DRUMS, 42) == [(24, 27 + DRUM_NOTE_STEPS)]
    assert song.roll[:, :, GUITAR].sum() == 0


def test_notes_outside_the_pitch_range_are_dropped(tmp_path, caplog):
    path = write_fixture_midi(
        tmp_path / "range.mid", [Part(notes=[(23, 0, 1), (24, 0, 1), (107, 1, 2), (108, 1, 2)])]
    )
    with caplog.at_level(logging.DEBUG, logger="musegan_live.files.midi_read"):
        song = read_midi(path)
    assert song.roll[:, :, PIANO].sum(axis=0).nonzero()[0].tolist() == [0, 83]
    assert song.roll.sum() == 24
    assert "2 notes outside pitch 24..107" in caplog.text


def test_only_out_of_range_or_dropped_notes_means_no_usable_tracks(tmp_path):
    for name, part in [
        ("fx.mid", Part(program=100, notes=[(60, 0, 1)])),
        ("low.mid", Part(program=0, notes=[(12, 0, 1)])),
    ]:
        with pytest.raises(MidiFileError) as info:
            read_midi(write_fixture_midi(tmp_path / name, [part]))
        assert info.value.reason == "no_usable_tracks"


def test_type_0_and_type_1_read_the_same(tmp_path):
    parts = [
        Part(program=0, channel=0, notes=[(60, 0, 1), (64, 1, 3)]),
        Part(program=34, channel=1, notes=[(36, 0, 4)]),
        Part(program=None, channel=9, notes=[(36, 0, 0.25), (38, 1, 1.25)]),
    ]
    kwargs = {"tempo_changes": [(0, 100), (2, 130)], "time_signatures": [(0, 4, 4)]}
    type0 = read_midi(write_fixture_midi(tmp_path / "t0.mid", parts, file_type=0, **kwargs))
    type1 = read_midi(write_fixture_midi(tmp_path / "t1.mid", parts, file_type=1, **kwargs))
    assert mido.MidiFile(type0.source).type == 0 and mido.MidiFile(type1.source).type == 1
    np.testing.assert_array_equal(type0.roll, type1.roll)
    np.testing.assert_array_equal(type0.velocity, type1.velocity)
    assert type0.roll[:, :, [DRUMS, PIANO, BASS]].any(axis=(0, 1)).all()
    assert type0.tempo_bpm == pytest.approx(100)


def test_a_note_without_note_off_lasts_to_the_end_of_its_track(tmp_path):
    part = Part(notes=[], extra=[(1, mido.Message("note_on", note=60, velocity=80))])
    path = write_fixture_midi(tmp_path / "hanging.mid", [part], end_beats=6)
    song = read_midi(path)
    assert on_runs(song, PIANO, 60) == [(12, 72)]


@pytest.mark.parametrize("make", [write_corrupt_midi, write_zero_byte_file], ids=["bytes", "0B"])
def test_unreadable_files_are_corrupt(tmp_path, make):
    path = make(tmp_path / "bad.mid")
    with pytest.raises(MidiFileError) as info:
        read_midi(path)
    assert info.value.reason == "corrupt" and str(path) in str(info.value)
    assert info.value.__cause__ is not None


def test_missing_file_says_so(tmp_path):
    with pytest.raises(MidiFileError, match="no such file") as info:
        read_midi(tmp_path / "nope.mid")
    assert info.value.reason == "corrupt"


def test_file_without_notes_is_empty(tmp_path):
    path = write_fixture_midi(
        tmp_path / "silent.mid", [Part(notes=[])], time_signatures=[(0, 3, 4)]
    )
    with pytest.raises(MidiFileError) as info:
        read_midi(path)
    assert info.value.reason == "empty"


# --- beat annotations -----------------------------------------------------------------------
def test_annotations_put_a_rubato_performance_on_the_grid(tmp_path):
    beats = rubato_beats_seconds(16, seed=3, start_seconds=0.9)
    downbeats = beats[1::4]  # a one-beat pickup before the first downbeat
    # in annotated beats: pickup at beat 0, then notes on beats 1, 2.5, 6 and a 16th at 9.25
    notes = [(55, 0, 1), (60, 1, 2), (62, 2.5, 3), (64, 6, 8), (67, 9.25, 9.5)]
    played = rubato_part(Part(notes=notes), beats)
    # The file's own meter (3/4, and its fixed 120 bpm) is ignored when annotations are given.
    path = write_fixture_midi(tmp_path / "rubato.mid", [played], time_signatures=[(0, 3, 4)])
    song = read_midi(path, beats_seconds=beats, downbeats_seconds=downbeats)
    assert on_runs(song, PIANO, 60) == [(0, 12)]
    assert on_runs(song, PIANO, 62) == [(18, 24)]
    assert on_runs(song, PIANO, 64) == [(60, 84)]
    assert on_runs(song, PIANO, 67) == [(99, 102)]
    # the pickup before the first annotated downbeat is not in the roll
    assert on_runs(song, PIANO, 55) == []
    assert song.n_bars == 3
    first_bar_seconds = beats[5] - beats[1]
    assert song.tempo_bpm == pytest.approx(60 * 4 / first_bar_seconds)
    # without annotations the same file is refused for its 3/4 meta event
    with pytest.raises(MidiFileError):
        read_midi(path)


def test_annotations_decide_the_meter(tmp_path):
    path = write_fixture_midi(tmp_path / "x.mid", [Part(notes=[(60, 0, 1)])])
    beats = [0.5 * i for i in range(12)]
    with pytest.raises(MidiFileError) as info:
        read_midi(path, beats_seconds=beats, downbeats_seconds=beats[::3])
    assert info.value.reason == "not_4_4" and "3 beats" in str(info.value)


def test_malformed_annotations_are_data_errors(tmp_path):
    path = write_fixture_midi(tmp_path / "x.mid", [Part(notes=[(60, 0, 1)])])
    with pytest.raises(DataFileError, match="increase"):
        read_midi(path, beats_seconds=[0, 1, 0.5, 2], downbeats_seconds=[0])
    with pytest.raises(DataFileError, match="not one of the annotated beats"):
        read_midi(path, beats_seconds=[0, 1, 2, 3], downbeats_seconds=[1.5])
    with pytest.raises(ValueError, match="both"):
        read_midi(path, beats_seconds=[0, 1, 2, 3])


def test_read_pop909_beats(tmp_path):
    text = "".join(
        f"{0.05 + 0.5 * i:.6f} {float(i % 2 == 0)} {float(i % 4 == 0)}\n" for i in range(10)
    )
    beat_file = tmp_path / "beat_midi.txt"
    beat_file.write_text(text + "\n")
    beats, downbeats = read_pop909_beats(beat_file)
    assert beats == pytest.approx([0.05 + 0.5 * i for i in range(10)])
    assert downbeats == pytest.approx([0.05, 2.05, 4.05])

    beat_file.write_text("0.1 1.0\n")
    with pytest.raises(DataFileError, match="line 1"):
        read_pop909_beats(beat_file)
    with pytest.raises(DataFileError, match="cannot read"):
        read_pop909_beats(tmp_path / "missing.txt")


@pytest.mark.skipif(not (DATA / "pop909" / "001").is_dir(), reason="shared POP909 data absent")
def test_real_pop909_song_with_its_beat_annotations():
    song_dir = DATA / "pop909" / "001"
    beats, downbeats = read_pop909_beats(song_dir / "beat_midi.txt")
    song = read_midi(song_dir / "001.mid", beats_seconds=beats, downbeats_seconds=downbeats)
    assert song.n_bars == len(downbeats)
    assert song.roll[:, :, PIANO].any() and not song.roll[:, :, [DRUMS, GUITAR, BASS]].any()
    # its MIDI meta says 2/4: without annotations the file is refused
    with pytest.raises(MidiFileError):
        read_midi(song_dir / "001.mid")


def test_a_note_absurdly_far_away_is_refused_as_corrupt(tmp_path):
    far_beat = 4 * (MAX_BARS + 1)
    path = write_fixture_midi(
        tmp_path / "far.mid", [Part(notes=[(60, 0, 1), (62, far_beat, far_beat + 1)])]
    )
    with pytest.raises(MidiFileError, match="bar limit") as info:
        read_midi(path)
    assert info.value.reason == "corrupt"
