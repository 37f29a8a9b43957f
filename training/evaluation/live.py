"""The live setting of ``python -m training.evaluate``: the bar being planned, 0..3 beats heard.

Live, the engine plans the 4-bar window whose last bar (bar 4) is the bar about to sound: bars 1-3
have been heard, bar 4 only up to "now". Here a *live example* is one held-out phrase with

- ``known_mask`` = 1 for bars 1-3 and for the first ``12 * b`` steps of bar 4 (``b`` beats heard,
  12 steps per beat), 0 for the rest of bar 4;
- the condition the model gets = the real condition track where ``known_mask`` is 1 and silence
  elsewhere (as :meth:`musegan_live.live.player.Player.window` builds it: unheard steps are empty);
- the phrase's latent ``z`` (the same for every ``b``, as the engine keeps ``z`` for a phrase).

Only bar 4 of the decoded plan is scored (the notes :meth:`Accompanist.accompany` returns, decoded
as ``model.yaml`` says), against the *whole* real condition of bar
4 (what the player ends up playing, hence what sounds with the plan). The references, all scored on
bar 4 against the same condition:

``real``
    the phrase's own accompaniment of bar 4;
``shuffled``
    bar 4's accompaniment of another phrase (the fixed-point-free permutation the other settings
    use): unrelated but real music;
``oracle``
    the 1-bar-late oracle: the phrase's real accompaniment of *bar 3* sounding in bar 4, the best
    any system that is one bar behind the player can do.

The engine makes the same plan with :meth:`Accompanist.plan_last_bar`: the same probabilities of
bar 4 (the bar graphs are checked against the whole model at export), decoded as one bar with the
notes that sounded at the end of bar 3 carried in. Here the window is decoded whole, so what is
carried into bar 4 is the model's own bar 3 of the same window (bars 1-3 fully heard: the plan
the engine made at the end of bar 3, up to the causal context's view of the bar before bar 1).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence

import numpy as np

from musegan_live import metrics
from musegan_live.representation import BEATS_PER_BAR, N_BARS, STEPS_PER_BAR, STEPS_PER_BEAT
from training.evaluation.generation import (
    DEFAULT_BATCH,
    AccompanistLike,
    generate,
    with_accompaniment,
)

logger = logging.getLogger(__name__)

#: Beats of the planned bar heard, scored by default.
DEFAULT_LIVE_BEATS: tuple[int, ...] = (0, 1, 2, 3)
#: 0-based index of the planned bar in the window (bar 4).
PLANNED_BAR = N_BARS - 1
#: (key, label) of the reference rows of the live tables, in report order.
LIVE_REFERENCES: tuple[tuple[str, str], ...] = (
    ("real", "real"),
    ("shuffled", "shuffled real"),
    ("oracle", "1-bar-late oracle"),
)
LIVE_TITLE = (
    "Live: bars 1-3 heard, bar 4 heard for 0..3 beats, bar 4 of the plan scored against bar 4's "
    "whole condition"
)


def parse_live_beats(text: str) -> tuple[int, ...]:
    """``"0,1,2,3"`` -> ``(0, 1, 2, 3)``: beats of bar 4 heard, each in 0..3, sorted, unique.

    An empty string means no live setting. Raises ``argparse.ArgumentTypeError`` otherwise.
    """
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        beats = sorted({int(part) for part in parts})
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"--live-beats takes whole numbers separated by commas, e.g. 0,1,2,3; got {text!r}"
        ) from err
    bad = [b for b in beats if not 0 <= b < BEATS_PER_BAR]
    if bad:
        raise argparse.ArgumentTypeError(
            f"--live-beats {bad}: beats heard of the planned bar must be in 0..{BEATS_PER_BAR - 1}"
        )
    return tuple(beats)


def live_known_mask(n: int, beats_heard: int) -> np.ndarray:
    """``float32[n, 4, 48]``: bars 1-3 heard (1.0), bar 4 heard for its first ``beats_heard`` beats.

    ``beats_heard`` in ``0 .. 4`` (12 steps per beat); the rest of bar 4 is 0.0 (not heard yet).
    """
    if not 0 <= beats_heard <= BEATS_PER_BAR:
        raise ValueError(f"beats_heard must be in 0..{BEATS_PER_BAR}, got {beats_heard}")
    mask = np.ones((n, N_BARS, STEPS_PER_BAR), dtype=np.float32)
    mask[:, PLANNED_BAR, beats_heard * STEPS_PER_BEAT :] = 0.0
    return mask


def heard_condition(condition: np.ndarray, known_mask: np.ndarray) -> np.ndarray:
    """The condition as heard: ``bool[n, 4, 48, 84]`` with every step where the mask is 0 silent.

    ``condition`` ``bool[n, 4, 48, 84]``, ``known_mask`` ``float32[n, 4, 48]``.
    """
    return np.asarray(condition, dtype=bool) & (np.asarray(known_mask) > 0)[..., np.newaxis]


def planned_bar(phrases: np.ndarray) -> np.ndarray:
    """Bar 4 of phrases ``[n, 4, 48, 84, T]`` as one-bar phrases ``[n, 1, 48, 84, T]`` (a view)."""
    return phrases[:, PLANNED_BAR : PLANNED_BAR + 1]


def one_bar_late(real: np.ndarray, output_tracks: Sequence[int]) -> np.ndarray:
    """The 1-bar-late oracle ``bool[n, 1, 48, 84, 5]``: bar 4's condition, bar 3's accompaniment.

    ``real`` ``bool[n, 4, 48, 84, 5]``; every track in ``output_tracks`` is taken from bar 3, the
    others (the condition) from bar 4.
    """
    out = planned_bar(real).copy()
    outputs = list(output_tracks)
    out[..., outputs] = real[:, PLANNED_BAR - 1 : PLANNED_BAR][..., outputs]
    return out


def as_played(plans: Sequence[np.ndarray]) -> np.ndarray:
    """Bar 4 as the daemon plays it when it re-plans on every beat: beat ``k`` of it from
    ``plans[k]``, the plan that had heard ``k`` beats of the bar (each step is played from the
    last plan made before it).

    ``plans``: one ``[n, 1, 48, 84, T]`` array per beat, 0..3 beats heard. Returns the same shape.
    """
    if len(plans) != BEATS_PER_BAR:
        raise ValueError(f"as_played takes {BEATS_PER_BAR} plans (0..3 beats heard), "
                         f"got {len(plans)}")
    out = np.empty_like(plans[0])
    for beat, plan in enumerate(plans):
        steps = slice(beat * STEPS_PER_BEAT, (beat + 1) * STEPS_PER_BEAT)
        out[:, :, steps] = plan[:, :, steps]
    return out


def live_accompaniment(
    accompanist: AccompanistLike,
    condition: np.ndarray,
    z: np.ndarray,
    beats_heard: int,
    *,
    batch_size: int = DEFAULT_BATCH,
    threshold: float | None = None,
) -> np.ndarray:
    """Bar 4 of the model's plan with ``beats_heard`` beats of it heard.

    ``condition`` ``bool[n, 4, 48, 84]`` (the real condition; its unheard steps are silenced
    before the model sees them), ``z`` ``float32[n, latent_dim]``. Returns
    ``bool[n, 1, 48, 84, len(output_tracks)]``.
    """
    mask = live_known_mask(len(condition), beats_heard)
    plan = generate(
        accompanist, heard_condition(condition, mask), mask, z,
        batch_size=batch_size, threshold=threshold,
    )
    return planned_bar(plan)


def evaluate_live(
    accompanist: AccompanistLike,
    real: np.ndarray,
    shuffled: np.ndarray,
    z: np.ndarray,
    beats: Sequence[int] = DEFAULT_LIVE_BEATS,
    *,
    batch_size: int = DEFAULT_BATCH,
    threshold: float | None = None,
) -> dict[str, object]:
    """Score bar 4 of the plans with each of ``beats`` beats heard, and the three references.

    ``real`` ``bool[n, 4, 48, 84, 5]`` held-out phrases, ``shuffled`` the same with another
    phrase's accompaniment, ``z`` ``float32[n, latent_dim]``. Returns ``{"title", "scored_bar":
    4, "beats", "references": {"real", "shuffled", "oracle"}, "rows": [{"beats_heard",
    "heard_steps_in_bar", "inference_seconds", "generated"}, ...], "as_played"}``, where
    ``references[k]``, ``rows[i]["generated"]`` and ``as_played`` (bar 4 as the daemon plays it,
    :func:`as_played`; only when ``beats`` are 0..3) are :func:`musegan_live.metrics.summarize`
    dicts of bar 4.
    """
    cond = accompanist.condition_track
    outputs = list(accompanist.output_tracks)
    all_tracks = list(range(real.shape[-1]))
    bar4 = planned_bar(real)
    references = {
        "real": metrics.summarize(bar4, all_tracks, cond),
        "shuffled": metrics.summarize(planned_bar(shuffled), all_tracks, cond),
        "oracle": metrics.summarize(one_bar_late(real, outputs), all_tracks, cond),
    }
    rows = []
    plans = {}
    for beats_heard in beats:
        started = time.perf_counter()
        accompaniment = live_accompaniment(
            accompanist, real[..., cond], z, beats_heard,
            batch_size=batch_size, threshold=threshold,
        )
        seconds = time.perf_counter() - started
        logger.info("live, %d beat(s) heard: %d plans in %.2f s", beats_heard, len(real), seconds)
        plans[beats_heard] = accompaniment
        scored = with_accompaniment(bar4, accompaniment, outputs)
        rows.append({
            "beats_heard": int(beats_heard),
            "heard_steps_in_bar": int(beats_heard * STEPS_PER_BEAT),
            "inference_seconds": seconds,
            "generated": metrics.summarize(scored, all_tracks, cond),
        })
    result = {
        "title": LIVE_TITLE,
        "scored_bar": PLANNED_BAR + 1,
        "beats": [int(b) for b in beats],
        "references": references,
        "rows": rows,
    }
    if sorted(plans) == list(range(BEATS_PER_BAR)):
        played = as_played([plans[b] for b in range(BEATS_PER_BAR)])
        result["as_played"] = metrics.summarize(with_accompaniment(bar4, played, outputs),
                                                all_tracks, cond)
    return result
