"""Song roll -> MIDI: file layout, velocities, drums, and exact round trips."""

from __future__ import annotations

import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musegan_live.errors import MidiFileError
from musegan_live.files.midi_read import read_midi
from musegan_live.files.midi_write import roll_to_midi, write_midi
from musegan_live.representation import (
    BASS,
    DRUM_CHANNEL,
    DRUM_NOTE_STEPS,
    DRUMS,
    GUITAR,
    LOWEST_PITCH,
    N_PITCHES,
    PIANO,
    STEPS_PER_BAR,
    STRINGS,
    TRACK_NAMES,
)
from tests.midi_fixtures import Part, write_fixture_midi


def empty_roll(n_bars: int, n_tracks: int = 5) -> np.ndarray:
    return np.zeros((n_bars * STEPS_PER_BAR, N_PITCHES, n_tracks), dtype=bool)


def notes_of(track: mido.MidiTrack) -> list[tuple[int, int, int, int, int]]:
    """(channel, pitch, on_tick, off_tick, velocity) of every note in a track."""
    now, open_notes, notes = 0, {}, []
    for msg in track:
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            open_notes[(msg.channel, msg.note)] = (now, msg.velocity)
        elif msg.type in ("note_on", "note_off"):
            start, velocity = open_notes.pop((msg.channel, msg.note))
            notes.append((msg.channel, msg.note, start, now, velocity))
    assert not open_notes, "every note-on must have its note-off"
    return sorted(notes)


def test_file_layout_conductor_names_programs_channels(tmp_path):
    roll = empty_roll(2)
    roll[0:12, 60 - LOWEST_PITCH, PIANO] = True
    roll[0:3, 36 - LOWEST_PITCH, DRUMS] = True
    roll[12:60, 40 - LOWEST_PITCH, BASS] = True
    midi = roll_to_midi(roll, tempo_bpm=96.0)
    assert midi.type == 1 and midi.ticks_per_beat == 480
    conductor = midi.tracks[0]
    tempos = [m for m in conductor if m.type == "set_tempo"]
    signatures = [m for m in conductor if m.type == "time_signature"]
    assert [round(mido.tempo2bpm(m.tempo), 3) for m in tempos] == [96.0]
    assert [(m.numerator, m.denominator) for m in signatures] == [(4, 4)]
    # one track per non-empty roll track, in representation order (guitar and strings empty)
    assert [t.name for t in midi.tracks[1:]] == ["Drums", "Piano", "Bass"]
    programs = {
        t.name: [(m.channel, m.program) for m in t if m.type == "program_change"]
        for t in midi.tracks[1:]
    }
    assert programs == {"Drums": [(DRUM_CHANNEL, 0)], "Piano": [(0, 0)], "Bass": [(2, 33)]}
    assert notes_of(midi.tracks[2]) == [(0, 60, 0, 480, 100)]
    assert notes_of(midi.tracks[1]) == [(DRUM_CHANNEL, 36, 0, 120, 100)]
    assert notes_of(midi.tracks[3]) == [(2, 40, 480, 2400, 100)]
    # every track lasts the whole roll (2 bars = 3840 ticks), so trailing silence survives
    assert all(sum(m.time for m in t) == 2 * 4 * 480 for t in midi.tracks)


def test_programs_and_track_subsets(tmp_path):
    roll = empty_roll(1, n_tracks=2)
    roll[0:6, 50 - LOWEST_PITCH, 0] = True
    roll[0:6, 70 - LOWEST_PITCH, 1] = True
    midi = roll_to_midi(roll, tracks=[STRINGS, GUITAR], programs=[41, 27])
    assert [t.name for t in midi.tracks[1:]] == ["Strings", "Guitar"]
    changes = [
        [(m.channel, m.program) for m in t if m.type == "program_change"] for t in midi.tracks[1:]
    ]
    assert changes == [[(3, 41)], [(1, 27)]]
    song = read_midi(_save(tmp_path / "subset.mid", midi))
    assert song.roll[:6, 50 - LOWEST_PITCH, STRINGS].all()
    assert song.roll[:6, 70 - LOWEST_PITCH, GUITAR].all()


