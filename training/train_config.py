"""The training configuration: a typed schema, YAML loading, ``--set`` overrides, validation.

A config file (``configs/train/*.yaml``) has four sections, ``data``, ``model``, ``train`` and
``log``; every key is a field of the dataclasses below, with its default. Unknown keys and values of
the wrong type raise :class:`~musegan_live.errors.ConfigError` naming the dotted key, so a typo
never silently falls back to a default.

The config travels inside checkpoints and into ``model.yaml`` as a plain dict (``to_dict``), so
``torch.load(weights_only=True)`` can read it back.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from musegan_live.errors import ConfigError
from musegan_live.model.decoding import NoteDecoding
from musegan_live.representation import TRACK_NAMES, track_index


@dataclass
class DataFile:
    """One LPD-5 sparse ``.npz`` of phrases and how often batches draw from it."""

    path: str = ""
    weight: float = 1.0
    #: this file's transposition, semitones up or down (None = ``data.transpose_semitones``)
    transpose_semitones: int | None = None


@dataclass
class DataConfig:
    #: training phrases; each item is a path or ``{path, weight, transpose_semitones}`` (weights
    #: need not sum to 1; a file's transpose_semitones overrides the one below)
    train: list[DataFile] = field(default_factory=list)
    #: optional held-out phrases: sample conditions and the validation Wasserstein estimate
    validation: str | None = None
    #: share of examples whose condition is dropped entirely (generation from scratch)
    condition_dropout: float = 0.1
    #: share of examples heard as live: bars 1-3 and bar 4 up to a step in 0..47
    live_mask_share: float = 0.0
    #: share of examples with the whole phrase heard (offline accompaniment)
    full_mask_share: float = 0.0
    #: of the live examples, the share whose "now" is on a beat or just after it
    on_beat_share: float = 0.7
    #: "just after a beat": at most this many steps after the boundary
    after_beat_steps: int = 3
    #: transpose each example's pitched tracks by up to this many semitones, up or down (0 = off)
    transpose_semitones: int = 0
    #: share of examples that change key at a bar line (every pitched track, up to a tritone)
    modulation_share: float = 0.0


@dataclass
class ModelConfig:
    condition_track: str = "Piano"
    latent_dim: int = 128
    #: encoder widths: [full-res, 12x84 / 12x7 streams, 12x7 merge, 4x7, 4x1 and 1x1 maps]
    encoder_channels: list[int] = field(default_factory=lambda: [8, 32, 64, 64, 64])
    #: shared generator stages at (bars, steps, pitch) = (4,1,1), (4,4,1), (4,4,7)
    generator_shared_channels: list[int] = field(default_factory=lambda: [512, 256, 128])
    #: private per-track stages: first tconv, second tconv, full-resolution tconv
    generator_private_channels: list[int] = field(default_factory=lambda: [64, 32, 16])
    #: discriminator per-track pitch-time / time-pitch widths and their merge
    discriminator_private_channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    #: discriminator stages across tracks at (4,4,7), (4,4,1), (4,1,1)
    discriminator_shared_channels: list[int] = field(default_factory=lambda: [128, 256, 256])
    discriminator_chroma_channels: list[int] = field(default_factory=lambda: [32, 64])
    discriminator_onset_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    discriminator_merge_channels: int = 256
    #: width of the causal beat context (the path from earlier bars to the planned one)
    context_channels: int = 64
    #: a note starts where the generator's probability >= threshold (written to model.yaml)
    threshold: float = 0.5
    #: note decoding written to model.yaml (musegan_live/decoding.py): a started note holds while
    #: probability >= sustain_threshold (null = threshold, no hysteresis)
    sustain_threshold: float | None = 0.4
    #: shortest note kept per track, in steps (48 per bar: 3 = a 16th, 6 = an 8th); 87 % of the
    #: string notes in the POP909 + MMA corpus last an 8th or more, 97 % of guitar notes a 16th
    min_note_steps: dict[str, int] = field(
        default_factory=lambda: {"Piano": 3, "Guitar": 3, "Bass": 3, "Strings": 6}
    )
    #: most pitches sounding at one step per track: ten fingers; the 99th percentile of the
    #: corpus for Bass (2: a note and its octave) and Strings (5); none for Guitar (MMA's chord
    #: parts, merged into Guitar, stack up to 26 pitches)
    max_voices: dict[str, int] = field(
        default_factory=lambda: {"Piano": 10, "Bass": 2, "Strings": 5}
    )

    def note_decoding(self) -> NoteDecoding:
        """The decoding of this model's output (raises ValueError for bad values)."""
        return NoteDecoding(self.threshold, self.sustain_threshold, self.min_note_steps,
                            self.max_voices)


