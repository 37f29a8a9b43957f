"""The evaluation report of ``python -m training.evaluate``: markdown tables and JSON.

``render_markdown`` turns the report dict built by :func:`training.evaluate.evaluate` (plus the
run's ``model``, ``data``, ``seed`` and ``providers``) into one table per whole-phrase setting
(rows are metrics, columns are real / gen / shuf for each accompaniment track), the live tables
(one per metric: rows are the model with 0..3 beats heard, real, shuffled and the 1-bar-late
oracle, columns are tracks), the live-following checks (:mod:`training.evaluation.checks`) and the
:func:`quality_checks` of the full-condition setting. ``write_report`` writes ``eval.md`` and
``eval.json`` (NaN as ``null``, so any JSON reader accepts it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from musegan_live import metrics
from musegan_live.errors import DataFileError
from training.evaluation.live import LIVE_REFERENCES

COLUMNS: tuple[tuple[str, str], ...] = (
    ("real", "real"),
    ("generated", "gen"),
    ("shuffled", "shuf"),
)
_METRIC_LABELS = {
    "empty_bar_rate": "empty bars",
    "used_pitch_classes": "pitch classes / bar",
    "qualified_note_rate": "qualified notes",
    "polyphony": "polyphony",
    "drum_pattern_rate": "drum pattern",
    "tonal_distance": "tonal distance to cond.",
    "harmony_ratio": "harmony with cond.",
}


def _fmt(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.3f}"


def metric_table(setting: dict, output_tracks: Sequence[str]) -> str:
    """One markdown table: rows = metrics, columns = real / gen / shuf for each output track."""
    header = ["metric"] + [f"{t} {label}" for t in output_tracks for _, label in COLUMNS]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" + "---:|" * (len(header) - 1),
    ]
    for name in metrics.METRIC_NAMES:
        cells = [_METRIC_LABELS[name]]
        for track in output_tracks:
            for column, _ in COLUMNS:
                cells.append(_fmt(setting[column]["metrics"][name][track]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Single-track statistics a model should reproduce, and how close: |gen - real| <= 25 % of real.
CLOSE_TO_REAL_METRICS = ("empty_bar_rate", "used_pitch_classes", "qualified_note_rate",
                         "drum_pattern_rate")
CLOSE_TO_REAL_TOLERANCE = 0.25
#: Two-track statistics that must beat the shuffled-real baseline, and in which direction.
BEAT_SHUFFLED_METRICS = (("harmony_ratio", "higher"), ("tonal_distance", "lower"))


def quality_checks(setting: dict, output_tracks: Sequence[str]) -> list[dict]:
    """Pass/fail rows for one setting (``report["settings"][key]``).

    For each output track where the metric is defined: the single-track metrics of
    ``CLOSE_TO_REAL_METRICS`` pass when the generated value is within 25 % of the real one
    (relative; so a rate near zero leaves little room), the harmony ratio passes when higher
    than the shuffled baseline's, the tonal distance when lower. Each row is ``{"metric",
    "track", "real", "generated", "shuffled", "rule", "passed"}``.
    """
    rows = []
    real, gen, shuf = (setting[c]["metrics"] for c in ("real", "generated", "shuffled"))
    for track in output_tracks:
        for name in CLOSE_TO_REAL_METRICS:
            r, g = real[name][track], gen[name][track]
            if math.isnan(r) or math.isnan(g):
                continue
            rows.append({"metric": name, "track": track, "real": r, "generated": g,
                         "shuffled": shuf[name][track], "rule": "within 25 % of real",
                         "passed": abs(g - r) <= CLOSE_TO_REAL_TOLERANCE * abs(r)})
        for name, better in BEAT_SHUFFLED_METRICS:
            g, b = gen[name][track], shuf[name][track]
            if math.isnan(g) or math.isnan(b):
                continue
            rows.append({"metric": name, "track": track, "real": real[name][track],
                         "generated": g, "shuffled": b, "rule": f"{better} than shuffled",
                         "passed": g > b if better == "higher" else g < b})
    return rows


#: Metrics of the live tables, in order (the harmony first: it is what the live checks judge).
LIVE_METRICS = ("harmony_ratio", "tonal_distance", "empty_bar_rate", "used_pitch_classes",
                "qualified_note_rate", "polyphony", "drum_pattern_rate")


def live_tables(live: dict, output_tracks: Sequence[str]) -> str:
    """One markdown table per metric of ``report["live"]``: rows = sources, columns = tracks.

    Sources: the model with each number of beats heard, as played (when present), then real,
    shuffled real and the 1-bar-late oracle (all scored on bar 4). A metric undefined for every
    track and source is left out.
    """
    sources = [(f"model, {row['beats_heard']} beat{'' if row['beats_heard'] == 1 else 's'} "
                "heard", row["generated"]) for row in live["rows"]]
    if "as_played" in live:
        sources.append(("model, as played (beat k from the plan that heard k beats)",
                        live["as_played"]))
    sources += [(label, live["references"][key]) for key, label in LIVE_REFERENCES]
    out = []
    for name in LIVE_METRICS:
        values = [[summary["metrics"][name][t] for t in output_tracks] for _, summary in sources]
        if all(v is None or math.isnan(v) for row in values for v in row):
            continue
        out += [f"**{_METRIC_LABELS[name]}** (bar 4)", "",
                "| source | " + " | ".join(output_tracks) + " |",
                "|---|" + "---:|" * len(output_tracks)]
        for (label, _), row in zip(sources, values, strict=True):
            out.append(f"| {label} | " + " | ".join(_fmt(v) for v in row) + " |")
        out.append("")
    return "\n".join(out).rstrip("\n")


def acceptance_table(rows: Sequence[dict]) -> str:
    """:func:`training.evaluation.checks.acceptance_checks` rows as markdown, failures in bold."""
    lines = ["| check | track | value | target | rule | result |",
             "|---|---|---:|---:|---|---|"]
    for row in rows:
        verdict = "pass" if row["passed"] else "**FAIL**"
        lines.append(f"| {row['name']} | {row['track']} | {_fmt(row['value'])} | "
                     f"{row['comparison']} {_fmt(row['target'])} | {row['rule']} | {verdict} |")
    return "\n".join(lines)


def checks_table(rows: Sequence[dict]) -> str:
    """:func:`quality_checks` rows as a markdown table, failures in bold."""
    lines = ["| check | track | real | gen | shuf | rule | result |",
             "|---|---|---:|---:|---:|---|---|"]
    for row in rows:
        verdict = "pass" if row["passed"] else "**FAIL**"
        lines.append(
            f"| {_METRIC_LABELS[row['metric']]} | {row['track']} | {_fmt(row['real'])} | "
            f"{_fmt(row['generated'])} | {_fmt(row['shuffled'])} | {row['rule']} | {verdict} |"
        )
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    """The whole report as markdown: a header, one table per setting, the metric definitions."""
    out = [
        f"# Evaluation of `{report['model']}`",
        "",
        f"- data: `{report['data']}` — {report['n_phrases']} phrases with a non-empty "
        f"{report['condition_track']} track (seed {report['seed']})",
        f"- condition track: {report['condition_track']}; threshold {report['threshold']:g}; "
        f"inference providers: {', '.join(report['providers'])}",
        "- columns: **real** = held-out phrases, **gen** = the model's accompaniment of the real "
        "condition, **shuf** = real accompaniment of another phrase paired with this condition "
        "(single-track metrics equal real's by construction); — = undefined",
    ]
    for key, setting in report["settings"].items():
        out += [
            "",
            f"## {key}: {setting['title']}",
            "",
            f"inference {setting['inference_seconds']:.2f} s",
            "",
            metric_table(setting, report["output_tracks"]),
        ]
    live = report.get("live")
    if live:
        seconds = sum(row["inference_seconds"] for row in live["rows"])
        out += ["", f"## live: {live['title']}", "",
                f"inference {seconds:.2f} s for {len(live['rows'])} x {report['n_phrases']} plans; "
                "**1-bar-late oracle** = the real accompaniment of bar 3 sounding in bar 4; "
                "shuffled real = bar 4 of another phrase", "",
                live_tables(live, report["output_tracks"])]
    if report.get("checks"):
        rows = report["checks"]
        passed = sum(row["passed"] for row in rows)
        out += ["", f"## Checks (live following, full condition): {passed} of {len(rows)} pass", "",
                acceptance_table(rows)]
    if "checks_full" in report:
        rows = report["checks_full"]
        passed = sum(row["passed"] for row in rows)
        out += ["", f"## Checks (full condition): {passed} of {len(rows)} pass", "",
                checks_table(rows)]
    out += [
        "",
        "## Metrics",
        "",
        "- empty bars: share of bars with no note",
        "- pitch classes / bar: distinct pitch classes ((24 + pitch index) mod 12) per "
        "non-empty bar",
        "- qualified notes: share of notes (runs of one pitch) lasting >= 3 steps (a 16th)",
        "- polyphony: share of sounding steps with >= 2 pitches",
        "- drum pattern: share of drum onsets on the 16th grid (step in bar % 3 == 0)",
        "- tonal distance to cond.: mean distance of per-beat tonal centroids (Harte et al. 2006) "
        "over beats where both sound",
        "- harmony with cond.: share of note-steps whose pitch class the condition plays in the "
        "same beat",
        "",
    ]
    return "\n".join(out)


def _json_safe(value: object) -> object:
    """NaN -> None recursively, so the JSON is standard (no bare NaN tokens)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def make_out_dir(out_dir: Path) -> None:
    """Create ``out_dir``; raise DataFileError saying how to fix it when that is impossible."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataFileError(
            f"cannot create the output folder {out_dir}: {err}; pass --out a writable folder"
        ) from err


def write_report(report: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write ``eval.md`` and ``eval.json`` into ``out_dir`` (created); return their paths."""
    md_path, json_path = out_dir / "eval.md", out_dir / "eval.json"
    try:
        make_out_dir(out_dir)
        md_path.write_text(render_markdown(report), encoding="utf-8")
        json_path.write_text(
            json.dumps(_json_safe(report), indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
    except OSError as err:
        raise DataFileError(
            f"cannot write the evaluation into {out_dir}: {err}; pass --out a writable folder"
        ) from err
    return md_path, json_path
