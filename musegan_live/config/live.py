"""``LiveConfig``: the live daemon's options from ``configs/live.yaml`` plus command-line overrides.

Every option has one dotted key (``clock.bpm``, ``tracks.Bass.channel``) declared once in
``musegan_live.config.options.OPTIONS`` with its type, default, allowed values and help text; the
YAML loader, the command-line overrides (``musegan-live --clock-bpm 100``) and the
documentation in ``configs/live.yaml`` all use that table. A bad value raises
:class:`ConfigError` naming the key, where it came from (file or command line) and what is
allowed.

Units: channels are 1-based (1..16, as on a synth's display), programs 0-based General MIDI
numbers (0..127), latencies in milliseconds, tempo in quarter notes per minute.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from musegan_live.config.options import CLIENT_NAME, FOLLOW, OPTIONS, canonical_track, check_value
from musegan_live.errors import ConfigError
from musegan_live.representation import DRUMS, N_TRACKS, TRACK_NAMES

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class TrackOutputConfig:
    """How one track is sent: ``channel`` 1..16, ``program`` 0..127 or None (send none),
    ``velocity`` 1..127 or ``"follow"``, ``latency_ms`` added to its send times."""

    name: str
    channel: int
    program: int | None
    velocity: int | str
    latency_ms: float
    mute_cc: int | None = None
    density_cc: int | None = None

    @property
    def channel_index(self) -> int:
        """0-based MIDI channel (what ``mido.Message(channel=...)`` takes)."""
        return self.channel - 1

    @property
    def follows_player(self) -> bool:
        return self.velocity == FOLLOW


@dataclass(frozen=True)
class ClockConfig:
    source: str
    bpm: float
    send_clock: bool
    loss_timeout_seconds: float
    sync_start: bool = True
    count_in_beats: int = 0


@dataclass(frozen=True)
class InputConfig:
    port: str | None
    channel: int | None  # 1..16, None = any
    track: str
    thru: bool

    @property
    def channel_index(self) -> int | None:
        """0-based channel filter, None = any channel."""
        return None if self.channel is None else self.channel - 1

    @property
    def track_index(self) -> int:
        return TRACK_NAMES.index(self.track)


@dataclass(frozen=True)
class OutputConfig:
    port: str | None
    ports: str  # single | per_track

    @property
    def per_track(self) -> bool:
        return self.ports == "per_track"


@dataclass(frozen=True)
class ControlsConfig:
    """Controllers (CC numbers 0..127, None = unused) of the keyboard controls
    (``musegan_live.live.controls``); ``channel`` 1..16 or None = any."""

    channel: int | None = None
    new_idea_cc: int | None = None
    hold_cc: int | None = None
    stop_cc: int | None = None
    density_cc: int | None = None

    @property
    def channel_index(self) -> int | None:
        """0-based channel filter, None = any channel."""
        return None if self.channel is None else self.channel - 1


@dataclass(frozen=True)
class LiveConfig:
    """Everything the daemon and the offline jobs need; build it with :func:`load_config`."""

    model_dir: Path | None
    backend: str
    providers: tuple[str, ...]
    intra_op_threads: int
    seed: int | None
    threshold: float | None
    replan: str
    record: Path | None
    verbose: bool
    clock: ClockConfig
    input: InputConfig
    output: OutputConfig
    tracks: tuple[TrackOutputConfig, ...]  # one per representation track, in TRACK_NAMES order
    controls: ControlsConfig = ControlsConfig()
    source: str = "defaults"  # where the values came from, for messages

    def track(self, name_or_index: str | int) -> TrackOutputConfig:
        """The output settings of a track, by representation index or (any-case) name."""
        if isinstance(name_or_index, int):
            return self.tracks[name_or_index]
        return self.tracks[canonical_track(name_or_index)]

    @property
    def output_tracks(self) -> tuple[int, ...]:
        """Representation indices of the generated tracks (all but the player's), in order."""
        return tuple(t for t in range(N_TRACKS) if t != self.input.track_index)

    def output_ports(self) -> tuple[str, ...]:
        """Output port names by ``port_index``.

        Single layout: ``(output.port,)``. Per-track layout: one port per generated track,
        named ``"<output.port> <Track>"``, then, with ``input.thru``, one for the player's
        track. ``output.port`` null stands for ``musegan-live``.
        """
        base = self.output.port or CLIENT_NAME
        if not self.output.per_track:
            return (base,)
        names = [f"{base} {TRACK_NAMES[t]}" for t in self.output_tracks]
        if self.input.thru:
            names.append(f"{base} {self.input.track}")
        return tuple(names)

    def port_index_of(self, track: int) -> int:
        """``port_index`` of a representation track's messages (the player's: its thru port)."""
        if not self.output.per_track:
            return 0
        if track == self.input.track_index:
            if not self.input.thru:
                raise ValueError("the player's track has an output port only with input.thru")
            return len(self.output_tracks)
        return self.output_tracks.index(track)

    def replace(self, **changes: Any) -> LiveConfig:
        """A copy with top-level fields replaced (sections are replaced whole)."""
        return dataclasses.replace(self, **changes)


# --- loading --------------------------------------------------------------------------------
def default_config() -> LiveConfig:
    """The configuration with every option at its default."""
    return load_config(None)


def load_config(
    path: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> LiveConfig:
    """Defaults, then the YAML file at ``path`` (if any), then ``overrides``.

    ``overrides`` maps dotted keys (``"clock.bpm"``) to values; strings are parsed as the
    option's type (``"140"``, ``"true"``, ``"follow"``, ``"null"``), so command-line text can be
    passed as is. Raises :class:`ConfigError` for a missing or malformed file, an unknown key,
    a value of the wrong type or outside its allowed values.
    """
    values = {key: option.default for key, option in OPTIONS.items()}
    source = "defaults"
    if path is not None:
        source = os.fspath(path)
        for key, value in _read_yaml(Path(path)).items():
            values[key] = check_value(OPTIONS[key], value, source)
    for key, value in (overrides or {}).items():
        option = OPTIONS.get(_canonical_key(key))
        if option is None:
            raise ConfigError(f"command line: unknown option {key!r}{_suggest(key, OPTIONS)}")
        values[option.key] = check_value(option, value, f"command line ({option.flag})")
    config = _build(values, source)
    _check_channels(config)
    _check_controls(config)
    return config


def _read_yaml(path: Path) -> dict[str, Any]:
    """The file's options as ``{dotted key: raw value}``; structure and key names checked."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such configuration file; check the --config path") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the configuration file ({err})") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = ""
        mark = getattr(err, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(err, "problem", None) or "syntax error"
        raise ConfigError(
            f"{path}: not valid YAML{where}: {problem}; fix the syntax (see configs/live.yaml)"
        ) from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the file must hold a mapping of options, not {_kind(data)}")
    flat: dict[str, Any] = {}
    _flatten(data, "", flat, path)
    return flat


def _flatten(data: dict, prefix: str, out: dict[str, Any], path: Path) -> None:
    depth = prefix.count(".")
    sections = {
        key.split(".")[depth]
        for key in OPTIONS
        if key.startswith(prefix) and key.count(".") > depth
    }
    for raw_key, value in data.items():
        name = str(raw_key)
        if prefix == "tracks.":
            try:
                name = TRACK_NAMES[canonical_track(name)]
            except ConfigError as err:
                raise ConfigError(f"{path}: {err}") from err
        key = prefix + name
        if key in OPTIONS:
            out[key] = value
        elif name in sections:
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{path}: {key} must be a mapping of options (got {_kind(value)}); "
                    f"allowed keys: {', '.join(_children(key + '.'))}"
                )
            _flatten(value, key + ".", out, path)
        else:
            siblings = _children(prefix)
            raise ConfigError(
                f"{path}: unknown key {key!r}{_suggest(name, siblings)}; allowed keys"
                f"{' under ' + repr(prefix[:-1]) if prefix else ''}: {', '.join(siblings)}"
            )


def _children(prefix: str) -> list[str]:
    """Names directly under ``prefix`` (options and sections)."""
    depth = prefix.count(".")
    return sorted({key.split(".")[depth] for key in OPTIONS if key.startswith(prefix)})


def _canonical_key(key: str) -> str:
    """Accept ``tracks.bass.channel`` for ``tracks.Bass.channel``."""
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "tracks":
        try:
            parts[1] = TRACK_NAMES[canonical_track(parts[1])]
        except ConfigError:
            return key
    return ".".join(parts)


def _suggest(word: str, candidates: Any) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _build(values: dict[str, Any], source: str) -> LiveConfig:
    tracks = tuple(
        TrackOutputConfig(
            name=name,
            channel=values[f"tracks.{name}.channel"],
            program=values[f"tracks.{name}.program"],
            velocity=values[f"tracks.{name}.velocity"],
            latency_ms=float(values[f"tracks.{name}.latency_ms"]),
            mute_cc=values[f"tracks.{name}.mute_cc"],
            density_cc=values[f"tracks.{name}.density_cc"],
        )
        for name in TRACK_NAMES
    )
    return LiveConfig(
        model_dir=values["model_dir"],
        backend=values["backend"],
        providers=tuple(values["providers"]),
        intra_op_threads=values["intra_op_threads"],
        seed=values["seed"],
        threshold=values["threshold"],
        replan=values["replan"],
        record=values["record"],
        verbose=values["verbose"],
        clock=ClockConfig(
            source=values["clock.source"],
            bpm=float(values["clock.bpm"]),
            send_clock=values["clock.send_clock"],
            loss_timeout_seconds=float(values["clock.loss_timeout_seconds"]),
            sync_start=values["clock.sync_start"],
            count_in_beats=values["clock.count_in_beats"],
        ),
        input=InputConfig(
            port=values["input.port"],
            channel=values["input.channel"],
            track=values["input.track"],
            thru=values["input.thru"],
        ),
        output=OutputConfig(port=values["output.port"], ports=values["output.ports"]),
        tracks=tracks,
        controls=ControlsConfig(
            channel=values["controls.channel"],
            new_idea_cc=values["controls.new_idea_cc"],
            hold_cc=values["controls.hold_cc"],
            stop_cc=values["controls.stop_cc"],
            density_cc=values["controls.density_cc"],
        ),
        source=source,
    )


def _check_channels(config: LiveConfig) -> None:
    """Tracks sharing a port need distinct channels, or their notes would cut each other."""
    users: dict[tuple[int, int], str] = {}
    tracks = list(config.output_tracks)
    if config.input.thru:
        tracks.append(config.input.track_index)
    for track in tracks:
        settings = config.tracks[track]
        slot = (config.port_index_of(track), settings.channel)
        if slot in users:
            raise ConfigError(
                f"{config.source}: tracks.{users[slot]}.channel and tracks.{settings.name}.channel "
                f"are both {settings.channel} on the same output port; give each track its own "
                "channel (or use output.ports: per_track)"
            )
        users[slot] = settings.name
    if config.tracks[DRUMS].channel != 10:
        # Allowed (some drum machines listen elsewhere) but worth knowing.
        logger.info(
            "Drums on channel %d (General MIDI drums are on 10)", config.tracks[DRUMS].channel
        )


def _check_controls(config: LiveConfig) -> None:
    """Each controller number has at most one control, or one press would do two things."""
    c = config.controls
    keys = {"controls.new_idea_cc": c.new_idea_cc, "controls.hold_cc": c.hold_cc,
            "controls.stop_cc": c.stop_cc, "controls.density_cc": c.density_cc}
    for track in config.tracks:
        keys[f"tracks.{track.name}.mute_cc"] = track.mute_cc
        keys[f"tracks.{track.name}.density_cc"] = track.density_cc
    users: dict[int, str] = {}
    for key, number in keys.items():
        if number is None:
            continue
        if number in users:
            raise ConfigError(
                f"{config.source}: {users[number]} and {key} are both controller {number}; "
                "give each control its own controller number (or null to turn one off)"
            )
        users[number] = key