@dataclass
class TrainConfig:
    seed: int = 0
    batch_size: int = 64
    #: generator steps (each preceded by n_critic critic steps)
    steps: int = 50000
    n_critic: int = 5
    lr_generator: float = 0.001
    lr_discriminator: float = 0.001
    adam_betas: list[float] = field(default_factory=lambda: [0.5, 0.9])
    #: "constant", "linear" (to final_lr_fraction at the last step) or "cosine"
    lr_schedule: str = "linear"
    warmup_steps: int = 0
    final_lr_fraction: float = 0.1
    gp_lambda: float = 10.0
    drift_epsilon: float = 0.001
    #: bf16 autocast on CUDA (ignored on CPU)
    bf16: bool = True
    #: torch.compile the encoder+generator (the critic is never compiled: see train.py)
    compile: bool = False
    #: torch intra-op threads on CPU (0 = torch's default)
    cpu_threads: int = 0
    #: decay of the moving average of the E+G weights that export ships (0 = off; training/ema.py)
    ema_decay: float = 0.0
    #: weight of the reconstruction term (binary cross-entropy of G's probabilities against the
    #: real accompaniment of conditioned examples, pix2pix-style) next to the adversarial loss
    recon_weight: float = 0.0
    #: the first generator steps learn from the reconstruction term alone (no critic): cheap
    #: steps that learn harmony and the heard past before the adversarial phase
    recon_only_steps: int = 0
    #: weight of the conditional VAE's KL term (0 = off): G reconstructs every example from a z
    #: drawn from q(z | real band) (training/model/posterior.py), so z means groove and
    #: arrangement; 1 = the VAE's evidence bound, smaller lets z carry more
    kl_weight: float = 0.0


