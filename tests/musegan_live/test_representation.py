"""The representation contract: constants, merge rule, phrase cutting, LPD-5 sparse files."""

import os
import stat

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegan_live import representation as rep
from musegan_live.errors import DataFileError


def test_constants_match_the_shared_design():
    assert rep.TRACK_NAMES == ("Drums", "Piano", "Guitar", "Bass", "Strings")
    assert rep.PHRASE_SHAPE == (4, 48, 84, 5)
    assert (rep.LOWEST_PITCH, rep.HIGHEST_PITCH) == (24, 107)
    # One step is two MIDI clock ticks; a bar is 96 ticks; one SPP unit is 3 steps.
    assert (rep.TICKS_PER_STEP, rep.TICKS_PER_BAR, rep.STEPS_PER_SPP_UNIT) == (2, 96, 3)
    assert rep.DRUM_CHANNEL == 9


@pytest.mark.parametrize(
    ("program", "is_drum", "track"),
    [
        (0, True, rep.DRUMS),  # any drum track, whatever its program
        (0, False, rep.PIANO),
        (7, False, rep.PIANO),
        (24, False, rep.GUITAR),
        (31, False, rep.GUITAR),
        (33, False, rep.BASS),
        (8, False, rep.STRINGS),  # chromatic percussion counts as strings under 'max'
        (48, False, rep.STRINGS),
        (95, False, rep.STRINGS),
        (96, False, None),  # synth effects are dropped
        (103, False, None),
        (104, False, rep.STRINGS),
        (111, False, rep.STRINGS),
        (112, False, None),
        (127, False, None),
    ],
)
def test_lpd5_merge_rule(program, is_drum, track):
    assert rep.lpd5_track_for_program(program, is_drum) == track


def test_track_index_is_case_insensitive_and_names_the_choices():
    assert rep.track_index(" piano ") == rep.PIANO
    with pytest.raises(ValueError, match="Drums, Piano"):
        rep.track_index("banjo")
    assert rep.other_tracks(rep.PIANO) == [0, 2, 3, 4]


def test_phrase_cutting_with_hop_and_back():
    n_bars = 9
    roll = np.zeros((n_bars * 48, 84, 5), dtype=bool)
    for bar in range(n_bars):
        roll[bar * 48, bar, 1] = True  # bar k holds pitch index k on its first step
    phrases = rep.steps_to_phrases(roll, hop_bars=2)
    assert phrases.shape == (3, 4, 48, 84, 5)  # starts at bars 0, 2, 4 (6 would need bar 9)
    assert phrases[1, 0, 0, 2, 1] and phrases[2, 3, 0, 7, 1]
    assert np.array_equal(rep.phrases_to_steps(phrases[:1]), roll[: 4 * 48])
    assert rep.steps_to_phrases(roll[:100]).shape == (0, 4, 48, 84, 5)


@pytest.mark.parametrize("seed", range(5))
def test_drum_hits_step_by_step_cut_runs_as_roll_notes_does(seed):
    roll = np.random.default_rng(seed).random((200, 84)) < 0.4  # runs of many lengths
    starts, _, pitches = rep.roll_notes(roll, drums=True)
    expected = np.zeros_like(roll)
    expected[starts, pitches] = True
    previous, into = np.zeros(84, dtype=bool), np.zeros(84, dtype=np.int64)
    for step, notes in enumerate(roll):
        hits, into = rep.drum_hits(notes, previous, into)
        assert np.array_equal(hits, expected[step]), step
        previous = notes


def test_roll_checks_name_the_array_and_the_shapes_accepted():
    roll = rep.check_roll(np.zeros((3, 84, 2)), "roll", ("n_steps", 84, "tracks"))
    assert roll.shape == (3, 84, 2)
    with pytest.raises(ValueError, match=r"z has shape \(1, 5\); expected \[1, 8\] or \[8\]"):
        rep.check_roll(np.zeros((1, 5)), "z", (1, 8), (8,))
    assert rep.check_track_slices([1, 1], 2) == (1, 1)
    with pytest.raises(ValueError, match="distinct"):
        rep.check_track_slices([1, 1], 2, distinct=True)
    with pytest.raises(ValueError, match="one representation track index per slice"):
        rep.check_track_slices([1], 2)
    with pytest.raises(ValueError, match=r"track indices \[7\]"):
        rep.check_track_slices([7], 1)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 6), st.integers(0, 2**32 - 1))
def test_sparse_npz_round_trip(tmp_path_factory, n_phrases, seed):
    data = np.random.default_rng(seed).random((n_phrases, *rep.PHRASE_SHAPE)) > 0.999
    path = tmp_path_factory.mktemp("npz") / "train.npz"
    rep.save_sparse_npz(path, data)
    loaded = rep.load_sparse_npz(path)
    assert len(loaded) == n_phrases
    assert np.array_equal(loaded.dense(), data)
    if n_phrases:
        assert np.array_equal(loaded.phrase(n_phrases - 1), data[-1])


def test_sparse_file_is_the_lpd5_layout(tmp_path):
    data = np.zeros((2, *rep.PHRASE_SHAPE), dtype=bool)
    data[1, 2, 3, 4, 0] = True
    rep.save_sparse_npz(tmp_path / "x.npz", data)
    with np.load(tmp_path / "x.npz") as f:
        assert sorted(f.files) == ["nonzero", "shape"]
        restored = np.zeros(tuple(f["shape"]), dtype=bool)
        restored[tuple(f["nonzero"])] = True  # how LPD-5 users load it
    assert np.array_equal(restored, data)


def test_malformed_sparse_files_say_what_is_wrong(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        rep.load_sparse_npz(tmp_path / "missing.npz")
    np.savez_compressed(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataFileError, match="'shape' and 'nonzero'"):
        rep.load_sparse_npz(tmp_path / "other.npz")
    np.savez_compressed(tmp_path / "wrong.npz", shape=[2, 4, 96, 84, 5], nonzero=np.zeros((5, 0)))
    with pytest.raises(DataFileError, match="48 steps"):
        rep.load_sparse_npz(tmp_path / "wrong.npz")
    out_of_bounds = [[3], [0], [0], [0], [0]]
    np.savez_compressed(tmp_path / "oob.npz", shape=[1, 4, 48, 84, 5], nonzero=out_of_bounds)
    with pytest.raises(DataFileError, match="outside"):
        rep.load_sparse_npz(tmp_path / "oob.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFileError):
        rep.load_sparse_npz(tmp_path / "junk.npz")


def test_written_files_get_ordinary_permissions_and_no_leftovers(tmp_path):
    old_umask = os.umask(0o022)
    try:
        rep.save_sparse_npz(tmp_path / "x.npz", np.zeros((1, *rep.PHRASE_SHAPE), dtype=bool))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "x.npz").stat().st_mode) == 0o644  # not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]
