"""``Outgoing``: the one shape of a MIDI message on its way out, and the lateness rule.

The ledger and the scheduler make them (``due_seconds`` 0 = as soon as possible), the session
stamps the due time and how late a note-on may still go (``late_limit_seconds``), the sender sends
them at it. A generated note-on that would sound more than :func:`late_note_on_limit_seconds`
behind its due time is not sent (late notes are dropped, never sent in a burst); note-offs and
controllers always go.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import mido

#: The shortest lateness tolerated before a note-on is dropped, seconds.
MIN_LATE_LIMIT_SECONDS = 0.005


class Outgoing(NamedTuple):
    """One message to send on output port ``port_index`` at or after ``due_seconds``
    (absolute, on the daemon's clock; 0 = at once). ``late_limit_seconds``: if it is a note-on, how
    far behind ``due_seconds`` it may still be sent; later, it is dropped. ``math.inf`` (the
    default, and the player's own notes through thru): never dropped."""

    port_index: int
    message: mido.Message
    due_seconds: float = 0.0
    late_limit_seconds: float = math.inf


def late_note_on_limit_seconds(seconds_per_tick: float) -> float:
    """How late (seconds behind its due time) a generated note-on may still be sent: half a
    step, i.e. one MIDI clock tick at the current tempo (never less than 5 ms)."""
    return max(MIN_LATE_LIMIT_SECONDS, seconds_per_tick)
