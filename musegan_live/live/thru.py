"""Thru: the player's own messages forwarded to the player's track channel (``input.thru``).

Only the player's channel is forwarded (any channel when ``listen_channel`` is None); channel
messages are re-addressed to ``channel`` on output port ``port_index`` and go through the note
ledger, so a panic ends the player's notes too. SysEx and realtime bytes are not forwarded.
"""

from __future__ import annotations

import mido

from musegan_live.live.ledger import NoteLedger
from musegan_live.live.outgoing import Outgoing


class Thru:
    """Forwarding of one player's messages. ``channel`` and ``listen_channel`` are 0-based;
    ``program``: the program change sent first (None: none)."""

    def __init__(
        self,
        ledger: NoteLedger,
        *,
        port_index: int,
        channel: int,
        listen_channel: int | None,
        program: int | None,
    ) -> None:
        self.ledger = ledger
        self.port_index = port_index
        self.channel = channel
        self.listen_channel = listen_channel
        self.program = program
        ledger.use_channel(port_index, channel)

    def program_changes(self) -> list[Outgoing]:
        """The player's track program, to send before anything else (nothing without one)."""
        if self.program is None:
            return []
        message = mido.Message("program_change", channel=self.channel, program=self.program)
        return [Outgoing(self.port_index, message)]

    def forward(self, message: mido.Message) -> list[Outgoing]:
        """What to send for one message of the player (due at once; the caller stamps it)."""
        if not hasattr(message, "channel"):
            return []  # not a channel message (SysEx, realtime)
        if self.listen_channel is not None and message.channel != self.listen_channel:
            return []
        return self.ledger.through(self.port_index, message.copy(channel=self.channel))
