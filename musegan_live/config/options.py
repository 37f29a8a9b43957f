"""The live daemon's options: one table (``OPTIONS``) and how a value of each kind is read.

Each option has a dotted key (``clock.bpm``, ``tracks.Bass.channel``), a kind, a default,
allowed values and a help text. :func:`check_value` turns a YAML value or command-line text into
the option's canonical value or raises :class:`ConfigError` naming the key, where the value came
from and what is allowed. :mod:`musegan_live.config.live` builds ``LiveConfig`` from these.

Units: channels are 1-based (1..16, as on a synth's display), programs 0-based General MIDI
numbers (0..127), latencies in milliseconds, tempo in quarter notes per minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musegan_live.errors import ConfigError
from musegan_live.representation import MAX_BPM, MIN_BPM, TRACK_NAMES, TRACK_PROGRAMS, track_index

FOLLOW = "follow"
ANY_CHANNEL = "any"
REPLAN_GRIDS: tuple[str, ...] = ("bar", "beat", "step")
BACKENDS: tuple[str, ...] = ("auto", "jack", "alsa")
#: The JACK/ALSA client name and the default name of the virtual ports.
CLIENT_NAME = "musegan-live"
CLOCK_SOURCES: tuple[str, ...] = ("external", "internal", "auto")
OUTPUT_LAYOUTS: tuple[str, ...] = ("single", "per_track")
#: Tempo range of the internal clock (quarter notes per minute).
#: Latency offsets are limited to this many milliseconds either way.
MAX_LATENCY_MS = 1000.0
#: Default 1-based output channel per track: drums on 10 (General MIDI), the others 1..4.
DEFAULT_CHANNELS: tuple[int, ...] = (10, 1, 2, 3, 4)
#: Default controller numbers of the keyboard controls: 102..119 are undefined in the MIDI
#: specification, so no synth or keyboard gives them a meaning of its own.
DEFAULT_MUTE_CCS: tuple[int, ...] = (105, 106, 107, 108, 109)


@dataclass(frozen=True)
class Option:
    """One configuration key: its kind decides parsing and checking."""

    key: str
    kind: str  # choice, bool, int, float, str, path, str_list, channel, velocity, track
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    nullable: bool = False

    @property
    def flag(self) -> str:
        """The command-line flag: ``clock.bpm`` -> ``--clock-bpm``, ``tracks.Bass.channel`` ->
        ``--bass-channel``."""
        key = self.key.removeprefix("tracks.")
        return "--" + key.replace(".", "-").replace("_", "-").lower()


# fmt: off
def _track_options() -> list[Option]:
    options = []
    for index, name in enumerate(TRACK_NAMES):
        base = f"tracks.{name}."
        options += [
            Option(base + "channel", "int", DEFAULT_CHANNELS[index],
                   f"MIDI channel of {name}, 1..16", low=1, high=16),
            Option(base + "program", "int", TRACK_PROGRAMS[index],
                   f"General MIDI program of {name}, 0..127 (0-based); null = send none",
                   low=0, high=127, nullable=True),
            Option(base + "velocity", "velocity", FOLLOW,
                   f"velocity of {name}: 1..127, or 'follow' the player's recent dynamics"),
            Option(base + "latency_ms", "float", 0.0,
                   f"send {name} this many ms later (negative: earlier, at most one step)",
                   low=-MAX_LATENCY_MS, high=MAX_LATENCY_MS),
            Option(base + "mute_cc", "int", DEFAULT_MUTE_CCS[index],
                   f"controller that mutes / unmutes {name} (each press toggles); null = none",
                   low=0, high=127, nullable=True),
            Option(base + "density_cc", "int", None,
                   f"controller (knob) for {name}'s density alone, like controls.density_cc; "
                   "null = none", low=0, high=127, nullable=True),
        ]
    return options


OPTIONS: dict[str, Option] = {option.key: option for option in [
    Option("model_dir", "path", None,
           "exported model directory; null = the shipped default model", nullable=True),
    Option("backend", "choice", "auto", "MIDI backend", choices=BACKENDS),
    Option("providers", "str_list", ("CPUExecutionProvider",),
           "onnxruntime execution providers, in order of preference"),
    Option("intra_op_threads", "int", 1, "onnxruntime threads per inference, 1..64",
           low=1, high=64),
    Option("seed", "int", None,
           "seed of the latent vectors; null = a different accompaniment each run",
           low=0, high=2**63 - 1, nullable=True),
    Option("threshold", "float", None,
           "note-start probability threshold in (0, 1); null = the model's own (model.yaml)",
           low=0.0, high=1.0, nullable=True),
    Option("replan", "choice", "beat", "re-plan the accompaniment every bar, beat or step",
           choices=REPLAN_GRIDS),
    Option("record", "path", None,
           "write the session (player + accompaniment) to this MIDI file; null = off",
           nullable=True),
    Option("verbose", "bool", False, "log at DEBUG level"),
    Option("clock.source", "choice", "auto",
           "external: follow MIDI clock on the input; internal: own clock; auto: internal "
           "until an external clock appears (1 s grace at start), then external",
           choices=CLOCK_SOURCES),
    Option("clock.bpm", "float", 120.0, f"tempo of the internal clock, {MIN_BPM:g}..{MAX_BPM:g}",
           low=MIN_BPM, high=MAX_BPM),
    Option("clock.send_clock", "bool", False,
           "the internal clock also sends MIDI clock, Start and Stop on the output"),
    Option("clock.loss_timeout_seconds", "float", 0.5,
           "seconds without a tick while running that count as a lost clock",
           low=0.05, high=10.0),
    Option("clock.sync_start", "bool", True,
           "the internal clock waits for the player's first note and starts on it (that note "
           "is beat 1), and waits again after a Stop; false: it starts at launch"),
    Option("clock.count_in_beats", "int", 0,
           "with sync_start: the first note starts this many clicks (side stick on the drums "
           "channel) and bar 1 begins after them; 0 = no count-in", low=0, high=16),
    Option("input.port", "str", None,
           f"the player's MIDI input (name or part of it); null = a virtual port 'in' "
           f"({CLIENT_NAME}:in on JACK, client {CLIENT_NAME}-in on ALSA)",
           nullable=True),
    Option("input.channel", "channel", None, "the player's channel: any, or 1..16",
           nullable=True),
    Option("input.track", "track", "Piano",
           "the track the player plays (the model's condition track)", choices=TRACK_NAMES),
    Option("input.thru", "bool", False,
           "forward the player's notes to the output, on the player's track channel"),
    Option("output.port", "str", None,
           f"MIDI output (name or part of it); null = a virtual port '{CLIENT_NAME}'",
           nullable=True),
    Option("output.ports", "choice", "single",
           "single: one port carrying four channels; per_track: one virtual port per track",
           choices=OUTPUT_LAYOUTS),
    *_track_options(),
    Option("controls.channel", "channel", None,
           "the channel the keyboard's controls come on: any, or 1..16", nullable=True),
    Option("controls.new_idea_cc", "int", 102,
           "controller (button) for a new idea: a fresh z from the next bar on; null = none",
           low=0, high=127, nullable=True),
    Option("controls.hold_cc", "int", 103,
           "controller (button or pedal) that holds: while down, the current bar's "
           "accompaniment repeats; null = none", low=0, high=127, nullable=True),
    Option("controls.stop_cc", "int", 104,
           "controller (button): start / stop of the internal clock (after a stop, sync start "
           "waits for the next note); null = none", low=0, high=127, nullable=True),
    Option("controls.density_cc", "int", 74,
           "controller (knob) for the whole band's density: 64 = the model's own, 0 = sparsest, "
           "127 = densest; null = none", low=0, high=127, nullable=True),
]}
# fmt: on


def canonical_track(name: str) -> int:
    """Index of a track name, any case; ConfigError naming the tracks otherwise."""
    try:
        return track_index(str(name))
    except ValueError:
        pass
    raise ConfigError(f"unknown track {name!r}; tracks are {', '.join(TRACK_NAMES)}")


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NULL = {"null", "none", "~", ""}


def check_value(option: Option, value: Any, source: str) -> Any:
    """``value`` parsed (if text) and validated for ``option``; the canonical value."""
    try:
        return _parse(option, value)
    except ValueError:
        shown = list(value) if isinstance(value, (list, tuple)) else repr(value)
        raise ConfigError(
            f"{source}: {option.key} must be {_describe(option)} (got {shown})"
        ) from None


def _parse(option: Option, value: Any) -> Any:
    """The canonical value of ``value`` for ``option``; ValueError if it is not valid."""
    kind = option.kind
    text = value.strip() if isinstance(value, str) else None
    lowered = text.lower() if text is not None else None
    if value is None or (lowered in _NULL and kind != "str"):
        if option.nullable:
            return None
        raise ValueError
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ValueError
    if kind in ("choice", "track"):
        for choice in option.choices:
            if choice.lower() == lowered:
                return choice
        raise ValueError
    if kind in ("str", "path"):
        if not text:
            raise ValueError
        return Path(text).expanduser() if kind == "path" else text
    if kind == "str_list":
        items = text.split(",") if text is not None else value
        if not isinstance(items, (list, tuple)) or not items:
            raise ValueError
        if not all(isinstance(item, str) and item.strip() for item in items):
            raise ValueError
        return tuple(item.strip() for item in items)
    if kind == "channel" and lowered == ANY_CHANNEL:
        return None
    if kind == "velocity" and lowered == FOLLOW:
        return FOLLOW
    low, high = {"channel": (1, 16), "velocity": (1, 127)}.get(kind, (option.low, option.high))
    number = _number(value, integer=kind != "float")
    if number is None or (low is not None and number < low) or (high is not None and number > high):
        raise ValueError
    if option.key == "threshold" and not 0.0 < number < 1.0:
        raise ValueError
    return number


def _number(value: Any, *, integer: bool) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip()) if integer else float(value.strip())
        except ValueError:
            return None
    if integer:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value if isinstance(value, int) else None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _describe(option: Option) -> str:
    """What a valid value of ``option`` looks like, for messages."""
    kind = option.kind
    if kind == "bool":
        text = "true or false"
    elif kind in ("choice", "track"):
        text = "one of " + ", ".join(option.choices)
    elif kind == "channel":
        text = "'any' or a channel 1..16"
    elif kind == "velocity":
        text = "'follow' or a velocity 1..127"
    elif kind in ("str", "path"):
        text = "a non-empty text"
    elif kind == "str_list":
        text = "a non-empty list of names"
    elif option.key == "threshold":
        text = "a number strictly between 0 and 1"
    else:
        text = {"int": "an integer", "float": "a number"}[kind]
        if option.low is not None and option.high is not None:
            text += f" in {option.low:g}..{option.high:g}"
    return text + (" or null" if option.nullable else "")
