"""Train the tiny config on a code-made corpus, resume, stop on a signal, export with parity."""

from __future__ import annotations

import csv
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from musegan_live.errors import ModelError
from musegan_live.model.model_dir import check_onnx_metadata, load_model_card
from musegan_live.representation import PHRASE_SHAPE, load_sparse_npz, save_sparse_npz
from training import export, train
from training.checkpoint import load_checkpoint
from training.data.dataset import synthetic_phrases

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "train" / "tiny.yaml")


def run_train(data: Path, out: Path, *extra: str) -> int:
    return train.main(["--config", TINY, "--out", str(out), "--set", f"data.train=[{data}]",
                       "--set", f"data.validation={data}", *extra])


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    save_sparse_npz(path, synthetic_phrases(32, seed=1))
    return path


@pytest.fixture(scope="module")
def reference_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 6-step tiny run."""
    out = tmp_path_factory.mktemp("reference")
    assert run_train(data, out) == 0
    return out


def test_training_writes_checkpoint_log_plot_and_samples(reference_run: Path) -> None:
    state = load_checkpoint(reference_run / "checkpoint.pt")
    assert state["step"] == 6
    assert state["config"]["model"]["condition_track"] == "Piano"
    rows = read_csv(reference_run / "losses.csv")
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert list(rows[0]) == ["step", "d_loss", "g_loss", "wasserstein", "gp", "lr", "steps_per_s"]
    lrs = [float(r["lr"]) for r in rows]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(1e-4)  # linear to 0.1x
    assert all(np.isfinite(float(r[k])) for r in rows for k in ("d_loss", "g_loss", "gp"))
    assert (reference_run / "losses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    samples = load_sparse_npz(reference_run / "samples" / "step_0000006.npz")
    assert samples.shape == (4 * 2, *PHRASE_SHAPE)  # real, full, half, none x 2 phrases
    assert len(read_csv(reference_run / "validation.csv")) == 1


def test_a_run_with_kl_weight_trains_and_keeps_its_posterior(reference_run: Path) -> None:
    # tiny.yaml trains the conditional VAE (train.kl_weight > 0): the posterior is saved, and
    # the generator's optimizer updates its parameters next to E+G's
    from training.model.networks import TrackConditionalGenerator
    from training.model.posterior import BandPosterior
    from training.train_config import config_from_dict

    state = load_checkpoint(reference_run / "checkpoint.pt")
    cfg = config_from_dict(state["config"])
    posterior = BandPosterior(cfg.model.latent_dim)
    posterior.load_state_dict(state["posterior"])
    n_trained = (len(list(TrackConditionalGenerator(cfg.model).parameters()))
                 + len(list(posterior.parameters())))
    assert len(state["opt_generator"]["param_groups"][0]["params"]) == n_trained
    assert all(len(s) > 0 for s in state["opt_generator"]["state"].values())


def test_resume_continues_at_the_right_step_with_the_same_lr(
    data: Path, reference_run: Path, tmp_path: Path
) -> None:
    # --max-minutes 0 stops (with a checkpoint) after the first step
    assert run_train(data, tmp_path, "--max-minutes", "0") == 0
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 1
    assert train.main(["--resume", str(tmp_path / "checkpoint.pt"), "--out", str(tmp_path)]) == 0
    resumed, reference = load_checkpoint(tmp_path / "checkpoint.pt"), load_checkpoint(
        reference_run / "checkpoint.pt")
    assert resumed["step"] == 6
    rows, ref_rows = read_csv(tmp_path / "losses.csv"), read_csv(reference_run / "losses.csv")
    assert [r["step"] for r in rows] == [r["step"] for r in ref_rows]
    assert [float(r["lr"]) for r in rows] == pytest.approx([float(r["lr"]) for r in ref_rows])
    assert resumed["sched_generator"]["last_epoch"] == 6
    # model, optimizer and RNG states all came back: the weights match the uninterrupted run
    for key, value in reference["generator"].items():
        torch.testing.assert_close(resumed["generator"][key], value, atol=1e-5, rtol=1e-4)


def test_resume_can_change_the_learning_rate(data: Path, reference_run: Path,
                                            tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes((reference_run / "checkpoint.pt").read_bytes())
    code = train.main(["--resume", str(checkpoint), "--out", str(tmp_path),
                       "--set", "train.steps=10", "--set", "train.lr_schedule=constant",
                       "--set", "train.lr_generator=0.0002"])
    assert code == 0
    rows = read_csv(tmp_path / "losses.csv")
    assert [int(r["step"]) for r in rows][-2:] == [8, 10]
    assert [float(r["lr"]) for r in rows][-2:] == pytest.approx([2e-4, 2e-4])


def test_sigterm_stops_cleanly_with_a_checkpoint(data: Path, tmp_path: Path) -> None:
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        assert run_train(data, tmp_path, "--set", "train.steps=100000") == 0
    finally:
        timer.cancel()
    step = load_checkpoint(tmp_path / "checkpoint.pt")["step"]
    assert 1 <= step < 100000
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers put back


def test_unknown_config_key_fails_with_its_name(tmp_path: Path, capsys) -> None:
    code = train.cli(["--config", TINY, "--out", str(tmp_path), "--set", "train.stepz=3"])
    assert code == 2
    assert "unknown config key 'train.stepz'" in capsys.readouterr().err
    assert not (tmp_path / "checkpoint.pt").exists()


def test_export_passes_parity_and_writes_the_contract(reference_run: Path, tmp_path: Path,
                                                      capsys) -> None:
    out = tmp_path / "models" / "tiny"
    assert export.main([str(reference_run / "checkpoint.pt"), "-o", str(out), "--tensorrt"]) == 0
    printed = capsys.readouterr()
    assert "parity max |onnx - torch|" in printed.out
    import onnxruntime as ort

    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        assert "TensorRT engine cache not built" in printed.err
    assert sorted(p.name for p in out.iterdir()) == [
        "bar_encoder.onnx", "bar_generator.onnx", "encoder.onnx", "generator.onnx", "model.yaml"]
    assert "last bar from the bar graphs" in printed.out
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left
    card = load_model_card(out)
    assert card.condition_track == "Piano" and card.output_tracks == [
        "Drums", "Guitar", "Bass", "Strings"]
    assert card.latent_dim == 8 and card.encoder_outputs == 7 and card.threshold == 0.5
    assert card.metrics["training_steps"] == 6
    assert card.training["model"]["latent_dim"] == 8
    # golden parity: ONNX Runtime and PyTorch agree to 1e-4 (export measured it on random inputs)
    assert card.metrics["export_parity_max_abs_diff"] < 1e-4
    meta = check_onnx_metadata(out / "generator.onnx")
    assert meta["musegan_live.steps_per_bar"] == "48"
    session = ort.InferenceSession(str(out / "encoder.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["condition", "known_mask"]
    assert session.get_inputs()[0].shape[0] == "batch"
    bar = ort.InferenceSession(str(out / "bar_generator.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in bar.get_inputs()][-1] == "past_beats"
    assert check_onnx_metadata(out / "bar_generator.onnx")["musegan_live.part"] == '"bar_generator"'


def test_reexport_replaces_the_model_but_keeps_its_card(reference_run: Path,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    export.export_model(reference_run / "checkpoint.pt", out)
    (out / "MODEL_CARD.md").write_text("# my notes\n")
    (out / "trt_cache").mkdir()  # derived from the old weights: must go
    (out / "model.yaml").write_text("stale: true\n")
    export.export_model(reference_run / "checkpoint.pt", out)
    assert sorted(p.name for p in out.iterdir()) == [
        "MODEL_CARD.md", "bar_encoder.onnx", "bar_generator.onnx", "encoder.onnx",
        "generator.onnx", "model.yaml"]
    assert (out / "MODEL_CARD.md").read_text() == "# my notes\n"
    assert load_model_card(out).metrics["training_steps"] == 6


def test_failed_parity_check_leaves_no_model(reference_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "broken"
    with pytest.raises(ModelError, match="parity check failed"):
        export.export_model(reference_run / "checkpoint.pt", out, tolerance=1e-12)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_bar_graphs_that_differ_from_the_whole_model_leave_no_model(
        reference_run: Path, tmp_path: Path, monkeypatch) -> None:
    from training.model.bar_plan import BarGenerator

    right = BarGenerator.forward

    def skewed(self, z, f_full, f_12x84, f_12x7, f_4x7, f_4x1, f_1x1, bar_beats, past_beats):
        return right(self, z, f_full, f_12x84, f_12x7, f_4x7, f_4x1, f_1x1, bar_beats,
                     past_beats) * 0.9

    monkeypatch.setattr(BarGenerator, "forward", skewed)
    out = tmp_path / "broken"
    with pytest.raises(ModelError, match="bar graphs' last bar differs from bar 4"):
        export.export_model(reference_run / "checkpoint.pt", out)
    assert not out.exists()


@pytest.fixture(scope="module")
def averaged_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference run, keeping a moving average of the weights (train.ema_decay)."""
    out = tmp_path_factory.mktemp("averaged")
    assert run_train(data, out, "--set", "train.ema_decay=0.9") == 0
    return out


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a
               if a[k].dtype.is_floating_point)


