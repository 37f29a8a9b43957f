"""Finding and validating an exported model directory (``docs/ARCHITECTURE.md``, ONNX contract).

A model directory holds ``encoder.onnx``, ``generator.onnx`` and ``model.yaml``, and (exports
since the bar-wise live path) ``bar_encoder.onnx`` and ``bar_generator.onnx``. This module reads
``model.yaml`` into a :class:`ModelCard` and checks the ONNX ``metadata_props`` against this
runtime's :func:`~musegan_live.representation.representation_constants`; any problem is a
:class:`~musegan_live.errors.ModelError` that names the file or key and says what to do.
Only onnxruntime is used to read ONNX files (the runtime does not depend on the ``onnx`` package).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from musegan_live.atomic_files import atomic_write
from musegan_live.errors import ModelError
from musegan_live.model.decoding import NoteDecoding
from musegan_live.representation import TRACK_NAMES, other_tracks, representation_constants

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
ENCODER_FILE = "encoder.onnx"
GENERATOR_FILE = "generator.onnx"
#: the live path's graphs of the window's last bar alone (optional: older exports lack them)
BAR_ENCODER_FILE = "bar_encoder.onnx"
BAR_GENERATOR_FILE = "bar_generator.onnx"
CARD_FILE = "model.yaml"
#: prefix of the ONNX metadata_props keys that repeat the representation constants
METADATA_PREFIX = "musegan_live."
#: environment variable that overrides :func:`default_model_dir`
MODEL_ENV = "MUSEGAN_LIVE_MODEL"
EXPORT_HINT = "export one with: python -m training.export CHECKPOINT -o DIR"


@dataclass(frozen=True)
class ModelCard:
    """The fields of ``model.yaml`` plus the directory they came from."""

    directory: Path
    name: str
    format_version: int
    representation: dict[str, Any]
    condition_track: str  # a track name, e.g. "Piano"
    output_tracks: list[str]  # the four accompaniment track names, in representation order
    latent_dim: int
    encoder_outputs: int  # K: the encoder's outputs features_0 .. features_{K-1}
    #: ``threshold`` and the hysteresis, minimum note lengths and voice limits of model.yaml's
    #: ``decoding`` section (none of those if it is absent)
    decoding: NoteDecoding
    training: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        """A note starts where probability >= threshold (model.yaml ``threshold``)."""
        return self.decoding.threshold

    @property
    def condition_index(self) -> int:
        """Representation index of the condition track (Piano -> 1)."""
        return TRACK_NAMES.index(self.condition_track)

    @property
    def output_indices(self) -> list[int]:
        """Representation indices of the output tracks."""
        return [TRACK_NAMES.index(t) for t in self.output_tracks]

    @property
    def encoder_path(self) -> Path:
        return self.directory / ENCODER_FILE

    @property
    def generator_path(self) -> Path:
        return self.directory / GENERATOR_FILE

    @property
    def bar_paths(self) -> tuple[Path, Path] | None:
        """``bar_encoder.onnx`` and ``bar_generator.onnx`` when the export has both, else None."""
        paths = (self.directory / BAR_ENCODER_FILE, self.directory / BAR_GENERATOR_FILE)
        return paths if all(p.is_file() for p in paths) else None

    def to_yaml_dict(self) -> dict[str, Any]:
        """The ``model.yaml`` content (every field but ``directory``)."""
        return {
            "name": self.name,
            "format_version": self.format_version,
            "representation": self.representation,
            "condition_track": self.condition_track,
            "output_tracks": list(self.output_tracks),
            "latent_dim": self.latent_dim,
            "encoder_outputs": self.encoder_outputs,
            "threshold": self.threshold,
            "decoding": self.decoding.to_mapping(),
            "training": self.training,
            "data": self.data,
            "metrics": self.metrics,
        }


#: The shipped model: package data beside this module, so a wheel, an editable install and the
#: repository find it the same way (``exported_models/default`` in the repository links here).
SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "default"


def default_model_dir() -> Path:
    """``$MUSEGAN_LIVE_MODEL`` if set, else the shipped model (:data:`SHIPPED_MODEL_DIR`)."""
    override = os.environ.get(MODEL_ENV)
    if override:
        return Path(override).expanduser()
    return SHIPPED_MODEL_DIR


def _require(values: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: Path) -> Any:
    if key not in values:
        raise ModelError(f"{path}: key '{key}' is missing; re-export the model ({EXPORT_HINT})")
    value = values[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        value = None  # YAML's true/false is not a number here
    if not isinstance(value, kind):
        raise ModelError(f"{path}: key '{key}' has the wrong type ({value!r}); re-export the model")
    return value


def load_model_card(model_dir: str | os.PathLike | None = None) -> ModelCard:
    """Read and validate ``model_dir/model.yaml`` (default :func:`default_model_dir`).

    Checks that the directory, ``model.yaml`` and both ONNX files exist, that every key is there
    with the right type, and that the representation and tracks match this runtime. Does not open
    the ONNX files (see :func:`check_onnx_metadata`).
    """
    directory = Path(model_dir) if model_dir is not None else default_model_dir()
    if not directory.is_dir():
        raise ModelError(
            f"model directory {directory} does not exist; {EXPORT_HINT}, "
            f"or point ${MODEL_ENV} / --model at an exported model"
        )
    card_path = directory / CARD_FILE
    try:
        values = yaml.safe_load(card_path.read_text())
    except FileNotFoundError as err:
        raise ModelError(f"{card_path} is missing; {EXPORT_HINT}") from err
    except (OSError, yaml.YAMLError) as err:
        raise ModelError(
            f"{card_path} cannot be read as YAML ({err}); re-export the model"
        ) from err
    if not isinstance(values, dict):
        raise ModelError(f"{card_path} is not a mapping of keys; re-export the model")

    version = _require(values, "format_version", int, card_path)
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{card_path}: format_version {version} is not supported (this runtime reads "
            f"{FORMAT_VERSION}); re-export the model with this version of musegan-live"
        )
    representation = _require(values, "representation", dict, card_path)
    _compare_constants(representation, card_path, "representation.")
    condition = _require(values, "condition_track", str, card_path)
    if condition not in TRACK_NAMES:
        raise ModelError(f"{card_path}: condition_track {condition!r} is not one of {TRACK_NAMES}")
    outputs = _require(values, "output_tracks", list, card_path)
    expected = [TRACK_NAMES[t] for t in other_tracks(TRACK_NAMES.index(condition))]
    if outputs != expected:
        raise ModelError(
            f"{card_path}: output_tracks {outputs} should be {expected} for condition {condition}"
        )
    latent_dim = _require(values, "latent_dim", int, card_path)
    encoder_outputs = _require(values, "encoder_outputs", int, card_path)
    threshold = float(_require(values, "threshold", (int, float), card_path))
    if latent_dim < 1 or encoder_outputs < 1 or not 0.0 < threshold < 1.0:
        raise ModelError(
            f"{card_path}: latent_dim ({latent_dim}) and encoder_outputs ({encoder_outputs}) must "
            f"be >= 1 and threshold ({threshold}) in (0, 1); re-export the model"
        )
    try:
        decoding = NoteDecoding.from_mapping(threshold, values.get("decoding"))
    except ValueError as err:
        raise ModelError(
            f"{card_path}: decoding: {err}; fix that key or re-export the model"
        ) from err
    card = ModelCard(
        directory=directory,
        name=str(values.get("name", directory.name)),
        format_version=version,
        representation=representation,
        condition_track=condition,
        output_tracks=list(outputs),
        latent_dim=latent_dim,
        encoder_outputs=encoder_outputs,
        decoding=decoding,
        training=dict(values.get("training") or {}),
        data=dict(values.get("data") or {}),
        metrics=dict(values.get("metrics") or {}),
    )
    for onnx_path in (card.encoder_path, card.generator_path):
        if not onnx_path.is_file():
            raise ModelError(f"{onnx_path} is missing from the model directory; {EXPORT_HINT}")
    return card


def _compare_constants(found: Mapping[str, Any], where: Path, key_prefix: str) -> None:
    """Raise ModelError naming the first representation constant that differs or is missing."""
    for key, ours in representation_constants().items():
        if key not in found:
            raise ModelError(
                f"{where}: '{key_prefix}{key}' is missing; the model was exported by another "
                f"version of musegan-live; re-export it ({EXPORT_HINT})"
            )
        if found[key] != ours:
            raise ModelError(
                f"{where}: '{key_prefix}{key}' is {found[key]!r} but this runtime uses {ours!r}; "
                "use a model exported for this representation (re-export it) or a matching "
                "musegan-live version"
            )


def check_metadata_map(metadata: Mapping[str, str], path: str | os.PathLike) -> None:
    """Check ONNX ``metadata_props`` (``musegan_live.<key>`` = JSON) against this runtime."""
    decoded: dict[str, Any] = {}
    for key in representation_constants():
        raw = metadata.get(METADATA_PREFIX + key)
        if raw is None:
            continue  # reported as missing by _compare_constants
        try:
            decoded[key] = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ModelError(
                f"{path}: metadata '{METADATA_PREFIX}{key}' is not JSON ({raw!r}); re-export it"
            ) from err
    _compare_constants(decoded, Path(path), METADATA_PREFIX)


def open_session_for_metadata(path: Path) -> Any:
    """An onnxruntime session of ``path`` with optimizations off (for reading metadata)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return load_session(path, options, ["CPUExecutionProvider"])