@dataclass
class LogConfig:
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 1000
    #: also keep every checkpoint as checkpoint_NNNNNNN.pt (checkpoint.pt is the latest)
    keep_checkpoints: bool = False
    #: how many phrases the sample grid holds (each at three knowledge levels)
    n_samples: int = 4
    progress_bar: bool = True


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able nested dict (the form stored in checkpoints and model.yaml)."""
        return dataclasses.asdict(self)


def _check_value(value: Any, hint: Any, key: str) -> Any:
    """Convert ``value`` to the type ``hint`` or raise ConfigError naming ``key``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check_value(value, inner[0], key)
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        return {
            _check_value(k, key_hint, f"{key} (a key)"): _check_value(v, value_hint, f"{key}.{k}")
            for k, v in value.items()
        }
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        return [_check_value(v, item_hint, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(hint):
        if hint is DataFile and isinstance(value, str):
            value = {"path": value}
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        return _build(hint, value, key)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint} for {key}")  # a bug in this module


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"unknown config key '{dotted}' (known keys here: {known})")
        kwargs[key] = _check_value(value, hints[key], dotted)
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise ConfigError(f"config key '{key}' {what}")

    try:
        track_index(cfg.model.condition_track)
    except ValueError as err:
        raise ConfigError(
            f"config key 'model.condition_track' is {cfg.model.condition_track!r}; "
            f"choose one of {', '.join(TRACK_NAMES)}"
        ) from err
    m, t, lg = cfg.model, cfg.train, cfg.log
    need(0.0 <= cfg.data.condition_dropout <= 1.0, "data.condition_dropout", "must be in [0, 1]")
    d = cfg.data
    need(0.0 <= d.live_mask_share and 0.0 <= d.full_mask_share
         and d.live_mask_share + d.full_mask_share <= 1.0, "data.live_mask_share/full_mask_share",
         "must be >= 0 and sum to at most 1 (the rest is a uniform 'now')")
    need(0.0 <= d.on_beat_share <= 1.0, "data.on_beat_share", "must be in [0, 1]")
    need(0 <= d.after_beat_steps < 12, "data.after_beat_steps", "must be in 0..11 (a beat)")
    need(0 <= d.transpose_semitones <= 11, "data.transpose_semitones",
         "must be in 0..11 semitones (0 = no transposition)")
    need(0.0 <= d.modulation_share <= 1.0, "data.modulation_share", "must be in [0, 1]")
    for i, item in enumerate(cfg.data.train):
        need(bool(item.path), f"data.train[{i}].path", "must name an .npz file")
        need(item.weight > 0, f"data.train[{i}].weight", "must be > 0")
        need(item.transpose_semitones is None or 0 <= item.transpose_semitones <= 11,
             f"data.train[{i}].transpose_semitones", "must be in 0..11 semitones (or left out)")
    need(m.latent_dim >= 1, "model.latent_dim", "must be >= 1")
    for key, n in [
        ("encoder_channels", 5),
        ("generator_shared_channels", 3),
        ("generator_private_channels", 3),
        ("discriminator_private_channels", 3),
        ("discriminator_shared_channels", 3),
        ("discriminator_chroma_channels", 2),
        ("discriminator_onset_channels", 3),
    ]:
        widths = getattr(m, key)
        need(len(widths) == n and all(w >= 1 for w in widths), f"model.{key}",
             f"must be a list of {n} positive widths, got {widths}")
    need(m.discriminator_merge_channels >= 1, "model.discriminator_merge_channels", "must be >= 1")
    need(m.context_channels >= 1, "model.context_channels", "must be >= 1")
    need(0.0 < m.threshold < 1.0, "model.threshold", "must be in (0, 1)")
    try:
        m.note_decoding()
    except ValueError as err:
        raise ConfigError(f"config key 'model' has a bad note decoding: {err}") from err
    need(t.batch_size >= 1, "train.batch_size", "must be >= 1")
    need(t.steps >= 1, "train.steps", "must be >= 1")
    need(t.n_critic >= 1, "train.n_critic", "must be >= 1")
    need(t.lr_generator > 0 and t.lr_discriminator > 0, "train.lr_*", "must be > 0")
    need(len(t.adam_betas) == 2 and all(0 <= b < 1 for b in t.adam_betas), "train.adam_betas",
         "must be two numbers in [0, 1)")
    need(t.lr_schedule in ("constant", "linear", "cosine"), "train.lr_schedule",
         f"must be constant, linear or cosine, got {t.lr_schedule!r}")
    need(0 <= t.warmup_steps < t.steps, "train.warmup_steps", "must be in [0, train.steps)")
    need(0.0 <= t.final_lr_fraction <= 1.0, "train.final_lr_fraction", "must be in [0, 1]")
    need(t.gp_lambda >= 0 and t.drift_epsilon >= 0, "train.gp_lambda/drift_epsilon", "must be >= 0")
    need(t.cpu_threads >= 0, "train.cpu_threads", "must be >= 0")
    need(t.recon_weight >= 0, "train.recon_weight", "must be >= 0 (0 = adversarial loss only)")
    need(t.recon_only_steps == 0 or (t.recon_weight > 0 and t.recon_only_steps <= t.steps),
         "train.recon_only_steps", "needs train.recon_weight > 0 and must be <= train.steps")
    need(t.kl_weight >= 0, "train.kl_weight", "must be >= 0 (0 = no posterior)")
    need(t.kl_weight == 0 or t.recon_weight > 0, "train.kl_weight",
         "needs train.recon_weight > 0 (the posterior learns through the reconstruction)")
    need(0.0 <= t.ema_decay < 1.0, "train.ema_decay", "must be in [0, 1) (0 = no average)")
    for key in ("log_every", "sample_every", "checkpoint_every", "n_samples"):
        need(getattr(lg, key) >= 1, f"log.{key}", "must be >= 1")


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build and validate a Config from a nested dict (a parsed YAML file or a checkpoint)."""
    if not isinstance(values, dict):
        raise ConfigError(f"a training config must be a mapping of sections, got {values!r}")
    cfg = _build(Config, values, "")
    _validate(cfg)
    return cfg


def apply_override(values: dict[str, Any], assignment: str) -> None:
    """Apply one ``--set a.b=value`` to a nested dict; ``value`` is parsed as YAML."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. train.steps=100")
    dotted, raw = assignment.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {assignment!r}: value is not valid YAML: {err}") from err
    keys = dotted.strip().split(".")
    node = values
    for depth, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            section = ".".join(keys[: depth + 1])
            raise ConfigError(f"--set {assignment!r}: '{section}' is not a section")
        node = child
    node[keys[-1]] = value


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (or start from defaults when ``path`` is None) and apply overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise ConfigError(f"cannot read config {path}: {err.strerror}") from err
        try:
            values = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from err
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: a training config must be a mapping of sections")
    for assignment in overrides:
        apply_override(values, assignment)
    return config_from_dict(values)