def test_a_run_keeps_the_average_and_resume_carries_it_on(
    data: Path, averaged_run: Path, reference_run: Path, tmp_path: Path
) -> None:
    state = load_checkpoint(averaged_run / "checkpoint.pt")
    assert "generator_ema" not in load_checkpoint(reference_run / "checkpoint.pt")
    # the live weights are those of the same run without an average; the average lags them
    torch.testing.assert_close(state["generator"],
                               load_checkpoint(reference_run / "checkpoint.pt")["generator"])
    assert max_diff(state["generator_ema"], state["generator"]) > 1e-4
    # stopped after step 1 and resumed: the same average as the uninterrupted run
    assert run_train(data, tmp_path, "--set", "train.ema_decay=0.9", "--max-minutes", "0") == 0
    assert train.main(["--resume", str(tmp_path / "checkpoint.pt"), "--out", str(tmp_path)]) == 0
    resumed = load_checkpoint(tmp_path / "checkpoint.pt")
    assert max_diff(resumed["generator_ema"], state["generator_ema"]) < 1e-4


def test_export_ships_the_average_unless_told_otherwise(averaged_run: Path, tmp_path: Path,
                                                        capsys) -> None:
    from musegan_live.model.inference import Accompanist
    from training.model.networks import TrackConditionalGenerator
    from training.train_config import config_from_dict

    state = load_checkpoint(averaged_run / "checkpoint.pt")
    cfg = config_from_dict(state["config"])
    condition, known_mask, z = export.random_inputs(2, cfg.model.latent_dim, seed=3)

    def torch_output(weights: str) -> np.ndarray:
        net = TrackConditionalGenerator(cfg.model)
        net.load_state_dict(state[weights])
        with torch.no_grad():
            return net.eval()(z, condition, known_mask).numpy()

    for flags, weights, said, other in (
        ([], "generator_ema", "moving average (decay 0.9)", "generator"),
        (["--live-weights"], "generator", "as trained", "generator_ema"),
    ):
        out = tmp_path / weights
        assert export.main([str(averaged_run / "checkpoint.pt"), "-o", str(out), *flags]) == 0
        assert f"weights {said}" in capsys.readouterr().out
        assert load_model_card(out).metrics["weights"] == said
        shipped = Accompanist.from_dir(out).probabilities(
            condition.numpy(), known_mask.numpy(), z.numpy())
        # ONNX agrees with the intended weights far better than with the other set
        to_intended = np.abs(shipped - torch_output(weights)).max()
        to_other = np.abs(shipped - torch_output(other)).max()
        assert to_intended < to_other / 10, (to_intended, to_other)
