"""Open notes per (output port, channel, pitch): every note-on gets its note-off.

All notes the daemon sends go through one :class:`NoteLedger`. A note-on for a note that is
already open first ends it (so a receiver never sees two note-ons without a note-off); a note-off
for a note that is not open is dropped; :meth:`NoteLedger.all_off` ends everything: one note-off
per open note, then All Notes Off (CC123) and sustain off (CC64 = 0) on every channel used.
Messages come back as :class:`~musegan_live.live.outgoing.Outgoing` (due at once), in the order
they must be sent.
"""

from __future__ import annotations

import mido

from musegan_live.live.outgoing import Outgoing
from musegan_live.representation import ALL_NOTES_OFF_CC, SUSTAIN_CC


class NoteLedger:
    """Bookkeeping of sounding notes; not thread-safe (one timing thread owns it)."""

    def __init__(self) -> None:
        self._open: dict[tuple[int, int, int], int] = {}  # (port, channel, pitch) -> velocity
        self._channels: set[tuple[int, int]] = set()

    def use_channel(self, port: int, channel: int) -> None:
        """Include ``channel`` (0-based) of ``port`` in :meth:`all_off` even if never used."""
        self._channels.add((port, channel))

    def note_on(self, port: int, channel: int, pitch: int, velocity: int) -> list[Outgoing]:
        """Start a note (velocity 1..127; 0 means note-off), ending it first if it is open."""
        if velocity <= 0:
            return self.note_off(port, channel, pitch)
        key = (port, channel, pitch)
        out = self.note_off(port, channel, pitch) if key in self._open else []
        self._open[key] = velocity
        self._channels.add((port, channel))
        message = mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)
        out.append(Outgoing(port, message))
        return out

    def note_off(self, port: int, channel: int, pitch: int) -> list[Outgoing]:
        """End a note; nothing if it is not open."""
        if self._open.pop((port, channel, pitch), None) is None:
            return []
        return [Outgoing(port, mido.Message("note_off", channel=channel, note=pitch, velocity=0))]

    def is_open(self, port: int, channel: int, pitch: int) -> bool:
        return (port, channel, pitch) in self._open

    @property
    def open_notes(self) -> frozenset[tuple[int, int, int]]:
        """``(port, channel, pitch)`` of every note sounding now."""
        return frozenset(self._open)

    def all_off(self) -> list[Outgoing]:
        """Note-offs for every open note, then CC123 and CC64=0 on every channel used."""
        out: list[Outgoing] = []
        for port, channel, pitch in sorted(self._open):
            message = mido.Message("note_off", channel=channel, note=pitch, velocity=0)
            out.append(Outgoing(port, message))
        self._open.clear()
        for port, channel in sorted(self._channels):
            out.append(
                Outgoing(
                    port,
                    mido.Message(
                        "control_change", channel=channel, control=ALL_NOTES_OFF_CC, value=0
                    ),
                )
            )
            pedal_up = mido.Message("control_change", channel=channel, control=SUSTAIN_CC, value=0)
            out.append(Outgoing(port, pedal_up))
        return out

    def through(self, port: int, message: mido.Message) -> list[Outgoing]:
        """Forward any channel message, keeping note bookkeeping for notes."""
        if message.type == "note_on":
            return self.note_on(port, message.channel, message.note, message.velocity)
        if message.type == "note_off":
            return self.note_off(port, message.channel, message.note)
        if hasattr(message, "channel"):
            self._channels.add((port, message.channel))
        return [Outgoing(port, message)]
