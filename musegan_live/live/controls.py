"""Controls from the player's keyboard: new idea, density, mute, hold, stop (``configs/live.yaml``,
``controls`` and ``tracks.*.mute_cc`` / ``density_cc``).

:class:`Controls` reads control-change messages and keeps the state they set; the session applies
it (``musegan_live.live.session``) and the daemon acts on "stop" (it owns the clock). Buttons
count as pressed at value >= 64 and act on the press (a button that sends 127 then 0 acts once);
hold acts while it is down, like a pedal; a knob's value 0..127 maps to a density factor
:func:`density_for_value` (64 = the model's own).

Density works on the note-start thresholds: a track of start threshold ``t`` starts notes where
the probability is >= ``t ** density`` (``t`` in (0, 1), so density 2 lowers the threshold: more
notes; 0.5 raises it: fewer), which keeps every threshold inside (0, 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import mido
import numpy as np

from musegan_live.config.live import LiveConfig
from musegan_live.representation import STEPS_PER_BAR, TRACK_NAMES

PRESSED = 64
#: A knob at 0 or 127 divides or multiplies the threshold exponent by this (2 ** (63.5 / 32)).
DENSITY_OCTAVE_VALUES = 32.0


def density_for_value(value: int) -> float:
    """Density factor of a knob value 0..127: 64 -> 1.0, 0 -> 0.25, 127 -> ~3.9."""
    return float(2.0 ** ((int(value) - 64) / DENSITY_OCTAVE_VALUES))


@dataclass
class ControlState:
    """What the controls have set. ``density``: track name -> factor (absent = 1.0);
    ``muted``: names of muted tracks; ``hold``: held down now;
    ``tracks``: the output tracks (a density that is the same for all of them reads as one)."""

    tracks: tuple[str, ...] = ()
    density: dict[str, float] = field(default_factory=dict)
    muted: set[str] = field(default_factory=set)
    hold: bool = False

    def describe(self) -> str:
        """For the status line, e.g. ``"hold  mute Bass  density Guitar 1.4x"`` ('' = nothing)."""
        parts = []
        if self.hold:
            parts.append("hold")
        if self.muted:
            parts.append("mute " + ",".join(n for n in TRACK_NAMES if n in self.muted))
        changed = {n: d for n, d in self.density.items() if abs(d - 1.0) > 0.005}
        if changed:
            values = set(changed.values())
            if set(changed) == set(self.tracks) and len(values) == 1:
                parts.append(f"density {values.pop():.2f}x")
            else:
                parts.append("density " + " ".join(f"{n} {d:.2f}x" for n, d in changed.items()))
        return "  ".join(parts)


@dataclass(frozen=True)
class ControlAction:
    """What one control message did: ``kind`` is new_idea, hold, release, mute, unmute,
    density or stop; ``tracks`` the tracks it concerns (mute, density)."""

    kind: str
    tracks: tuple[str, ...] = ()


class Controls:
    """The keyboard controls of one session (see the module docstring).

    ``output_tracks``: names of the generated tracks (the only ones that can be muted or made
    denser).
    """

    def __init__(self, config: LiveConfig, output_tracks: list[str]) -> None:
        c = config.controls
        self.channel = c.channel_index
        self.output_tracks = tuple(output_tracks)
        self._buttons: dict[int, tuple[str, tuple[str, ...]]] = {}
        for number, kind in ((c.new_idea_cc, "new_idea"), (c.stop_cc, "stop")):
            if number is not None:
                self._buttons[number] = (kind, ())
        self._hold_cc = c.hold_cc
        self._knobs: dict[int, tuple[str, ...]] = {}
        if c.density_cc is not None:
            self._knobs[c.density_cc] = self.output_tracks
        for name in self.output_tracks:
            track = config.track(name)
            if track.mute_cc is not None:
                self._buttons[track.mute_cc] = ("mute", (name,))
            if track.density_cc is not None:
                self._knobs[track.density_cc] = (name,)
        self._down: set[int] = set()  # buttons now pressed
        self.state = ControlState(tracks=self.output_tracks)

    def handle(self, message: mido.Message) -> ControlAction | None:
        """The action of ``message`` if it is one of the controls, else None (it is the
        player's). A control's message is consumed even when it changes nothing (a release)."""
        if message.type != "control_change" or (
            self.channel is not None and message.channel != self.channel
        ):
            return None
        number, pressed = message.control, message.value >= PRESSED
        if number == self._hold_cc:
            if pressed == self.state.hold:
                return ControlAction("none")
            self.state.hold = pressed
            return ControlAction("hold" if pressed else "release")
        if number in self._knobs:
            tracks = self._knobs[number]
            for name in tracks:
                self.state.density[name] = density_for_value(message.value)
            return ControlAction("density", tracks)
        if number not in self._buttons:
            return None
        was_down = number in self._down
        (self._down.add if pressed else self._down.discard)(number)
        if not pressed or was_down:
            return ControlAction("none")
        kind, tracks = self._buttons[number]
        if kind == "mute":
            name = tracks[0]
            if name in self.state.muted:
                self.state.muted.discard(name)
                kind = "unmute"
            else:
                self.state.muted.add(name)
        return ControlAction(kind, tracks)

    def is_stop(self, message: mido.Message) -> bool:
        """Whether ``message`` presses the stop button (the daemon stops its clock)."""
        kind = self._buttons.get(getattr(message, "control", -1), ("", ()))[0]
        return (message.type == "control_change" and kind == "stop" and message.value >= PRESSED
                and (self.channel is None or message.channel == self.channel))

    def density_exponents(self) -> dict[str, float] | None:
        """Track name -> density factor for the plans (None: all at the model's own)."""
        changed = {n: d for n, d in self.state.density.items() if d != 1.0}
        return changed or None


class BarHold:
    """Hold: from ``from_step`` (a bar line) on, every step plays the step one bar-length
    earlier in the last bar before ``from_step``, so that bar repeats until the hold ends."""

    def __init__(self, from_step: int) -> None:
        self.from_step = from_step
        self._bar: np.ndarray | None = None  # bool[48, 84, n_outputs], taken at from_step

    @classmethod
    def pressed_at(cls, step: int) -> BarHold:
        """A hold pressed when ``step`` is the first step not decided yet: the bar under way
        finishes as planned and then repeats (pressed on a bar line: the bar just ended)."""
        return cls(-(-step // STEPS_PER_BAR) * STEPS_PER_BAR)

    def row(self, step: int, decide: Callable[[int], np.ndarray]) -> np.ndarray:
        """The notes of ``step``; ``decide(step)`` gives the plan's own notes of a step."""
        if step < self.from_step:
            return decide(step)
        if self._bar is None:
            first = self.from_step - STEPS_PER_BAR
            self._bar = np.stack([decide(s) for s in range(first, self.from_step)])
        return self._bar[(step - self.from_step) % STEPS_PER_BAR]
