"""The live-following pass/fail checks, live and full setting (the ``checks`` of eval.json).

For every pitched output track (Guitar, Bass, Strings for a piano model):

``live_0_beats_vs_oracle``
    live, 0 beats of the planned bar heard: harmony ratio >= the 1-bar-late oracle's (a model
    that has heard bars 1-3 must do at least as well as replaying the real bar 3 one bar late);
``live_1_beat_vs_real``
    live, 1 beat heard: harmony ratio >= real's - ``LIVE_1_BEAT_HARMONY_MARGIN`` (0.15);
``full_harmony_vs_real``
    full condition (whole phrase heard): harmony ratio >= real's - ``FULL_HARMONY_MARGIN`` (0.05);
``full_tonal_distance_vs_real``
    full condition: tonal distance <= real's + ``FULL_TONAL_DISTANCE_MARGIN`` (0.1).

Harmony ratios are shares of note-steps (0..1), tonal distances are unitless (0..3); see
:mod:`musegan_live.metrics`. A check whose value or target is undefined (NaN: the model or the
reference played no note where the condition sounds) fails. The live checks are left out when the
run did not score the beats they need (``--live-beats``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

logger = logging.getLogger(__name__)

LIVE_1_BEAT_HARMONY_MARGIN = 0.15
FULL_HARMONY_MARGIN = 0.05
FULL_TONAL_DISTANCE_MARGIN = 0.1


def _row(name: str, setting: str, beats_heard: int | None, metric: str, track: str,
         value: float, target: float, higher_is_better: bool, rule: str) -> dict:
    defined = not (math.isnan(value) or math.isnan(target))
    if not defined:
        logger.warning("check %s on %s is undefined (value %s, target %s): counted as failed",
                       name, track, value, target)
    passed = defined and (value >= target if higher_is_better else value <= target)
    return {"name": name, "setting": setting, "beats_heard": beats_heard, "metric": metric,
            "track": track, "value": float(value), "target": float(target),
            "comparison": ">=" if higher_is_better else "<=", "rule": rule,
            "passed": bool(passed)}


def _live_row(live: dict, beats_heard: int) -> dict | None:
    for row in live.get("rows", []):
        if row["beats_heard"] == beats_heard:
            return row
    return None


def acceptance_checks(full: dict | None, live: dict | None, tracks: Sequence[str]) -> list[dict]:
    """The checks above for ``tracks`` (names of pitched output tracks), as rows.

    ``full`` is ``report["settings"]["full"]`` (``real`` / ``generated`` summaries) or None;
    ``live`` is ``report["live"]`` (:func:`training.evaluation.live.evaluate_live`) or None. Each
    row is ``{"name", "setting", "beats_heard", "metric", "track", "value", "target",
    "comparison", "rule", "passed"}``: passed when ``value comparison target``.
    """
    rows: list[dict] = []
    if live is not None:
        refs = live["references"]
        zero, one = _live_row(live, 0), _live_row(live, 1)
        for track in tracks if zero is not None else ():
            rows.append(_row(
                "live_0_beats_vs_oracle", "live", 0, "harmony_ratio", track,
                zero["generated"]["metrics"]["harmony_ratio"][track],
                refs["oracle"]["metrics"]["harmony_ratio"][track], True,
                "harmony, 0 beats heard >= 1-bar-late oracle"))
        for track in tracks if one is not None else ():
            rows.append(_row(
                "live_1_beat_vs_real", "live", 1, "harmony_ratio", track,
                one["generated"]["metrics"]["harmony_ratio"][track],
                refs["real"]["metrics"]["harmony_ratio"][track] - LIVE_1_BEAT_HARMONY_MARGIN,
                True, f"harmony, 1 beat heard >= real - {LIVE_1_BEAT_HARMONY_MARGIN:g}"))
    if full is not None:
        real, gen = full["real"]["metrics"], full["generated"]["metrics"]
        for track in tracks:
            rows.append(_row(
                "full_harmony_vs_real", "full", None, "harmony_ratio", track,
                gen["harmony_ratio"][track],
                real["harmony_ratio"][track] - FULL_HARMONY_MARGIN, True,
                f"harmony, full condition >= real - {FULL_HARMONY_MARGIN:g}"))
        for track in tracks:
            rows.append(_row(
                "full_tonal_distance_vs_real", "full", None, "tonal_distance", track,
                gen["tonal_distance"][track],
                real["tonal_distance"][track] + FULL_TONAL_DISTANCE_MARGIN, False,
                f"tonal distance, full condition <= real + {FULL_TONAL_DISTANCE_MARGIN:g}"))
    return rows
