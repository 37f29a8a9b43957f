"""Song rolls -> .npy, pypianoroll .npz (loaded back with pypianoroll) and .png pictures."""

from __future__ import annotations

import numpy as np
import pytest

from musegan_live.errors import DataFileError
from musegan_live.files.roll_files import TRACK_COLOURS, save_npy, save_png, save_pypianoroll_npz
from musegan_live.representation import (
    BASS,
    DRUMS,
    GUITAR,
    LOWEST_PITCH,
    N_PITCHES,
    PIANO,
    STEPS_PER_BAR,
    STRINGS,
    TRACK_NAMES,
    TRACK_PROGRAMS,
)


def demo_roll(n_bars: int = 2) -> np.ndarray:
    roll = np.zeros((n_bars * STEPS_PER_BAR, N_PITCHES, 5), dtype=bool)
    roll[0:24, 60 - LOWEST_PITCH, PIANO] = True
    roll[0:3, 36 - LOWEST_PITCH, DRUMS] = True
    roll[24:27, 38 - LOWEST_PITCH, DRUMS] = True
    roll[48:90, 40 - LOWEST_PITCH, BASS] = True
    roll[12:60, 76 - LOWEST_PITCH, STRINGS] = True
    return roll


def test_save_npy_round_trip(tmp_path):
    roll = demo_roll()
    target = tmp_path / "a" / "b" / "roll.npy"
    save_npy(target, roll)
    loaded = np.load(target, allow_pickle=False)
    assert loaded.dtype == np.bool_
    np.testing.assert_array_equal(loaded, roll)
    assert [p.name for p in target.parent.iterdir()] == ["roll.npy"]


def test_pypianoroll_npz_loads_back_with_pypianoroll(tmp_path):
    pypianoroll = pytest.importorskip("pypianoroll")
    roll = demo_roll()
    velocity = np.where(roll, 90, 0).astype(np.uint8)
    velocity[0:24, 60 - LOWEST_PITCH, PIANO] = 33
    path = tmp_path / "song.npz"
    save_pypianoroll_npz(path, roll, tempo_bpm=97.0, velocity=velocity)

    multitrack = pypianoroll.load(path)
    multitrack.validate()
    assert multitrack.resolution == 12
    assert multitrack.tempo.shape == (roll.shape[0],) and (multitrack.tempo == 97.0).all()
    assert np.flatnonzero(multitrack.downbeat).tolist() == [0, STEPS_PER_BAR]
    assert [t.name for t in multitrack.tracks] == list(TRACK_NAMES)
    assert [t.program for t in multitrack.tracks] == list(TRACK_PROGRAMS)
    assert [t.is_drum for t in multitrack.tracks] == [True, False, False, False, False]
    padded = np.zeros((roll.shape[0], 128, 5), dtype=bool)
    padded[:, LOWEST_PITCH : LOWEST_PITCH + N_PITCHES] = roll
    loaded = np.stack([t.pianoroll for t in multitrack.tracks], axis=-1)
    np.testing.assert_array_equal(loaded > 0, padded)
    assert (loaded[0:24, 60, PIANO] == 33).all() and (loaded[48:90, 40, BASS] == 90).all()

    # The path pypianoroll's 2-D tempo breaks under numpy >= 2.4: writing MIDI from the file.
    pm = multitrack.to_pretty_midi()
    assert pm.estimate_tempo() > 0 and pm.get_tempo_changes()[1][0] == pytest.approx(97.0)
    piano = next(i for i in pm.instruments if i.name == "Piano")
    assert [(n.pitch, n.velocity) for n in piano.notes] == [(60, 33)]


def test_pypianoroll_npz_with_track_subset_and_odd_name(tmp_path):
    pypianoroll = pytest.importorskip("pypianoroll")
    roll = demo_roll()[:, :, [GUITAR, BASS]]
    path = tmp_path / "out" / "two_tracks.pianoroll"  # numpy would append .npz to such a name
    save_pypianoroll_npz(path, roll, tracks=[GUITAR, BASS], velocity=[50, 60])
    assert [p.name for p in path.parent.iterdir()] == ["two_tracks.pianoroll"]
    multitrack = pypianoroll.load(path)
    assert [t.name for t in multitrack.tracks] == ["Guitar", "Bass"]
    assert multitrack.tracks[1].pianoroll.max() == 60 and not multitrack.tracks[0].pianoroll.any()