def load_session(path: Path, options: Any, providers: list[Any]) -> Any:
    """``onnxruntime.InferenceSession`` for ``path``; a corrupt file becomes a ModelError."""
    import onnxruntime as ort

    if not Path(path).is_file():
        raise ModelError(f"{path} is missing; {EXPORT_HINT}")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as err:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(
            f"{path} is not a loadable ONNX model ({first_line}); re-export it ({EXPORT_HINT})"
        ) from err


def check_onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """Open ``path`` with onnxruntime and check its representation metadata; return the map.

    Raises ModelError for a missing or corrupt file and for constants that differ from this
    runtime's (naming the ``musegan_live.<key>``).
    """
    session = open_session_for_metadata(Path(path))
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    check_metadata_map(metadata, path)
    return metadata


def write_track_thresholds(model_dir: str | os.PathLike, thresholds: Mapping[str, float]) -> None:
    """Store per-track start thresholds as ``decoding.track_thresholds`` in ``model.yaml``
    (the rest of the file is kept; written atomically)."""
    card_path = Path(model_dir) / CARD_FILE
    values = yaml.safe_load(card_path.read_text())
    values.setdefault("decoding", {})["track_thresholds"] = {
        name: float(value) for name, value in thresholds.items()
    }
    text = yaml.safe_dump(values, sort_keys=False).encode()
    atomic_write(card_path, lambda f: f.write(text))
