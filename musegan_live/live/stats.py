"""``StatusSnapshot``: the one picture of a running session that the status line shows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StatusSnapshot:
    """The state of a session at one moment.

    ``position_ticks`` counts MIDI clock ticks from the song start (24 per beat); ``bpm`` quarter
    notes per minute; ``last_inference_ms`` None before the first plan; ``late_plans`` plans that
    missed their step (or failed); ``plans_made`` plans used; ``late_messages`` generated
    note-ons dropped for lateness (by the session, and by the sender in the daemon);
    ``clock_source`` "external", "internal", "sync" or "waiting" (set by the daemon); ``controls``
    what the keyboard's controls have set (``ControlState.describe``, '' = nothing).
    """

    position_ticks: int
    running: bool
    bpm: float
    last_inference_ms: float | None
    late_plans: int
    plans_made: int = 0
    late_messages: int = 0
    clock_source: str = "waiting"
    controls: str = ""
