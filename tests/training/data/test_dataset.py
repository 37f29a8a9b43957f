"""Training batches (training/data/dataset.py): "now" masks, dropped conditions, transposition,
key changes at bar lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from musegan_live.errors import DataFileError
from musegan_live.representation import (
    DRUMS,
    N_PITCHES,
    PHRASE_SHAPE,
    STEPS_PER_PHRASE,
    save_sparse_npz,
)
from training.data.dataset import (
    NowDistribution,
    PhraseSampler,
    known_mask_from_now,
    modulate_phrase,
    synthetic_phrases,
    transpose_phrase,
)


def test_known_mask_marks_steps_before_now() -> None:
    mask = known_mask_from_now(np.array([0, 1, 49, STEPS_PER_PHRASE]))
    assert mask.shape == (4, 4, 48) and mask.dtype == np.float32
    assert mask[0].sum() == 0 and mask[3].sum() == STEPS_PER_PHRASE
    assert mask[1, 0, 0] == 1 and mask[1, 0, 1] == 0
    assert mask[2, 1, 0] == 1 and mask[2, 1, 1] == 0 and mask[2, 0].all()


def test_sampler_drops_conditions_and_skips_empty_ones(tmp_path: Path) -> None:
    phrases = synthetic_phrases(20, seed=5)
    phrases[:10, ..., 1] = False  # half the phrases have no piano
    path = tmp_path / "data.npz"
    save_sparse_npz(path, phrases)
    sampler = PhraseSampler([(path, 1.0)], condition_track=1, condition_dropout=0.5)
    batch = sampler.sample(400, np.random.default_rng(0))
    assert batch.phrases.shape == (400, *PHRASE_SHAPE)
    kept = ~batch.dropped
    assert 0.4 < batch.dropped.mean() < 0.6
    assert (batch.known_mask[batch.dropped] == 0).all()
    # conditioned examples always have a piano; dropped ones may come from piano-less phrases
    assert batch.phrases[kept, ..., 1].any(axis=(1, 2, 3)).all()
    assert (~batch.phrases[batch.dropped, ..., 1].any(axis=(1, 2, 3))).any()
    heard = batch.known_mask[kept].reshape(kept.sum(), -1).sum(axis=1)
    assert heard.min() < 40 and heard.max() > 150  # "now" spread over the phrase


def test_sampler_without_condition_data_says_what_to_do(tmp_path: Path) -> None:
    phrases = synthetic_phrases(4, seed=6)
    phrases[..., 1] = False
    path = tmp_path / "nopiano.npz"
    save_sparse_npz(path, phrases)
    with pytest.raises(DataFileError, match="condition_dropout=1"):
        PhraseSampler([(path, 1.0)], condition_track=1, condition_dropout=0.1)
    PhraseSampler([(path, 1.0)], condition_track=1, condition_dropout=1.0)  # scratch-only is fine


def test_live_nows_fall_in_the_last_bar_mostly_on_beats() -> None:
    now = NowDistribution(live_share=0.6, full_share=0.2, on_beat_share=1.0, after_beat_steps=2)
    drawn = now.draw(np.random.default_rng(0), 20_000)
    assert drawn.min() >= 0 and drawn.max() <= STEPS_PER_PHRASE
    live = (drawn >= 144) & (drawn < STEPS_PER_PHRASE)
    full = drawn == STEPS_PER_PHRASE
    # the uniform share (0.2) puts a few of its draws in bar 4 and at 192 too
    assert 0.6 < live.mean() < 0.66 and 0.2 < full.mean() < 0.21
    # on a beat or at most 2 steps after it (bar 4 draws of the uniform share are anywhere)
    assert (drawn[live] % 12 <= 2).mean() > 0.9


def test_uniform_now_is_the_default() -> None:
    drawn = NowDistribution().draw(np.random.default_rng(1), 20_000)
    assert 0.2 < (drawn < 48).mean() < 0.3 and (drawn == STEPS_PER_PHRASE).mean() < 0.01


def _one_note_phrase(pitch: int) -> np.ndarray:
    """A phrase with one piano note at ``pitch`` (a pitch index) and one drum hit."""
    phrase = np.zeros(PHRASE_SHAPE, dtype=bool)
    phrase[0, 0:12, pitch, 1] = True
    phrase[0, 0, 14, DRUMS] = True
    return phrase


def test_transposition_moves_pitched_tracks_together_and_never_drums() -> None:
    phrase = synthetic_phrases(1, seed=3)[0]
    rng = np.random.default_rng(0)
    shifts = set()
    for _ in range(40):
        moved = phrase.copy()
        shift = transpose_phrase(moved, 5, rng)
        shifts.add(shift)
        assert -5 <= shift <= 5
        assert (moved[..., DRUMS] == phrase[..., DRUMS]).all()
        assert moved.sum() == phrase.sum()  # nothing falls off the range
        pitched = [t for t in range(PHRASE_SHAPE[-1]) if t != DRUMS]
        assert (moved[..., pitched] == np.roll(phrase[..., pitched], shift, axis=2)).all()
    assert len(shifts) > 5


@pytest.mark.parametrize(("pitch", "lowest", "highest"), [(0, 0, 5), (N_PITCHES - 1, -5, 0),
                                                         (2, -2, 5)])
def test_transposition_keeps_notes_in_range(pitch: int, lowest: int, highest: int) -> None:
    rng = np.random.default_rng(1)
    shifts = set()
    for _ in range(200):
        moved = _one_note_phrase(pitch)
        shift = transpose_phrase(moved, 5, rng)
        shifts.add(shift)
        assert moved[0, 0:12, pitch + shift, 1].all() and moved[..., 1].sum() == 12
    assert min(shifts) == lowest and max(shifts) == highest


def test_sampler_transposes_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "one.npz"
    save_sparse_npz(path, _one_note_phrase(40)[None])
    for semitones, expected in [(0, {40}), (3, {37, 38, 39, 40, 41, 42, 43})]:
        sampler = PhraseSampler([(path, 1.0)], condition_track=1, condition_dropout=0.0,
                                transpose_semitones=semitones)
        batch = sampler.sample(200, np.random.default_rng(2))
        pitches = set(np.flatnonzero(batch.phrases[..., 1].any(axis=(0, 1, 2))).tolist())
        assert pitches == expected


def test_a_file_of_its_own_transposition_moves_while_the_others_keep_their_keys(
        tmp_path: Path) -> None:
    kept, moved = tmp_path / "kept.npz", tmp_path / "moved.npz"
    save_sparse_npz(kept, _one_note_phrase(40)[None])
    save_sparse_npz(moved, _one_note_phrase(60)[None])
    sampler = PhraseSampler([(kept, 1.0), (moved, 1.0, 3)], condition_track=1,
                            condition_dropout=0.0, transpose_semitones=0)
    batch = sampler.sample(400, np.random.default_rng(2))
    pitches = set(np.flatnonzero(batch.phrases[..., 1].any(axis=(0, 1, 2))).tolist())
    assert pitches == {40, *range(57, 64)}


def _note_in_every_bar(pitch: int) -> np.ndarray:
    """A phrase with a piano note and a bass note a fifth below on beat 1 of each bar, a drum
    hit too."""
    phrase = np.zeros(PHRASE_SHAPE, dtype=bool)
    phrase[:, 0:12, pitch, 1] = True
    phrase[:, 0:12, pitch - 7, 3] = True
    phrase[:, 0, 14, DRUMS] = True
    return phrase


def test_a_modulation_moves_every_pitched_track_from_one_bar_line_on_and_nothing_before() -> None:
    rng = np.random.default_rng(4)
    bars, shifts = set(), set()
    for _ in range(300):
        phrase = _note_in_every_bar(40)
        bar, shift = modulate_phrase(phrase, rng)
        bars.add(bar)
        shifts.add(shift)
        for b in range(4):
            moved = shift if b >= bar else 0
            assert np.flatnonzero(phrase[b, 0, :, 1]).tolist() == [40 + moved]
            assert np.flatnonzero(phrase[b, 0, :, 3]).tolist() == [33 + moved]
            assert np.flatnonzero(phrase[b, 0, :, DRUMS]).tolist() == [14]
    assert bars == {1, 2, 3}
    assert shifts == set(range(-6, 7))  # every pitch class is reached, the tritone included


def test_sampler_modulates_only_its_share(tmp_path: Path) -> None:
    path = tmp_path / "one.npz"
    save_sparse_npz(path, _note_in_every_bar(40)[None])
    for share, low, high in [(0.0, 0.0, 0.0), (1.0, 0.85, 0.97)]:
        sampler = PhraseSampler([(path, 1.0)], condition_track=1, condition_dropout=0.0,
                                modulation_share=share)
        piano = sampler.sample(400, np.random.default_rng(5)).phrases[:, :, 0, :, 1]
        changed = (piano != piano[:, :1]).any(axis=(1, 2))  # a later bar is not in bar 1's key
        assert low <= changed.mean() <= high  # (a shift of 0 is drawn 1 time in 13)
