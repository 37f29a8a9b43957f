"""The daemon's one-line status: bar:beat, tempo, clock source, inference time, late plans.

On a terminal the line is redrawn in place (carriage return + erase to end of line) at most
``redraw_interval_seconds`` apart; otherwise (a log file, a service manager) it becomes an INFO
log line every ``log_interval_seconds``, so logs do not fill with redraws.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

from musegan_live.live.stats import StatusSnapshot
from musegan_live.representation import BEATS_PER_BAR, bar_beat

logger = logging.getLogger(__name__)


def format_status(snapshot: StatusSnapshot) -> str:
    """The status text, e.g. ``"  12:3  120.0 BPM  external  playing  infer 4.1 ms  late 0"``."""
    inference = (
        "infer -- ms"
        if snapshot.last_inference_ms is None
        else f"infer {snapshot.last_inference_ms:.1f} ms"
    )
    state = "playing" if snapshot.running else (
        "waiting for your first note" if snapshot.clock_source == "sync" else "stopped")
    text = (
        f"{bar_beat(snapshot.position_ticks):>6}/{BEATS_PER_BAR}  {snapshot.bpm:5.1f} BPM  "
        f"{snapshot.clock_source:<8}  {state}  {inference}  late plans {snapshot.late_plans}"
    )
    if snapshot.late_messages:
        text += f"  late notes dropped {snapshot.late_messages}"
    if snapshot.controls:
        text += f"  [{snapshot.controls}]"
    return text


class StatusLine:
    """Shows ``StatusSnapshot``s on ``stream`` (a TTY) or in the log (anything else)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        is_tty: bool | None = None,
        redraw_interval_seconds: float = 0.1,
        log_interval_seconds: float = 5.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None else sys.stdout
        if is_tty is None:
            isatty = getattr(self._stream, "isatty", None)
            is_tty = bool(isatty and isatty())
        self.is_tty = is_tty
        self._interval = redraw_interval_seconds if is_tty else log_interval_seconds
        self._now = now
        self._last_shown: float | None = None
        self._drawn = False

    def update(self, snapshot: StatusSnapshot, *, force: bool = False) -> bool:
        """Show ``snapshot`` if the interval has passed (or ``force``); True if shown."""
        now = self._now()
        if not force and self._last_shown is not None and now - self._last_shown < self._interval:
            return False
        self._last_shown = now
        text = format_status(snapshot)
        if self.is_tty:
            self._stream.write("\r\x1b[K" + text)
            self._stream.flush()
            self._drawn = True
        else:
            logger.info("status %s", text)
        return True

    def close(self) -> None:
        """End the redrawn line so later output starts on a fresh line."""
        if self.is_tty and self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False
