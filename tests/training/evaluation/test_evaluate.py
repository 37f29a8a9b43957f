"""training.evaluate: phrase choice, masks, the shuffled baseline, and the command end to end."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

from musegan_live.errors import DataFileError
from musegan_live.representation import (
    N_TRACKS,
    PIANO,
    TRACK_NAMES,
    save_sparse_npz,
    sparse_from_dense,
)
from tests.training.evaluation.fakes import EchoAccompanist, band_phrases
from training import evaluate
from training.evaluation import report as evaluate_report

REPO = Path(__file__).resolve().parents[3]


# --- pure helpers ----------------------------------------------------------------------------
def test_parse_providers_splits_a_priority_list():
    assert evaluate.parse_providers("CPU") == ("CPU",)
    assert evaluate.parse_providers("cuda, CPUExecutionProvider") == (
        "cuda",
        "CPUExecutionProvider",
    )
    with pytest.raises(argparse.ArgumentTypeError, match="at least one name"):
        evaluate.parse_providers(" , ")


def test_only_phrases_with_a_sounding_condition_are_chosen():
    data = sparse_from_dense(band_phrases(6, np.random.default_rng(0), silent_condition=(1, 4)))
    np.testing.assert_array_equal(evaluate.conditioned_indices(data, PIANO), [0, 2, 3, 5])
    rng = np.random.default_rng(1)
    chosen = evaluate.choose_phrases(data, PIANO, 3, rng)
    assert len(chosen) == 3 and set(chosen) <= {0, 2, 3, 5}
    np.testing.assert_array_equal(evaluate.choose_phrases(data, PIANO, 100, rng), [0, 2, 3, 5])


def test_too_few_conditioned_phrases_is_a_clear_data_error():
    data = sparse_from_dense(band_phrases(3, np.random.default_rng(0), silent_condition=(0, 2)))
    with pytest.raises(DataFileError, match="only 1 of 3 phrases have a non-empty Piano track"):
        evaluate.choose_phrases(data, PIANO, 10, np.random.default_rng(0))


@pytest.mark.parametrize("n", [2, 3, 5, 64, 257])
def test_derangement_is_a_permutation_without_fixed_points(n):
    for seed in range(20):
        perm = evaluate.derangement(n, np.random.default_rng(seed))
        assert sorted(perm.tolist()) == list(range(n))
        assert not np.any(perm == np.arange(n))
    with pytest.raises(ValueError, match="n >= 2"):
        evaluate.derangement(1, np.random.default_rng(0))


# --- evaluate() with a transparent stand-in for the ONNX model -------------------------------
def test_evaluate_passes_each_setting_its_mask_and_scores_the_right_bars():
    real = band_phrases(7, np.random.default_rng(2))
    model = EchoAccompanist()
    report = evaluate.evaluate(model, real, np.random.default_rng(3), batch_size=3)
    # 7 phrases in batches of 3: full, none, then live with 0, 1, 2 and 3 beats heard
    assert model.batch_sizes == [3, 3, 1] * 6
    s = report["settings"]
    assert list(s) == ["full", "none"] and s["full"]["scored_bars"] == [1, 2, 3, 4]
    full_gen = s["full"]["generated"]["metrics"]
    # Echoing the full condition: every generated bass note-step is a condition pitch class.
    assert full_gen["harmony_ratio"]["Bass"] == 1.0
    assert full_gen["tonal_distance"]["Guitar"] == pytest.approx(0.0, abs=1e-12)
    assert full_gen["empty_bar_rate"]["Bass"] == 0.0
    # No condition known: the echo is silent in every bar.
    assert report["settings"]["none"]["generated"]["metrics"]["empty_bar_rate"]["Bass"] == 1.0
    # Live: bar 4 is heard for 0..3 beats; the piano plays beats 1-2 of each bar, so bar 4 of the
    # echo is silent with 0 beats heard and harmonises perfectly once a beat is heard.
    live = report["live"]
    assert live["scored_bar"] == 4 and [r["beats_heard"] for r in live["rows"]] == [0, 1, 2, 3]
    assert [r["heard_steps_in_bar"] for r in live["rows"]] == [0, 12, 24, 36]
    gen = [r["generated"]["metrics"] for r in live["rows"]]
    assert [g["empty_bar_rate"]["Bass"] for g in gen] == [1.0, 0.0, 0.0, 0.0]
    assert math.isnan(gen[0]["harmony_ratio"]["Bass"])
    assert [g["harmony_ratio"]["Bass"] for g in gen[1:]] == [1.0, 1.0, 1.0]
    assert all(r["generated"]["n_bars"] == 1 for r in live["rows"])
    # An echo of the same bar ignores the past: with nothing of bar 4 heard it fails the check.
    zero_beats = [c for c in report["checks"] if c["name"] == "live_0_beats_vs_oracle"]
    assert [c["track"] for c in zero_beats] == ["Guitar", "Bass", "Strings"]
    assert not any(c["passed"] for c in zero_beats)
    # The shuffled baseline keeps real single-track statistics but breaks the harmony.
    for key in ("full", "none"):
        real_m, shuf_m = s[key]["real"]["metrics"], s[key]["shuffled"]["metrics"]
        for name in ("empty_bar_rate", "used_pitch_classes", "polyphony"):
            np.testing.assert_allclose(
                list(shuf_m[name].values()), list(real_m[name].values()), equal_nan=True
            )
    assert (
        s["full"]["shuffled"]["metrics"]["harmony_ratio"]["Bass"]
        < s["full"]["real"]["metrics"]["harmony_ratio"]["Bass"]
    )


def test_markdown_table_has_metric_rows_and_real_gen_shuf_columns_per_track():
    real = band_phrases(4, np.random.default_rng(5))
    report = evaluate.evaluate(EchoAccompanist(), real, np.random.default_rng(0))
    report.update(model="m", data="d.npz", seed=0, providers=["CPUExecutionProvider"])
    md = evaluate_report.render_markdown(report)
    table = [line for line in md.splitlines() if line.startswith("| ")]
    header = table[0]
    for track in ("Drums", "Guitar", "Bass", "Strings"):
        for label in ("real", "gen", "shuf"):
            assert f"{track} {label}" in header
    rows = table[1:8]
    assert [r.split("|")[1].strip() for r in rows][:2] == ["empty bars", "pitch classes / bar"]
    assert all(len(r.split("|")) == len(header.split("|")) for r in rows)
    assert "—" in rows[1]  # pitch classes of drums are undefined


def test_checks_compare_with_real_and_with_the_shuffled_baseline():
    def setting(real: dict, gen: dict, shuf: dict) -> dict:
        def metrics(values: dict) -> dict:
            return {"metrics": {name: {"Bass": v} for name, v in values.items()}}
        return {"real": metrics(real), "generated": metrics(gen), "shuffled": metrics(shuf)}

    nan = float("nan")
    real = {"empty_bar_rate": 0.2, "used_pitch_classes": 2.0, "qualified_note_rate": 1.0,
            "drum_pattern_rate": nan, "harmony_ratio": 0.8, "tonal_distance": 1.0}
    gen = {"empty_bar_rate": 0.25, "used_pitch_classes": 2.6, "qualified_note_rate": 0.75,
           "drum_pattern_rate": nan, "harmony_ratio": 0.5, "tonal_distance": 1.6}
    shuf = {**real, "harmony_ratio": 0.3, "tonal_distance": 1.5}
    rows = evaluate_report.quality_checks(setting(real, gen, shuf), ["Bass"])
    verdicts = {row["metric"]: row["passed"] for row in rows}
    assert verdicts == {"empty_bar_rate": True, "used_pitch_classes": False,
                        "qualified_note_rate": True, "harmony_ratio": True,
                        "tonal_distance": False}
    table = evaluate_report.checks_table(rows)
    assert "| tonal distance to cond. | Bass | 1.000 | 1.600 | 1.500 | lower than shuffled |" \
        " **FAIL** |" in table


# --- the command, with a real exported model --------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tiny_model_dir) -> Path:
    return tiny_model_dir


def test_evaluate_command_prints_tables_and_writes_markdown_and_json(model_dir, tmp_path, capsys):
    from musegan_live.model.inference import Accompanist

    condition_track = Accompanist.from_dir(model_dir).condition_track
    data = band_phrases(10, np.random.default_rng(11), silent_condition=(3,),
                        condition_track=condition_track)
    save_sparse_npz(tmp_path / "held_out.npz", data)
    out = tmp_path / "eval"
    code = evaluate.main(["--model", str(model_dir), "--data", str(tmp_path / "held_out.npz"),
                          "--n", "8", "--seed", "4", "--out", str(out), "--batch", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "## live:" in printed and "harmony with cond." in printed
    assert "| 1-bar-late oracle |" in printed and "| model, 0 beats heard |" in printed
    assert "## Checks (live following, full condition):" in printed
    assert "## Checks (full condition):" in printed
    assert (out / "eval.md").read_text(encoding="utf-8") in printed
    report = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert report["n_phrases"] == 8 and 3 not in report["phrase_indices"]
    # the barely trained model may play no pitched note: then only single-track checks apply
    assert "within 25 % of real" in {row["rule"] for row in report["checks_full"]}
    assert all(isinstance(row["passed"], bool) for row in report["checks_full"])
    assert report["condition_track"] == TRACK_NAMES[condition_track]
    outputs = report["output_tracks"]
    assert len(outputs) == N_TRACKS - 1
    for key in ("full", "none"):
        setting = report["settings"][key]
        for column in ("real", "generated", "shuffled"):
            m = setting[column]["metrics"]
            for track in outputs:  # empty-bar rate is defined for every track and every phrase
                assert 0.0 <= m["empty_bar_rate"][track] <= 1.0
            for name, per_track in m.items():
                for track, value in per_track.items():
                    assert value is None or math.isfinite(value), (key, column, name, track)
        # The fixture's pitched tracks only play the classes of the bar's chord, so against
        # their own condition they harmonise perfectly (drums are undefined).
        if TRACK_NAMES[condition_track] != "Drums":
            real_m = setting["real"]["metrics"]
            for track in outputs:
                expected = None if track == "Drums" else 1.0
                assert real_m["harmony_ratio"][track] == expected, (key, track)
    live = report["live"]
    assert [row["beats_heard"] for row in live["rows"]] == [0, 1, 2, 3]
    assert set(live["references"]) == {"real", "shuffled", "oracle"}
    pitched = [t for t in outputs if t != "Drums"]
    names = [(row["name"], row["track"]) for row in report["checks"]]
    assert names == [(name, track) for name in ("live_0_beats_vs_oracle", "live_1_beat_vs_real",
                                                "full_harmony_vs_real",
                                                "full_tonal_distance_vs_real")
                     for track in pitched]
    for row in report["checks"]:
        assert isinstance(row["passed"], bool)
        assert set(row) >= {"name", "track", "value", "target", "passed"}


def test_live_beats_flag_chooses_the_beats_and_rejects_bad_ones(model_dir, tmp_path, capsys):
    data = band_phrases(4, np.random.default_rng(1))
    save_sparse_npz(tmp_path / "held_out.npz", data)
    out = tmp_path / "eval"
    argv = ["--model", str(model_dir), "--data", str(tmp_path / "held_out.npz"), "--out", str(out)]
    assert evaluate.main([*argv, "--live-beats", "2,1"]) == 0
    report = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert [row["beats_heard"] for row in report["live"]["rows"]] == [1, 2]
    # no 0-beat row: its check is left out rather than judged on nothing
    assert {row["name"] for row in report["checks"]} == {
        "live_1_beat_vs_real", "full_harmony_vs_real", "full_tonal_distance_vs_real"}
    assert evaluate.main([*argv, "--live-beats", ""]) == 0
    report = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert report["live"] is None
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([*argv, "--live-beats", "0,4"])
    assert exit_info.value.code == 2
    assert "must be in 0..3" in capsys.readouterr().err


def test_evaluate_command_reports_a_missing_data_file_in_one_line(model_dir, tmp_path, capsys):
    code = evaluate.main(["--model", str(model_dir), "--data", str(tmp_path / "nope.npz"),
                          "--out", str(tmp_path)])
    assert code != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "nope.npz" in last and "no such file" in last


def test_evaluate_command_reports_a_missing_model_dir_in_one_line(tmp_path, capsys):
    save_sparse_npz(tmp_path / "held_out.npz", band_phrases(3, np.random.default_rng(0)))
    code = evaluate.main(["--model", str(tmp_path / "no_model"), "--data",
                          str(tmp_path / "held_out.npz"), "--out", str(tmp_path / "eval")])
    assert code != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "no_model" in last and "does not exist" in last
