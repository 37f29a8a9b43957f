"""Full-band MIDI renders of MMA (Musical MIDI Accompaniment) chord charts, and their config.

The default corpus turns POP909's chord and beat annotations into a chart
(:mod:`training.data.mma_chart`), renders it with Debian's ``mma`` in a groove style, maps MMA's
programs onto the five tracks, and reads the render back as a song roll. Bar ``k`` of the chart
is the ``k``-th annotated bar of the song, so the render lines up bar by bar with the song's own
piano. The chart names (:class:`ChordSpan`, :func:`read_chord_labels`, :func:`mma_chord_name`,
:func:`chords_per_beat`, :func:`chart_text`) are re-exported here.

Times are in seconds (``_seconds``), tempi in beats per minute (``_bpm``).
``python -m training.data.mma check-styles`` renders every style of ``configs/corpus/mma.yaml`` and
prints which tracks each one fills.
"""

from __future__ import annotations

import argparse
import bisect
import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import yaml

from musegan_live.errors import ConfigError, DataFileError
from musegan_live.files.midi_read import read_midi
from musegan_live.representation import (
    BEATS_PER_BAR,
    DRUM_CHANNEL,
    DRUMS,
    HIGHEST_PITCH,
    LOWEST_PITCH,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    TRACK_NAMES,
    TRACK_PROGRAMS,
    lpd5_track_for_program,
    track_index,
)
from training.data.mma_chart import ChordSpan as ChordSpan
from training.data.mma_chart import chart_text
from training.data.mma_chart import chords_per_beat as chords_per_beat
from training.data.mma_chart import mma_chord_name as mma_chord_name
from training.data.mma_chart import read_chord_labels as read_chord_labels

logger = logging.getLogger(__name__)

DEFAULT_MMA_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "corpus" / "mma.yaml"


@dataclass(frozen=True)
class ProgramRule:
    """Programs ``first..last`` (0-based GM, inclusive) go to ``track`` (None = dropped)."""

    first: int
    last: int
    track: int | None


@dataclass(frozen=True)
class MmaConfig:
    """``configs/corpus/mma.yaml``: groove styles and how MMA's parts map to the five tracks."""

    styles: tuple[str, ...]
    val_styles: tuple[str, ...]
    program_map: tuple[ProgramRule, ...]
    mma_command: str = "mma"
    render_timeout_seconds: float = 120.0


_CONFIG_KEYS = {"styles", "val_styles", "program_map", "mma_command", "render_timeout_seconds"}


