"""training.evaluation.live: the live masks, the 1-bar-late oracle, what the model may hear."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from musegan_live import metrics
from musegan_live.representation import BASS, GUITAR, PIANO, STEPS_PER_BAR, STRINGS
from tests.training.evaluation.fakes import (
    EchoAccompanist,
    LeakyEchoAccompanist,
    PastEchoAccompanist,
    band_phrases,
)
from training.evaluate import derangement
from training.evaluation import live as live_eval
from training.evaluation.checks import acceptance_checks
from training.evaluation.generation import with_accompaniment

OUTPUTS = [0, GUITAR, BASS, STRINGS]
ALL_TRACKS = list(range(5))


def repeating_phrases(n: int, seed: int) -> np.ndarray:
    """Band phrases whose bar 4 is a copy of bar 3 (every track)."""
    x = band_phrases(n, np.random.default_rng(seed))
    x[:, 3] = x[:, 2]
    return x


@pytest.mark.parametrize("beats", [0, 1, 2, 3, 4])
def test_live_mask_hears_bars_1_to_3_and_the_first_beats_of_bar_4(beats):
    mask = live_eval.live_known_mask(5, beats)
    assert mask.shape == (5, 4, STEPS_PER_BAR) and mask.dtype == np.float32
    assert np.all(mask[:, :3] == 1.0)
    np.testing.assert_array_equal(mask[:, 3, : 12 * beats], 1.0)
    np.testing.assert_array_equal(mask[:, 3, 12 * beats :], 0.0)


def test_live_mask_rejects_beats_outside_the_bar():
    with pytest.raises(ValueError, match="0..4"):
        live_eval.live_known_mask(1, 5)


def test_parse_live_beats_sorts_dedupes_and_rejects_bad_values():
    assert live_eval.parse_live_beats("0,1,2,3") == (0, 1, 2, 3)
    assert live_eval.parse_live_beats(" 3, 1,1 ") == (1, 3)
    assert live_eval.parse_live_beats("") == ()
    with pytest.raises(argparse.ArgumentTypeError, match="0..3"):
        live_eval.parse_live_beats("0,4")
    with pytest.raises(argparse.ArgumentTypeError, match="whole numbers"):
        live_eval.parse_live_beats("one")


def test_oracle_is_bar_3_accompaniment_against_bar_4_condition():
    real = band_phrases(3, np.random.default_rng(0))
    oracle = live_eval.one_bar_late(real, OUTPUTS)
    assert oracle.shape == (3, 1, STEPS_PER_BAR, 84, 5)
    np.testing.assert_array_equal(oracle[:, 0, ..., PIANO], real[:, 3, ..., PIANO])
    np.testing.assert_array_equal(oracle[:, 0][..., OUTPUTS], real[:, 2][..., OUTPUTS])


def test_oracle_of_a_phrase_whose_bar_3_equals_bar_4_scores_like_real():
    real = repeating_phrases(6, seed=1)
    live = live_eval.evaluate_live(EchoAccompanist(), real, real.copy(), np.zeros((6, 4)), [0])
    np.testing.assert_equal(live["references"]["oracle"], live["references"]["real"])  # NaN == NaN
    # ...while on phrases with changing chords it is below real (sanity of the fixture)
    changing = band_phrases(40, np.random.default_rng(2))
    oracle = metrics.summarize(live_eval.one_bar_late(changing, OUTPUTS), ALL_TRACKS, PIANO)
    real_bar4 = metrics.summarize(live_eval.planned_bar(changing), ALL_TRACKS, PIANO)
    late, same = (s["metrics"]["harmony_ratio"]["Bass"] for s in (oracle, real_bar4))
    assert late < same


def test_unheard_steps_of_bar_4_never_reach_the_model():
    """Changing bar 4's condition after the heard beats changes nothing the model plays, even for
    a model that ignores ``known_mask``; changing a heard step does."""
    real = band_phrases(4, np.random.default_rng(3))
    condition = real[..., PIANO]
    z = np.zeros((4, 4), np.float32)
    for beats in (0, 1, 2, 3):
        before = live_eval.live_accompaniment(LeakyEchoAccompanist(), condition, z, beats)
        changed = condition.copy()
        changed[:, 3, 12 * beats :] = np.random.default_rng(beats).random(
            changed[:, 3, 12 * beats :].shape) < 0.3
        after = live_eval.live_accompaniment(LeakyEchoAccompanist(), changed, z, beats)
        np.testing.assert_array_equal(before, after)
        if beats:  # a heard step does reach it
            heard_changed = condition.copy()
            heard_changed[:, 3, 0, 0] = True
            assert not np.array_equal(
                live_eval.live_accompaniment(LeakyEchoAccompanist(), heard_changed, z, beats),
                before)


def test_unheard_steps_change_nothing_in_the_real_model_either(tiny_model_dir,
                                                               tiny_model_threshold):
    from musegan_live.model.inference import Accompanist

    accompanist = Accompanist.from_dir(tiny_model_dir)
    cond = accompanist.condition_track
    real = band_phrases(3, np.random.default_rng(4), condition_track=cond)
    rng = np.random.default_rng(5)
    z = accompanist.sample_z(rng, 3)
    condition = real[..., cond]
    changed = condition.copy()
    changed[:, 3, 12:] = rng.random(changed[:, 3, 12:].shape) < 0.2
    plans = [live_eval.live_accompaniment(accompanist, c, z, 1, batch_size=2,
                                          threshold=tiny_model_threshold)
             for c in (condition, changed)]
    assert plans[0].shape == (3, 1, STEPS_PER_BAR, 84, 4)
    assert plans[0].any(), "the tiny model should play something at its low threshold"
    np.testing.assert_array_equal(plans[0], plans[1])


def test_a_model_that_uses_the_past_passes_the_0_beat_check_one_that_ignores_it_fails():
    real = repeating_phrases(8, seed=6)
    rng = np.random.default_rng(7)
    shuffled = with_accompaniment(real, real[derangement(8, rng)][..., OUTPUTS], OUTPUTS)
    z = np.zeros((8, 4), np.float32)
    tracks = ["Guitar", "Bass", "Strings"]
    verdicts = {}
    for name, model in (("past", PastEchoAccompanist()), ("same bar", EchoAccompanist())):
        live = live_eval.evaluate_live(model, real, shuffled, z, [0, 1])
        rows = acceptance_checks(None, live, tracks)
        verdicts[name] = {(r["name"], r["track"]): r["passed"] for r in rows}
    assert all(verdicts["past"].values())
    assert not any(v for (check, _), v in verdicts["same bar"].items()
                   if check == "live_0_beats_vs_oracle")
    # with one beat heard the same-bar echo plays bar 4's chord: it passes then
    assert all(v for (check, _), v in verdicts["same bar"].items()
               if check == "live_1_beat_vs_real")


def test_as_played_takes_each_beat_from_the_plan_that_heard_the_beats_before_it():
    plans = [np.full((2, 1, STEPS_PER_BAR, 84, 4), k, dtype=np.int8) for k in range(4)]
    played = live_eval.as_played(plans)
    for beat in range(4):
        assert (played[:, :, beat * 12 : (beat + 1) * 12] == beat).all()
    with pytest.raises(ValueError, match="4 plans"):
        live_eval.as_played(plans[:3])


def test_a_model_that_only_echoes_what_it_heard_plays_nothing_as_played():
    # every step of bar 4 is played from a plan made before that step was heard: an echo of
    # the heard condition has nothing there, however well its whole-bar rows score
    real = band_phrases(6, np.random.default_rng(8))
    others = real[derangement(6, np.random.default_rng(9))]
    shuffled = with_accompaniment(real, others[..., OUTPUTS], OUTPUTS)
    live = live_eval.evaluate_live(EchoAccompanist(), real, shuffled, np.zeros((6, 4), np.float32))
    empty = live["as_played"]["metrics"]["empty_bar_rate"]
    assert all(empty[t] == 1.0 for t in ("Guitar", "Bass", "Strings"))
    assert live["rows"][3]["generated"]["metrics"]["empty_bar_rate"]["Guitar"] == 0.0
    assert "as_played" not in live_eval.evaluate_live(EchoAccompanist(), real, shuffled,
                                                      np.zeros((6, 4), np.float32), [0, 1])
