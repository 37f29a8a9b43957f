"""``Accompanist``: the exported encoder + generator on ONNX Runtime (numpy in, numpy out).

    acc = Accompanist.from_dir("exported_models/default")
    z = acc.sample_z(np.random.default_rng(0))                 # float32[1, latent_dim]
    tracks = acc.accompany(condition, known_mask, z)            # bool[1, 4, 48, 84, 4]
    phrase = acc.full_phrase(condition, tracks)                 # bool[1, 4, 48, 84, 5]
    bar = acc.plan_last_bar(condition, known_mask, z)           # bool[48, 84, 4]: a live plan

``condition`` is the condition track's pianoroll ``[B, 4 bars, 48 steps, 84 pitches]`` (bool or
0/1 float); ``known_mask`` ``[B, 4, 48]`` is 1 where a step has been heard (the encoder multiplies
the condition by it, so unheard steps cannot leak). This module imports onnxruntime, never torch.

A live plan needs only the window's last bar: :meth:`Accompanist.plan_last_bar` runs the export's
bar graphs (``bar_encoder.onnx`` on the last bar, ``bar_generator.onnx`` with the beat summaries
of the 3 bars before it, which are kept from earlier plans since finished bars do not change) and
decodes that one bar, carrying in what sounded before it. Exports without the bar graphs take
the whole window's graphs and keep the last bar.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from musegan_live.config.live import LiveConfig
from musegan_live.errors import ModelError
from musegan_live.model.decoding import NoteDecoding, decode_notes
from musegan_live.model.model_dir import (
    ModelCard,
    check_metadata_map,
    load_model_card,
    load_session,
)
from musegan_live.representation import N_BARS, N_PITCHES, N_TRACKS, STEPS_PER_BAR, check_roll

logger = logging.getLogger(__name__)

#: short names accepted for execution providers (case-insensitive), besides the full names
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
}
#: sub-folder of the model directory where the TensorRT provider caches its engines
TRT_CACHE_DIR = "trt_cache"
#: inputs of the bar graphs besides the bar itself: the bar encoder's outputs, then the past
BAR_FEATURE_NAMES = [*(f"bar_features_{k}" for k in range(6)), "bar_beats"]
PAST_BEATS_NAME = "past_beats"
#: beat summaries of finished bars kept between plans (a window needs 3; more serve loops)
KEPT_BAR_SUMMARIES = 16


def resolve_providers(names: Sequence[str]) -> list[str]:
    """Full onnxruntime provider names for ``names`` (``"CPU"``, ``"cuda"``, full names...).

    Raises ModelError naming a provider this onnxruntime build does not offer.
    """
    import onnxruntime as ort

    if isinstance(names, str):
        names = [names]
    available = ort.get_available_providers()
    resolved = []
    for name in names:
        full = PROVIDER_ALIASES.get(name.strip().lower(), name.strip())
        if full not in available:
            raise ModelError(
                f"execution provider {name!r} is not available in this onnxruntime "
                f"(available: {', '.join(available)}); install the matching onnxruntime build "
                "(onnxruntime-gpu for CUDA/TensorRT, with their libraries) or use CPU"
            )
        resolved.append(full)
    if not resolved:
        raise ModelError("no execution provider given; use e.g. ('CPUExecutionProvider',)")
    return resolved


def _provider_options(provider: str, model_dir: Path) -> tuple[str, dict[str, str]] | str:
    if provider == "TensorrtExecutionProvider":
        # TensorRT builds an engine per input shape on first use (seconds); caching it in the
        # model directory makes later starts fast (the cache is specific to GPU and TensorRT).
        return provider, {
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": str(model_dir / TRT_CACHE_DIR),
            "trt_timing_cache_enable": "True",
        }
    return provider


class Accompanist:
    """Encoder + generator sessions of one exported model (see the module docstring).

    Calls may come from several threads at once: onnxruntime sessions allow concurrent runs, and
    the only state kept between calls (the beat summaries of finished bars, a pure function of
    each bar's notes and mask) is behind a lock.
    """

    def __init__(self, card: ModelCard, encoder_session, generator_session,
                 bar_sessions: tuple[Any, Any] | None = None) -> None:
        self.card = card
        self.condition_track: int = card.condition_index
        self.output_tracks: list[int] = card.output_indices
        self.latent_dim: int = card.latent_dim
        self.decoding: NoteDecoding = card.decoding
        self._encoder = encoder_session
        self._generator = generator_session
        self.feature_names = [f"features_{k}" for k in range(card.encoder_outputs)]
        self._bar_sessions = bar_sessions
        self._summaries: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._summaries_lock = threading.Lock()
        self._check_signatures()

    @classmethod
    def from_dir(
        cls,
        model_dir: str | os.PathLike | None = None,
        *,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        intra_op_threads: int = 1,
    ) -> Accompanist:
        """Load ``model_dir`` (default :func:`~musegan_live.model.model_dir.default_model_dir`).

        ``providers`` in priority order, by full name or alias (CPU, CUDA, TensorRT);
        ``intra_op_threads`` threads per operator (1 keeps latency steady next to other work).
        Raises ModelError for a missing/corrupt model, mismatched constants or a provider
        this onnxruntime cannot use.
        """
        import onnxruntime as ort

        card = load_model_card(model_dir)
        if intra_op_threads < 1:
            raise ModelError(f"intra_op_threads must be >= 1, got {intra_op_threads}")
        wanted = resolve_providers(providers)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(intra_op_threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: ORT's warnings are not the user's concern
        session_providers = [_provider_options(p, card.directory) for p in wanted]
        sessions = []
        for path in (card.encoder_path, card.generator_path, *(card.bar_paths or ())):
            session = load_session(path, options, session_providers)
            check_metadata_map(dict(session.get_modelmeta().custom_metadata_map), path)
            missing = [p for p in wanted if p not in session.get_providers()]
            if missing:
                raise ModelError(
                    f"{path}: onnxruntime could not start {', '.join(missing)} (it fell back to "
                    f"{', '.join(session.get_providers())}); check the GPU drivers and the "
                    "CUDA/TensorRT libraries, or ask for CPUExecutionProvider"
                )
            sessions.append(session)
        logger.info("loaded model %s (%s) on %s, %d intra-op threads, %s", card.name,
                    card.directory, ", ".join(wanted), intra_op_threads,
                    "bar graphs for live plans" if card.bar_paths else "no bar graphs")
        bar_sessions = (sessions[2], sessions[3]) if card.bar_paths else None
        return cls(card, sessions[0], sessions[1], bar_sessions)

    @property
    def threshold(self) -> float:
        """The model's note-start threshold (``model.yaml``)."""
        return self.decoding.threshold

    @property
    def providers(self) -> list[str]:
        """The execution providers the sessions actually use."""
        return list(self._generator.get_providers())

    def _check_signatures(self) -> None:
        enc_in = [i.name for i in self._encoder.get_inputs()]
        enc_out = [o.name for o in self._encoder.get_outputs()]
        gen_in = [i.name for i in self._generator.get_inputs()]
        gen_out = [o.name for o in self._generator.get_outputs()]
        path = self.card.directory
        if enc_in != ["condition", "known_mask"] or enc_out != self.feature_names:
            raise ModelError(
                f"{path}/encoder.onnx has inputs {enc_in} and outputs {enc_out}; expected "
                f"['condition', 'known_mask'] and {self.feature_names} (model.yaml "
                "encoder_outputs); re-export the model"
            )
        if gen_in != ["z", *self.feature_names] or gen_out != ["tracks"]:
            raise ModelError(
                f"{path}/generator.onnx has inputs {gen_in} and outputs {gen_out}; expected "
                f"['z', {', '.join(self.feature_names)}] and ['tracks']; re-export the model"
            )
        if self._bar_sessions is not None:
            bar_enc, bar_gen = self._bar_sessions
            found = tuple([arg.name for arg in args] for args in (
                bar_enc.get_inputs(), bar_enc.get_outputs(), bar_gen.get_inputs(),
                bar_gen.get_outputs()))
            wanted = (["condition", "known_mask"], BAR_FEATURE_NAMES,
                      ["z", *BAR_FEATURE_NAMES, PAST_BEATS_NAME], ["tracks"])
            if found != wanted:
                raise ModelError(
                    f"{path}: the bar graphs have inputs/outputs {found}; expected {wanted}; "
                    "re-export the model"
                )
        z_shape = self._generator.get_inputs()[0].shape
        if z_shape[-1] != self.latent_dim:
            raise ModelError(
                f"{path}/generator.onnx takes z of size {z_shape[-1]} but model.yaml says "
                f"latent_dim {self.latent_dim}; re-export the model"
            )

    def sample_z(self, rng: np.random.Generator, batch: int = 1) -> np.ndarray:
        """Standard normal latents ``float32[batch, latent_dim]`` drawn with ``rng``."""
        return rng.standard_normal((batch, self.latent_dim), dtype=np.float32)

    def _inputs(
        self, condition: np.ndarray, known_mask: np.ndarray, z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The three model inputs as ``float32``, checked: ``condition [B, 4, 48, 84]``,
        ``known_mask [B, 4, 48]``, ``z [B, latent_dim]``, the same ``B``; ValueError otherwise."""
        condition = check_roll(condition, "condition", ("B", N_BARS, STEPS_PER_BAR, N_PITCHES))
        batch = condition.shape[0]
        known_mask = check_roll(known_mask, "known_mask", (batch, N_BARS, STEPS_PER_BAR))
        z = check_roll(z, "z", (batch, self.latent_dim))
        return (condition.astype(np.float32, copy=False), known_mask.astype(np.float32, copy=False),
                z.astype(np.float32, copy=False))

    def features(self, condition: np.ndarray, known_mask: np.ndarray) -> list[np.ndarray]:
        """The encoder's maps for a condition and mask (``features_0 .. features_{K-1}``)."""
        dummy_z = np.zeros((np.asarray(condition).shape[0], self.latent_dim), np.float32)
        condition, known_mask, _ = self._inputs(condition, known_mask, dummy_z)
        return self._encoder.run(None, {"condition": condition, "known_mask": known_mask})

    def probabilities(
        self, condition: np.ndarray, known_mask: np.ndarray, z: np.ndarray
    ) -> np.ndarray:
        """Note probabilities ``float32[B, 4, 48, 84, 4]`` of the output tracks.

        ``condition`` bool/float ``[B, 4, 48, 84]``; ``known_mask`` ``[B, 4, 48]`` (1 = heard);
        ``z`` ``float32[B, latent_dim]``. Raises ValueError for other shapes.
        """
        condition, known_mask, z = self._inputs(condition, known_mask, z)
        feats = self._encoder.run(None, {"condition": condition, "known_mask": known_mask})
        feeds = {"z": z, **dict(zip(self.feature_names, feats, strict=True))}
        return self._generator.run(["tracks"], feeds)[0]

    def accompany(
        self,
        condition: np.ndarray,
        known_mask: np.ndarray,
        z: np.ndarray,
        threshold: float | None = None,
        density: Mapping[str, float] | None = None,
    ) -> np.ndarray:
        """Notes ``bool[B, 4, 48, 84, 4]`` of the output tracks, decoded as ``model.yaml`` says.

        :func:`musegan_live.model.decoding.decode_notes` with the model's decoding; ``threshold``
        replaces its start threshold (``None``: the model's own); ``density`` (track name ->
        factor) then moves tracks' thresholds (``NoteDecoding.with_density``).
        """
        return self._decode(self.probabilities(condition, known_mask, z), threshold, density)

    def _decode(self, probabilities: np.ndarray, threshold: float | None,
                density: Mapping[str, float] | None,
                sounding_before: np.ndarray | None = None) -> np.ndarray:
        """The model's decoding, with ``threshold`` and ``density`` applied, of probabilities
        ``[B, bars, 48, 84, 4]`` (``musegan_live.model.decoding.decode_notes``)."""
        decoding = self.decoding.with_threshold(threshold).with_density(density)
        return decode_notes(probabilities, self.output_tracks, decoding, sounding_before)

    def last_bar_probabilities(
        self, condition: np.ndarray, known_mask: np.ndarray, z: np.ndarray
    ) -> np.ndarray:
        """Probabilities ``float32[B, 1, 48, 84, 4]`` of the window's last bar: the same numbers as
        bar 4 of :meth:`probabilities` (parity-checked at export), from the bar graphs."""
        if self._bar_sessions is None:
            return self.probabilities(condition, known_mask, z)[:, -1:]
        condition, known_mask, z = self._inputs(condition, known_mask, z)
        bar_encoder, bar_generator = self._bar_sessions
        past = self._past_beats(condition[:, :-1], known_mask[:, :-1])
        maps = bar_encoder.run(None, {"condition": condition[:, -1:],
                                      "known_mask": known_mask[:, -1:]})
        feeds = {"z": z, **dict(zip(BAR_FEATURE_NAMES, maps, strict=True)), PAST_BEATS_NAME: past}
        return bar_generator.run(["tracks"], feeds)[0]

    def _past_beats(self, condition: np.ndarray, known_mask: np.ndarray) -> np.ndarray:
        """Beat summaries ``float32[B, C, 12]`` of the bars before the last one
        (``condition [B, 3, 48, 84]``, ``known_mask [B, 3, 48]``): kept ones where a bar was
        seen before, the bar encoder's on the rest (all of them in one run)."""
        batch, bars = condition.shape[:2]
        keys = [condition[b, k].tobytes() + known_mask[b, k].tobytes()
                for b in range(batch) for k in range(bars)]
        with self._summaries_lock:
            found = [self._summaries.get(key) for key in keys]
        missing = [i for i, summary in enumerate(found) if summary is None]
        if missing:
            rows = np.array(missing)
            encoded = self._bar_sessions[0].run([BAR_FEATURE_NAMES[-1]], {
                "condition": condition.reshape(-1, 1, *condition.shape[2:])[rows],
                "known_mask": known_mask.reshape(-1, 1, known_mask.shape[2])[rows],
            })[0]
            with self._summaries_lock:
                for i, summary in zip(missing, encoded, strict=True):
                    found[i] = summary
                    self._summaries[keys[i]] = summary
                while len(self._summaries) > KEPT_BAR_SUMMARIES:
                    self._summaries.popitem(last=False)
        summaries = np.stack(found).reshape(batch, bars, *found[0].shape)  # [B, 3, C, 4]
        return np.ascontiguousarray(summaries.transpose(0, 2, 1, 3).reshape(batch, -1, bars * 4))

    def plan_last_bar(
        self,
        condition: np.ndarray,
        known_mask: np.ndarray,
        z: np.ndarray,
        threshold: float | None = None,
        density: Mapping[str, float] | None = None,
        sounding_before: np.ndarray | None = None,
    ) -> np.ndarray:
        """A live plan: notes ``bool[48, 84, 4]`` of the last bar of one window (batch 1).

        Decoded as :meth:`accompany` decodes (``threshold``, ``density`` the same), over the bar
        alone, with ``sounding_before`` ``bool[84, 4]`` (the notes decided for the step before
        the bar; None = silence) carried in (``musegan_live.model.decoding``).
        """
        probabilities = self.last_bar_probabilities(condition, known_mask, z)
        before = None if sounding_before is None else np.asarray(sounding_before)[None]
        return self._decode(probabilities, threshold, density, before)[0, 0]

    def full_phrase(self, condition: np.ndarray, accompaniment: np.ndarray) -> np.ndarray:
        """The condition ``[B,4,48,84]`` put among the 4 output tracks -> ``bool[B,4,48,84,5]``."""
        condition = np.asarray(condition).astype(bool)
        accompaniment = check_roll(accompaniment, "accompaniment", (*condition.shape, N_TRACKS - 1))
        accompaniment = accompaniment.astype(bool)
        out = np.empty((*condition.shape, N_TRACKS), dtype=bool)
        out[..., self.condition_track] = condition
        out[..., self.output_tracks] = accompaniment
        return out

    def warm_up(self, runs: int = 3) -> None:
        """Run the model ``runs`` times on an empty batch-1 phrase (first runs allocate and,
        on GPU providers, build kernels or engines), so the first real plan is not late."""
        condition = np.zeros((1, N_BARS, STEPS_PER_BAR, N_PITCHES), np.float32)
        mask = np.zeros((1, N_BARS, STEPS_PER_BAR), np.float32)
        z = np.zeros((1, self.latent_dim), np.float32)
        for _ in range(max(0, runs)):
            self.probabilities(condition, mask, z)
            self.plan_last_bar(condition, mask, z)


def load_accompanist(config: LiveConfig, model_dir: str | os.PathLike | None = None) -> Accompanist:
    """The model of ``model_dir`` (else ``config.model_dir``, else the shipped default) with the
    providers and threads of ``config``."""
    return Accompanist.from_dir(
        model_dir if model_dir is not None else config.model_dir,
        providers=config.providers,
        intra_op_threads=config.intra_op_threads,
    )