def test_velocity_per_track_and_per_cell(tmp_path):
    roll = empty_roll(1, n_tracks=2)
    roll[0:12, 60 - LOWEST_PITCH, 0] = True
    roll[24:36, 62 - LOWEST_PITCH, 1] = True
    per_track = roll_to_midi(roll, tracks=[PIANO, BASS], velocity=[30, 110])
    assert [n[4] for t in per_track.tracks[1:] for n in notes_of(t)] == [30, 110]

    cells = np.zeros(roll.shape, dtype=np.uint8)
    cells[0:12, 60 - LOWEST_PITCH, 0] = 77  # the onset cell decides
    cells[5, 60 - LOWEST_PITCH, 0] = 5
    per_cell = roll_to_midi(roll, tracks=[PIANO, BASS], velocity=cells)
    # a zero cell under a note (no velocity known) plays at the default 100
    assert [n[4] for t in per_cell.tracks[1:] for n in notes_of(t)] == [77, 100]


def test_drum_runs_become_hits_every_drum_note_steps():
    roll = empty_roll(1, n_tracks=1)
    roll[0:6, 36 - LOWEST_PITCH, 0] = True  # two touching hits
    roll[12:16, 38 - LOWEST_PITCH, 0] = True  # a hit and a one-step hit
    roll[24:25, 42 - LOWEST_PITCH, 0] = True  # a single short hit
    midi = roll_to_midi(roll, tracks=[DRUMS], ticks_per_beat=120)
    tps = 10  # ticks per step at 120 ticks per beat
    assert notes_of(midi.tracks[1]) == [
        (9, 36, 0, DRUM_NOTE_STEPS * tps, 100),
        (9, 36, 3 * tps, 6 * tps, 100),
        (9, 38, 12 * tps, 15 * tps, 100),
        (9, 38, 15 * tps, 16 * tps, 100),
        (9, 42, 24 * tps, 25 * tps, 100),
    ]


def test_fixture_midi_round_trips_through_roll(tmp_path):
    parts = [
        Part(program=0, channel=0, notes=[(60, 0, 1, 90), (64, 0.5, 3, 40), (60, 2, 2.25, 127)]),
        Part(program=26, channel=1, notes=[(52, 1, 5, 64)]),
        Part(program=34, channel=2, notes=[(28, 0, 8), (107, 7.5, 8)]),
        Part(program=49, channel=3, notes=[(72, 4, 7.75, 20)]),
        Part(program=None, channel=9, notes=[(36, 0, 0.1, 120), (36, 0.25, 0.3), (42, 1, 2, 60)]),
    ]
    path = write_fixture_midi(tmp_path / "in.mid", parts, tempo_changes=[(0, 87.5)])
    first = read_midi(path)
    out = tmp_path / "out" / "again.mid"
    write_midi(out, first.roll, velocity=first.velocity, tempo_bpm=first.tempo_bpm)
    second = read_midi(out)
    np.testing.assert_array_equal(second.roll, first.roll)
    np.testing.assert_array_equal(second.velocity, first.velocity)
    assert second.tempo_bpm == pytest.approx(87.5, abs=1e-3)


def trimmed_like_the_reader(roll: np.ndarray) -> np.ndarray:
    """What reading a written roll gives: leading empty bars skipped, trailing ones dropped."""
    active_bars = roll.reshape(-1, STEPS_PER_BAR, *roll.shape[1:]).any(axis=(1, 2, 3))
    first, last = np.flatnonzero(active_bars)[[0, -1]]
    return roll[first * STEPS_PER_BAR : (last + 1) * STEPS_PER_BAR]