def _png(path):
    from matplotlib.image import imread

    return imread(path)[..., :3]


def _has_colour(image: np.ndarray, colour: str) -> bool:
    rgb = np.asarray([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return bool((np.abs(image - rgb).max(axis=-1) < 0.02).any())


def test_png_of_a_song_shows_each_track_in_its_colour(tmp_path):
    roll = demo_roll(n_bars=6)  # 6 bars -> two 4-bar phrases side by side on one line
    path = tmp_path / "pics" / "song.png"
    save_png(path, roll)
    image = _png(path)
    # 2 panels of 192 steps + gaps + label margin; 5 strips of 84 pitches + separators + gaps
    assert image.shape[1] == 64 + 2 * 192 + 3 * 8
    assert image.shape[0] == 5 * 84 + 4 + 2 * 8
    for track in (DRUMS, PIANO, BASS, STRINGS):
        assert _has_colour(image, TRACK_COLOURS[track]), TRACK_NAMES[track]
    assert not _has_colour(image[:, 64:], TRACK_COLOURS[GUITAR])  # guitar is silent
    assert [p.name for p in path.parent.iterdir()] == ["song.png"]


def test_png_notes_sit_at_their_time_and_pitch(tmp_path):
    roll = np.zeros((4 * STEPS_PER_BAR, N_PITCHES, 1), dtype=bool)
    roll[60:72, 10, 0] = True  # bar 2, beat 2; pitch index 10
    path = tmp_path / "one.png"
    save_png(path, roll, tracks=[BASS])
    image = _png(path)[:, 64:]  # right of the track labels (written in the track's colour)
    bass = np.asarray([0xFF, 0x7F, 0x0E]) / 255
    ys, xs = np.nonzero(np.abs(image - bass).max(axis=-1) < 0.02)
    # gap 8 before the panel; pitch grows upward from the strip's bottom row (gap 8 + 83)
    assert sorted(set(xs.tolist())) == list(range(8 + 60, 8 + 72))
    assert set(ys.tolist()) == {8 + 83 - 10}


def test_png_grid_of_phrases_with_title(tmp_path):
    phrases = np.zeros((5, 4, 48, N_PITCHES, 5), dtype=bool)
    phrases[:, 0, :6, 30, GUITAR] = True
    plain, titled = tmp_path / "grid.png", tmp_path / "titled.png"
    save_png(plain, phrases, columns=3)
    save_png(titled, phrases, columns=3, title="epoch 12")
    grid = _png(plain)
    assert grid.shape[:2] == (2 * (5 * 84 + 4) + 3 * 8, 64 + 3 * 192 + 4 * 8)
    assert _png(titled).shape[0] == grid.shape[0] + 28
    assert _has_colour(grid, TRACK_COLOURS[GUITAR])
    assert not _has_colour(grid[:, 64:], TRACK_COLOURS[PIANO])


def test_png_of_an_empty_roll_has_no_notes_but_a_grid(tmp_path):
    path = tmp_path / "empty.png"
    save_png(path, np.zeros((48, N_PITCHES, 5), dtype=bool))
    image = _png(path)[:, 64:]
    assert not any(_has_colour(image, c) for c in TRACK_COLOURS)
    assert (image < 0.7).any()  # bar lines and track separators are drawn


def test_png_probabilities_are_shaded(tmp_path):
    phrase = np.zeros((4, 48, N_PITCHES, 1), dtype=np.float32)
    phrase[0, 0:6, 40, 0] = 1.0
    phrase[0, 12:18, 40, 0] = 0.5
    path = tmp_path / "p.png"
    save_png(path, phrase, tracks=[PIANO])
    row = _png(path)[8 + 83 - 40, 64 + 8 :]
    full, half = row[2], row[14]
    assert np.allclose(full, np.asarray([0x1F, 0x77, 0xB4]) / 255, atol=0.02)
    assert (half > full).all() and (half < 1).any()


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="rolls has shape"):
        save_png(tmp_path / "x.png", np.zeros((10, 84)))
    with pytest.raises(ValueError, match="tracks"):
        save_png(tmp_path / "x.png", np.zeros((48, 84, 2), dtype=bool))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DataFileError, match="cannot write"):
        save_npy(blocker / "x.npy", np.zeros(3))
