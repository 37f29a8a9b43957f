"""training.calibrate: per-track start thresholds chosen on training phrases, written to
model.yaml and used by the runtime."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from musegan_live.model.inference import Accompanist
from musegan_live.representation import save_sparse_npz
from training import calibrate
from training.data.dataset import synthetic_phrases


def test_calibration_matches_the_band_density_and_is_written(tiny_model_dir, tmp_path: Path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    data = tmp_path / "train.npz"
    save_sparse_npz(data, synthetic_phrases(12, seed=3))
    assert calibrate.main(["--model", str(model), "--data", str(data), "--n", "8", "--write"]) == 0
    acc = Accompanist.from_dir(model)
    thresholds = dict(acc.decoding.track_thresholds)
    assert set(thresholds) == {"Guitar", "Bass", "Strings"}  # drums keep the common one
    real = synthetic_phrases(12, seed=3)
    result = calibrate.calibrate(acc, real[:8], np.random.default_rng(0))
    for name, row in result.items():
        # the chosen threshold is the grid point closest to the band's density
        at_model = abs(row["density_at_model_threshold"] - row["real_density"])
        assert abs(row["density"] - row["real_density"]) <= at_model + 1e-9, name
        assert row["threshold"] in calibrate.THRESHOLDS
