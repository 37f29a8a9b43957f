"""Where inference runs: plan requests in, plan results out, off the timing path.

:class:`ThreadedPlanner` (one worker thread, a single pending slot where the latest request
wins) serves the daemon; :class:`InlinePlanner` (synchronous, deterministic) serves offline jobs
and tests. Every submitted request comes back exactly once, as the target bar's notes or with an
``error``. Deadlines are seconds on the daemon's clock (``now``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


#: SCHED_FIFO priority the daemon's worker asks for: the lowest realtime one, above every normal
#: thread (a busy machine no longer makes plans wait for a core) and below JACK's own threads
PLANNER_REALTIME_PRIORITY = 1


def ask_realtime_priority(priority: int) -> str:
    """Put the calling thread on ``SCHED_FIFO`` at ``priority``; say what happened.

    Returns ``"SCHED_FIFO <priority>"`` when granted, else ``"refused (<why>)"``: a user without
    the right to realtime scheduling (``ulimit -r``, ``rtprio`` in ``/etc/security/limits.conf``,
    a container without ``CAP_SYS_NICE``) runs at normal priority, which works, with more late
    plans on a busy machine.
    """
    if not hasattr(os, "sched_setscheduler"):
        return "refused (no SCHED_FIFO on this system)"
    try:
        # on Linux, pid 0 is the calling thread alone
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as err:
        return f"refused ({err.strerror or err})"
    return f"SCHED_FIFO {priority}"


@dataclass(frozen=True)
class PlanRequest:
    """One inference to run: the window ending with ``target_bar``, to apply from
    ``applies_from_step``. ``condition`` ``float32[1, 4, 48, 84]``, ``known_mask``
    ``float32[1, 4, 48]``, ``z`` ``float32[1, latent_dim]``; ``deadline_seconds`` is when the
    result stops being useful (the daemon's clock; ``inf`` = none)."""

    request_id: int
    accompanist: Any
    target_bar: int
    applies_from_step: int
    deadline_seconds: float
    condition: np.ndarray = field(repr=False)
    known_mask: np.ndarray = field(repr=False)
    z: np.ndarray = field(repr=False)
    threshold: float | None = None
    #: track name -> density factor (the keyboard's density knobs); None = the model's own
    density: Mapping[str, float] | None = None
    #: ``bool[84, n_output_tracks]``: the notes decided for the step before the target bar,
    #: carried into its decoding (None = silence there)
    sounding_before: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PlanResult:
    """The target bar's accompaniment ``bool[48, 84, n_output_tracks]`` (None on error)."""

    request: PlanRequest
    bar_tracks: np.ndarray | None = field(repr=False)
    inference_ms: float
    error: str | None = None


def run_request(request: PlanRequest) -> PlanResult:
    """Run one request on its accompanist (in the calling thread)."""
    started = time.perf_counter()
    bar = request.accompanist.plan_last_bar(
        request.condition, request.known_mask, request.z, threshold=request.threshold,
        density=request.density, sounding_before=request.sounding_before,
    )
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    return PlanResult(request, np.asarray(bar, dtype=bool), elapsed_ms)


class Planner(ABC):
    """Runs plan requests somewhere and hands back results in completion order.

    Every submitted request comes back exactly once: with ``bar_tracks``, or with ``error``
    set (the model failed, or the planner dropped it: ``"superseded"``, ``"expired"``)."""

    @abstractmethod
    def submit(self, request: PlanRequest) -> None:
        """Queue ``request``; it may replace a request that has not started yet."""

    @abstractmethod
    def poll(self, timeout_seconds: float = 0.0) -> list[PlanResult]:
        """Results finished since the last call; with ``timeout_seconds`` > 0 (never on the
        timing path), wait up to that long for the first one."""

    def close(self) -> None:  # noqa: B027 - planners without background work need nothing
        """Stop any background work."""


class InlinePlanner(Planner):
    """Runs each request at once in the caller's thread: deterministic, never late.

    Errors propagate to the caller (offline jobs should fail loudly)."""

    def __init__(self) -> None:
        self._done: list[PlanResult] = []

    def submit(self, request: PlanRequest) -> None:
        self._done.append(run_request(request))

    def poll(self, timeout_seconds: float = 0.0) -> list[PlanResult]:
        done, self._done = self._done, []
        return done


class ThreadedPlanner(Planner):
    """One worker thread; a single pending slot where the latest request wins.

    A request replaced before it started comes back with ``error="superseded"``; one whose
    deadline has passed when the worker reaches it with ``error="expired"``; an exception in
    the model is logged and handed back as the error. ``now`` is the clock the
    deadlines are on. ``realtime_priority``: the worker asks for ``SCHED_FIFO`` at this
    priority when it starts (``None``: it does not ask); ``priority`` then says what it got.
    """

    def __init__(self, *, now: Callable[[], float] = time.monotonic,
                 realtime_priority: int | None = None) -> None:
        self._now = now
        self._realtime_priority = realtime_priority
        self.priority = "normal (not asked)"
        self._started = threading.Event()
        self._wake = threading.Condition()
        self._pending: PlanRequest | None = None
        self._done: deque[PlanResult] = deque()
        self._closed = False
        self.superseded = 0
        self.expired = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="musegan-planner", daemon=True)
        self._thread.start()
        self._started.wait(5.0)  # so that `priority` is known once the planner exists

    def submit(self, request: PlanRequest) -> None:
        with self._wake:
            if self._pending is not None:
                self.superseded += 1
                self._done.append(PlanResult(self._pending, None, 0.0, error="superseded"))
            self._pending = request
            self._wake.notify_all()

    def poll(self, timeout_seconds: float = 0.0) -> list[PlanResult]:
        """Finished results; with ``timeout_seconds`` > 0, wait that long for the first one."""
        with self._wake:
            if timeout_seconds > 0:
                self._wake.wait_for(lambda: self._done or self._closed, timeout_seconds)
            done = list(self._done)
            self._done.clear()
        return done

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        if self._realtime_priority is not None:
            self.priority = ask_realtime_priority(self._realtime_priority)
            if self.priority.startswith("refused"):
                logger.warning("realtime priority for the planner thread %s: plans run at "
                               "normal priority (allow it with rtprio in "
                               "/etc/security/limits.conf)", self.priority)
            else:
                logger.info("planner thread priority: %s", self.priority)
        self._started.set()
        while True:
            with self._wake:
                while self._pending is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                request, self._pending = self._pending, None
            if self._now() > request.deadline_seconds:
                self.expired += 1
                result = PlanResult(request, None, 0.0, error="expired")
            else:
                result = self._run_one(request)
            with self._wake:
                self._done.append(result)
                self._wake.notify_all()

    def _run_one(self, request: PlanRequest) -> PlanResult:
        try:
            return run_request(request)
        except Exception as err:  # the timing path must survive a failing model
            self.failed += 1
            logger.exception("inference failed for bar %d", request.target_bar + 1)
            return PlanResult(request, None, 0.0, error=f"{type(err).__name__}: {err}")