def load_mma_config(path: str | Path = DEFAULT_MMA_CONFIG) -> MmaConfig:
    """Read and validate an MMA corpus config; unknown keys or bad values raise ConfigError."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the MMA config ({err})") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys, got {type(raw).__name__}")
    unknown = sorted(set(raw) - _CONFIG_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(_CONFIG_KEYS))}"
        )
    styles = _style_list(raw.get("styles"), "styles", path)
    val_styles = _style_list(raw.get("val_styles"), "val_styles", path)
    shared = sorted(set(s.lower() for s in styles) & set(s.lower() for s in val_styles))
    if shared:
        raise ConfigError(f"{path}: styles {', '.join(shared)} are in both styles and val_styles")
    rules = []
    for i, item in enumerate(raw.get("program_map") or []):
        if not isinstance(item, dict) or set(item) != {"programs", "track"}:
            raise ConfigError(
                f"{path}: program_map[{i}] must be {{programs: [first, last], track: NAME}}"
            )
        programs = item["programs"]
        if (
            not isinstance(programs, list)
            or len(programs) != 2
            or not all(isinstance(p, int) and 0 <= p <= 127 for p in programs)
            or programs[0] > programs[1]
        ):
            raise ConfigError(f"{path}: program_map[{i}].programs must be [first, last] in 0..127")
        track_name = str(item["track"])
        if track_name.lower() == "drop":
            track = None
        else:
            try:
                track = track_index(track_name)
            except ValueError as err:
                raise ConfigError(f"{path}: program_map[{i}].track: {err} or 'drop'") from err
            if track == DRUMS:
                raise ConfigError(f"{path}: program_map[{i}]: melodic programs cannot become Drums")
        rules.append(ProgramRule(programs[0], programs[1], track))
    timeout = raw.get("render_timeout_seconds", 120.0)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"{path}: render_timeout_seconds must be a positive number")
    return MmaConfig(
        styles=styles,
        val_styles=val_styles,
        program_map=tuple(rules),
        mma_command=str(raw.get("mma_command", "mma")),
        render_timeout_seconds=float(timeout),
    )


def _style_list(value: object, key: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise ConfigError(f"{path}: '{key}' must be a non-empty list of MMA groove names")
    return tuple(value)


# --- rendering --------------------------------------------------------------------------------
def mma_available(command: str = "mma") -> bool:
    """Whether the ``mma`` program can be found on PATH."""
    return shutil.which(command) is not None


def render_chart(text: str, midi_path: str | Path, config: MmaConfig, max_bars: int = 5000) -> int:
    """Render an MMA chart to ``midi_path`` and apply the config's program map to it.

    Returns the chart bar (0-based) that :func:`read_midi` will make the roll's bar 0: the bar of
    the first note it keeps, since it skips leading empty bars. Raises ConfigError when ``mma``
    is missing or a groove is unknown, DataFileError when MMA rejects the chart for another
    reason.
    """
    if not mma_available(config.mma_command):
        raise ConfigError(
            f"'{config.mma_command}' not found on PATH; install MMA (Debian: apt-get install mma)"
        )
    midi_path = Path(midi_path)
    with tempfile.TemporaryDirectory(prefix="mma-") as tmp:
        chart = Path(tmp) / "song.mma"
        raw_midi = Path(tmp) / "song.mid"
        chart.write_text(text)
        try:
            proc = subprocess.run(
                [config.mma_command, "-w", "-m", str(max_bars), str(chart), "-f", str(raw_midi)],
                capture_output=True,
                text=True,
                timeout=config.render_timeout_seconds,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise DataFileError(
                f"mma took longer than {config.render_timeout_seconds:g} s; raise "
                "render_timeout_seconds in the MMA config"
            ) from err
        message = " ".join((proc.stdout + proc.stderr).replace("PLUGIN", "").split())
        if proc.returncode != 0 or not raw_midi.exists():
            if "could not be found" in message and "Groove" in message:
                raise ConfigError(f"MMA does not know this groove: {_mma_error(message)}")
            raise DataFileError(f"mma failed on the chart: {_mma_error(message)}")
        ticks_per_beat, first_note_ticks = remap_programs(raw_midi, midi_path, config.program_map)
    if first_note_ticks is None:
        raise DataFileError("the MMA render holds no note of the five tracks; check the groove")
    # the same rounding as read_midi: nearest step, half up; MMA bars are 4 beats from tick 0
    steps = (first_note_ticks * 2 * STEPS_PER_BEAT + ticks_per_beat) // (2 * ticks_per_beat)
    return steps // STEPS_PER_BAR


def _mma_error(message: str) -> str:
    index = message.find("Error:")
    return message[index:] if index >= 0 else message[-300:]


def remap_programs(
    src: str | Path, dst: str | Path, rules: tuple[ProgramRule, ...]
) -> tuple[int, int | None]:
    """Copy a MIDI file, dropping notes of programs a rule drops and re-voicing mapped ones.

    A note belongs to the program last set on its channel (in any track) at or before the note;
    a rule mapping programs to a track replaces them with that track's GM program, so the LPD-5
    merge rule files them there. Drum-channel notes are never touched. Returns the file's ticks
    per beat and the tick of its first note-on that lands in one of the five tracks (None: none).
    """
    midi = mido.MidiFile(src)
    changes: dict[int, list[tuple[int, int]]] = {}  # channel -> [(absolute tick, program)]
    for track in midi.tracks:
        ticks = 0
        for msg in track:
            ticks += msg.time
            if msg.type == "program_change":
                changes.setdefault(msg.channel, []).append((ticks, msg.program))
    for channel_changes in changes.values():
        channel_changes.sort(key=lambda item: item[0])

    def program_at(channel: int, ticks: int) -> int:
        times = [t for t, _ in changes.get(channel, [])]
        index = bisect.bisect_right(times, ticks) - 1
        return changes[channel][index][1] if index >= 0 else 0

    first_note_ticks: int | None = None
    for track in midi.tracks:
        kept = []
        ticks = 0
        carry_ticks = 0
        for msg in track:
            ticks += msg.time
            channel = getattr(msg, "channel", None)
            if channel is not None and channel != DRUM_CHANNEL:
                if msg.type == "program_change":
                    rule = _rule_for(msg.program, rules)
                    if rule is not None and rule.track is not None:
                        msg = msg.copy(program=TRACK_PROGRAMS[rule.track])
                elif msg.type in ("note_on", "note_off"):
                    program = program_at(channel, ticks)
                    rule = _rule_for(program, rules)
                    if rule is not None and rule.track is None:
                        carry_ticks += msg.time
                        continue
                    if rule is not None:
                        program = TRACK_PROGRAMS[rule.track]
                    if lpd5_track_for_program(program, is_drum=False) is None:
                        channel = None  # read_midi drops it: not a candidate first note
            if (
                msg.type == "note_on"
                and msg.velocity > 0
                and channel is not None
                and LOWEST_PITCH <= msg.note <= HIGHEST_PITCH
            ):
                earlier = first_note_ticks is None or ticks < first_note_ticks
                first_note_ticks = ticks if earlier else first_note_ticks
            kept.append(msg.copy(time=msg.time + carry_ticks))
            carry_ticks = 0
        track[:] = kept
    midi.save(dst)
    return int(midi.ticks_per_beat), first_note_ticks


def _rule_for(program: int, rules: tuple[ProgramRule, ...]) -> ProgramRule | None:
    return next((r for r in rules if r.first <= program <= r.last), None)


# --- style check ------------------------------------------------------------------------------
_CHECK_BARS = ["C", "Am", "F", "G7", "C", "Am", "Dm7", "G"]


def style_track_notes(style: str, config: MmaConfig, tempo_bpm: float = 100.0) -> np.ndarray:
    """Render eight bars of a pop progression in ``style``: ``int[5]`` sounding steps per track."""
    bars: list[list[str | None]] = [[chord] * BEATS_PER_BAR for chord in _CHECK_BARS]
    with tempfile.TemporaryDirectory(prefix="mma-check-") as tmp:
        midi_path = Path(tmp) / "check.mid"
        render_chart(chart_text(bars, groove=style, tempo_bpm=tempo_bpm, seed=0), midi_path, config)
        song = read_midi(midi_path)
    return song.roll.any(axis=1).sum(axis=0).astype(int)


def main(argv: list[str] | None = None) -> int:
    """``python -m training.data.mma check-styles [--config PATH]``: tracks each style fills."""
    parser = argparse.ArgumentParser(
        prog="python -m training.data.mma", description="MMA groove styles of the default corpus"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-styles", help="render every configured style and list its tracks")
    check.add_argument("--config", default=str(DEFAULT_MMA_CONFIG), help="MMA corpus config YAML")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_mma_config(args.config)
        print(f"{'style':<22} {'split':<6} " + " ".join(f"{n:>8}" for n in TRACK_NAMES) + "  ok")
        failures = 0
        for split, styles in (("train", config.styles), ("val", config.val_styles)):
            for style in styles:
                counts = style_track_notes(style, config)
                full = bool(counts[DRUMS] and counts[track_index("Bass")]) and bool(
                    counts[track_index("Guitar")] or counts[track_index("Strings")]
                )
                failures += not full
                cells = " ".join(f"{c:>8}" for c in counts)
                print(f"{style:<22} {split:<6} {cells}  {'yes' if full else 'NO'}")
        print("steps with notes per track over 8 bars (Piano is POP909's own part, so 0 here)")
        return 1 if failures else 0
    except (ConfigError, DataFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
