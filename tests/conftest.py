"""Fixtures shared across the test packages.

``tiny_model_dir`` is a real exported model, made once per test session by the real pipeline:
the tiny training config on a code-made corpus, then ``training.export`` with its parity check.
It is small and barely trained, so tests that need notes from it lower the threshold.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``exported_models``-style directory of a tiny model (encoder.onnx, generator.onnx, yaml)."""
    override = os.environ.get("MUSEGAN_TEST_MODEL")
    if override:
        return Path(override)
    pytest.importorskip("torch", reason="making the tiny model needs the 'train' extra (torch)")
    from musegan_live.representation import save_sparse_npz
    from training import export, train
    from training.data.dataset import synthetic_phrases

    root = tmp_path_factory.mktemp("tiny_model")
    data = root / "toy.npz"
    save_sparse_npz(data, synthetic_phrases(32, seed=1))
    config = Path(__file__).resolve().parents[1] / "configs" / "train" / "tiny.yaml"
    run_dir = root / "run"
    status = train.main(
        ["--config", str(config), "--out", str(run_dir), "--set", f"data.train=[{data}]"]
    )
    assert status == 0, "tiny training run failed"
    model_dir = root / "tiny"
    export.export_model(run_dir / "checkpoint.pt", model_dir, name="tiny")
    return model_dir


@pytest.fixture(scope="session")
def tiny_model_threshold(tiny_model_dir: Path) -> float:
    """A note threshold at which the barely trained tiny model plays on all four tracks.

    Its probabilities sit in a narrow band, so the model's own threshold would leave it silent:
    take, per output track, the 97th percentile of its probabilities for a random piano
    condition, and use the lowest, so every track is on for about 3 % of its cells or more.
    """
    import numpy as np

    from musegan_live.model.inference import Accompanist

    accompanist = Accompanist.from_dir(tiny_model_dir)
    rng = np.random.default_rng(0)
    condition = (rng.random((4, 4, 48, 84)) < 0.05).astype(np.float32)
    known_mask = np.ones((4, 4, 48), np.float32)
    probabilities = accompanist.probabilities(condition, known_mask, accompanist.sample_z(rng, 4))
    per_track = [np.quantile(probabilities[..., k], 0.97) for k in range(probabilities.shape[-1])]
    return float(min(min(per_track), accompanist.threshold))