@st.composite
def pitched_rolls(draw) -> np.ndarray:
    n_bars = draw(st.integers(1, 3))
    n_steps = n_bars * STEPS_PER_BAR
    roll = empty_roll(n_bars)
    notes = draw(
        st.lists(
            st.tuples(
                st.integers(PIANO, STRINGS),
                st.integers(0, N_PITCHES - 1),
                st.integers(0, n_steps - 1),
                st.integers(1, 40),
            ),
            min_size=1,
            max_size=40,
        )
    )
    for track, pitch, start, length in notes:
        roll[start : start + length, pitch, track] = True
    return roll


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(roll=pitched_rolls(), tempo_bpm=st.floats(40, 240), tpb=st.sampled_from([96, 480, 960]))
def test_random_pitched_rolls_round_trip_exactly(tmp_path_factory, roll, tempo_bpm, tpb):
    path = tmp_path_factory.mktemp("rt") / "roll.mid"
    write_midi(path, roll, tempo_bpm=tempo_bpm, ticks_per_beat=tpb)
    song = read_midi(path)
    np.testing.assert_array_equal(song.roll, trimmed_like_the_reader(roll))
    assert song.tempo_bpm == pytest.approx(tempo_bpm, rel=1e-5)
    # and once more: MIDI -> roll -> MIDI -> roll is a fixed point
    write_midi(path, song.roll, tempo_bpm=song.tempo_bpm, ticks_per_beat=tpb)
    np.testing.assert_array_equal(read_midi(path).roll, song.roll)


def test_write_midi_is_atomic_and_replaces(tmp_path):
    roll = empty_roll(1)
    roll[0:12, 30, PIANO] = True
    target = tmp_path / "deep" / "er" / "song.mid"
    write_midi(target, roll)
    roll[0:12, 31, PIANO] = True
    write_midi(target, roll)  # overwrites in place
    assert sorted(p.name for p in target.parent.iterdir()) == ["song.mid"]
    assert read_midi(target).roll[:12, 30:32, PIANO].all()


def test_write_midi_reports_an_unwritable_place(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(MidiFileError, match="cannot write"):
        write_midi(blocker / "song.mid", empty_roll(1))


@pytest.mark.parametrize(
    ("roll", "kwargs", "message"),
    [
        (np.zeros((48, 84, 5), dtype=np.float32), {}, "threshold"),
        (np.zeros((48, 128, 5), dtype=bool), {}, "84"),
        (np.zeros((48, 84, 2), dtype=bool), {}, "tracks"),
        (np.zeros((48, 84, 2), dtype=bool), {"tracks": [1, 1]}, "distinct"),
        (np.zeros((48, 84, 5), dtype=bool), {"ticks_per_beat": 100}, "multiple of 12"),
        (np.zeros((48, 84, 5), dtype=bool), {"tempo_bpm": 0.0}, "tempo_bpm"),
        (np.zeros((48, 84, 5), dtype=bool), {"velocity": 0}, "1..127"),
        (np.zeros((48, 84, 5), dtype=bool), {"velocity": [1, 2]}, "one per track"),
        (np.zeros((48, 84, 5), dtype=bool), {"programs": [0, 1]}, "programs"),
    ],
)
def test_bad_arguments_say_what_is_wrong(roll, kwargs, message):
    with pytest.raises(ValueError, match=message):
        roll_to_midi(roll, **kwargs)


def test_integer_rolls_are_accepted():
    roll = np.zeros((48, 84, 1), dtype=np.uint8)
    roll[0:4, 10, 0] = 1
    midi = roll_to_midi(roll, tracks=[PIANO])
    assert notes_of(midi.tracks[1]) == [(0, 10 + LOWEST_PITCH, 0, 160, 100)]
    assert TRACK_NAMES[PIANO] == midi.tracks[1].name


def _save(path, midi: mido.MidiFile):
    midi.save(path)
    return path
