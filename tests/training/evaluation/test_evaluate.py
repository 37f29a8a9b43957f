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
    BASS,
    DRUMS,
    GUITAR,
    N_TRACKS,
    PHRASE_SHAPE,
    PIANO,
    STEPS_PER_BAR,
    STRINGS,
    TRACK_NAMES,
    other_tracks,
    save_sparse_npz,
    sparse_from_dense,
)
from training import evaluate
from training.evaluation import report as evaluate_report

REPO = Path(__file__).resolve().parents[3]


def band_phrases(n: int, rng: np.random.Generator, silent_condition: tuple[int, ...] = (),
                 condition_track: int = PIANO) -> np.ndarray:
    """``n`` small five-track phrases: a triad per bar in the pitched tracks, drums on 8ths.

    Phrases listed in ``silent_condition`` have an empty ``condition_track``.
    """
    x = np.zeros((n, *PHRASE_SHAPE), dtype=bool)
    for p in range(n):
        for bar in range(4):
            root = int(rng.integers(36, 48))  # pitch index of the bar's chord root (MIDI 60..71)
            triad = [root, root + 4, root + 7]
            x[p, bar, 0:24, triad, PIANO] = True
            x[p, bar, 12:36, [t - 12 for t in triad], GUITAR] = True
            x[p, bar, :, root - 24, BASS] = True
            x[p, bar, 0:36, [t + 12 for t in triad], STRINGS] = True
            for step in range(0, STEPS_PER_BAR, 6):
                x[p, bar, step : step + 3, 12 if step % 12 == 0 else 18, DRUMS] = True
    for p in silent_condition:
        x[p, ..., condition_track] = False
    return x


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


def test_live_masks_know_bars_1_to_3_and_bar_4_up_to_now():
    masks, now = evaluate.live_known_masks(500, np.random.default_rng(7))
    assert masks.shape == (500, 4, STEPS_PER_BAR) and masks.dtype == np.float32
    assert now.min() >= 144 and now.max() <= 191
    assert now.min() == 144 and now.max() == 191  # 500 draws cover both ends of 48 steps
    assert np.all(masks[:, :3] == 1.0)
    known_in_bar4 = masks[:, 3].sum(axis=1)
    np.testing.assert_array_equal(known_in_bar4, now - 144)
    # known steps form a prefix of bar 4: never a 0 followed by a 1
    assert not np.any(np.diff(masks[:, 3], axis=1) > 0)


# --- evaluate() with a transparent stand-in for the ONNX model -------------------------------
class EchoAccompanist:
    """Plays back the *known* condition on every output track (so the harmony is perfect).

    Same interface as musegan_live.model.inference.Accompanist; records every call's batch size.
    """

    def __init__(self, condition_track: int = PIANO):
        self.condition_track = condition_track
        self.output_tracks = other_tracks(condition_track)
        self.latent_dim = 4
        self.threshold = 0.5
        self.batch_sizes: list[int] = []

    def sample_z(self, rng, batch=1):
        return rng.standard_normal((batch, self.latent_dim)).astype(np.float32)

    def accompany(self, condition, known_mask, z, threshold=None):
        assert condition.shape[0] == known_mask.shape[0] == z.shape[0]
        self.batch_sizes.append(condition.shape[0])
        heard = np.asarray(condition, dtype=bool) & (known_mask[..., np.newaxis] > 0)
        return np.repeat(heard[..., np.newaxis], len(self.output_tracks), axis=-1)


def test_evaluate_passes_each_setting_its_mask_and_scores_the_right_bars():
    real = band_phrases(7, np.random.default_rng(2))
    model = EchoAccompanist()
    report = evaluate.evaluate(model, real, np.random.default_rng(3), batch_size=3)
    assert model.batch_sizes == [3, 3, 1] * 3  # 7 phrases in batches of 3, three settings
    s = report["settings"]
    assert s["full"]["scored_bars"] == [1, 2, 3, 4] and s["live"]["scored_bars"] == [4]
    full_gen = s["full"]["generated"]["metrics"]
    # Echoing the full condition: every generated bass note-step is a condition pitch class.
    assert full_gen["harmony_ratio"]["Bass"] == 1.0
    assert full_gen["tonal_distance"]["Guitar"] == pytest.approx(0.0, abs=1e-12)
    assert full_gen["empty_bar_rate"]["Bass"] == 0.0
    # No condition known: the echo is silent in every bar.
    assert report["settings"]["none"]["generated"]["metrics"]["empty_bar_rate"]["Bass"] == 1.0
    # Live: bar 4 is heard only before "now"; the piano plays steps 0..23 of each bar, so bar 4
    # of the echo is empty exactly for the phrases whose now is <= 144 (nothing heard yet).
    now = np.asarray(s["live"]["now_steps"])
    expected_empty = np.mean(now == 144)
    assert s["live"]["generated"]["metrics"]["empty_bar_rate"]["Bass"] == pytest.approx(
        expected_empty
    )
    # The shuffled baseline keeps real single-track statistics but breaks the harmony.
    for key in ("full", "live", "none"):
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
    for key in ("full", "live", "none"):
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
    assert len(report["settings"]["live"]["now_steps"]) == 8


def test_evaluate_command_reports_a_missing_data_file_in_one_line(model_dir, tmp_path, capsys):
    code = evaluate.main(["--model", str(model_dir), "--data", str(tmp_path / "nope.npz"),
                          "--out", str(tmp_path)])
    assert code != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "nope.npz" in last and "no such file" in last
