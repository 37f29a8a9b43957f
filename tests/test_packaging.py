"""The built wheel carries the shipped model and needs no PyTorch (what `pip install` gets)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_carries_the_default_model(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q",
                    "-w", str(tmp_path)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("musegan_live-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # the bar graphs too: without them the daemon plans every bar from the whole window
    for part in ("encoder.onnx", "generator.onnx", "bar_encoder.onnx", "bar_generator.onnx",
                 "model.yaml"):
        assert f"musegan_live/model/default/{part}" in names


def test_the_runtime_needs_no_torch() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"]).lower()
    assert "torch" not in runtime and "tqdm" not in runtime
    assert any(d.startswith("torch") for d in project["optional-dependencies"]["train"])
