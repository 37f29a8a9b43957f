"""Re-planning the accompaniment as the player plays, with a fixed latent per phrase
(``docs/DESIGN.md``, "The masked-condition model").

At a step boundary ``s`` the engine asks for a *plan* when what the player has played changed
since the last request, and at least at every grid point (a multiple of ``grid_steps``: 48 = bar,
12 = beat, 1 = step). A plan is the model's accompaniment of the 4-bar window whose last bar holds
the first step not decided yet, given everything heard before ``s`` (``known_mask``), so the plan
for a bar uses the bars before it and whatever of the bar itself has been heard. A plan applies
from the first step that is decided after it is back: with inference off the timing path that is
usually the next step, so the accompaniment reacts to a chord within a step, not one grid unit
later. ``z`` stays fixed while the phrase index (``bar // 4``) of the planned bar stays the same.

Inference runs off the timing path in a :class:`~musegan_live.live.planner.Planner`:
``ThreadedPlanner`` (one worker thread, latest request wins) for the daemon, ``InlinePlanner``
(synchronous, deterministic) for offline jobs and tests. Until a plan is back, the newest plan
already back for that bar plays on, or else the previous bar's steps are repeated; a plan still
not back when the step after its first step is decided is counted late (it still applies to the
steps decided after it arrives, if no newer plan did). Every decided step is remembered, so a step,
once decided, never changes. Start waits (briefly) for the opening plan so bar 1 is not silent.

The keyboard's controls reach the engine as :meth:`Engine.new_idea` (a fresh ``z`` from the next
bar on) and :attr:`Engine.density` (track name -> density factor, used by the next plan; setting
it asks for a plan at the next step).

Units: steps (12 per beat, absolute from the song start), seconds on the monotonic clock.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from musegan_live.live.planner import Planner, PlanRequest, PlanResult
from musegan_live.representation import N_BARS, N_PITCHES, STEPS_PER_BAR

logger = logging.getLogger(__name__)

#: Extra time kept free before a deadline (the scheduler's own work), seconds.
SAFETY_MARGIN_SECONDS = 0.002
#: A catch-up plan after a jump asks for this multiple of the slowest recent inference.
CATCH_UP_FACTOR = 1.5
#: Start waits at most this long for the opening plan (normally back long before), seconds.
OPENING_WAIT_SECONDS = 0.25


#: ``window(first_step, n_steps, now_step)`` -> the condition roll ``bool[n_steps, 84]`` of steps
#: ``first_step ..`` and which of them have been heard ``bool[n_steps]`` by ``now_step`` (steps
#: before the song start are silent and unheard). ``Player.window`` is one.
WindowFn = Callable[[int, int, int], tuple[np.ndarray, np.ndarray]]


class _Timing(NamedTuple):
    """Where the clock is when a plan is asked for: the boundary of ``step`` was reached (or is
    expected) at ``tick_seconds``; it is now ``now_seconds``; a step lasts ``seconds_per_step``."""

    step: int
    now_seconds: float
    seconds_per_step: float
    tick_seconds: float


class Engine:
    """Decides, step by step, which accompaniment notes sound (see the module docstring).

    ``accompanist``: an ``Accompanist`` (or anything with its ``sample_z`` / ``plan_last_bar`` /
    ``output_tracks`` / ``latent_dim``). ``window``: what the player has played (see
    :data:`WindowFn`); the engine asks it when it makes a request. ``heard_changes(now_step)``:
    a count that moves whenever what a plan made at ``now_step`` would hear changed
    (``Player.heard_changes``; None = plan on the grid only). ``grid_steps``: the longest
    interval between plans. ``lookahead_steps``: how many steps before a step's boundary it is
    decided (1 when a track is sent early).

    Counters: ``plans_made`` (results back and used), ``late_plans`` (not back when the step
    after their first step was decided, expired, or failed; a plan replaced by a newer request
    before it ran is not late), ``requests`` (submitted), ``last_inference_ms``.
    """

    def __init__(
        self,
        accompanist: Any,
        planner: Planner,
        *,
        window: WindowFn,
        heard_changes: Callable[[int], int] | None = None,
        grid_steps: int,
        rng: np.random.Generator,
        lookahead_steps: int = 0,
        threshold: float | None = None,
    ) -> None:
        if grid_steps < 1:
            raise ValueError(f"grid_steps must be >= 1, got {grid_steps}")
        self.accompanist = accompanist
        self.planner = planner
        self.window = window
        self.heard_changes = heard_changes
        self._changes_planned: int | None = None  # heard_changes() at the last request
        self.grid_steps = grid_steps
        self.lookahead_steps = lookahead_steps
        self.threshold = threshold
        self._rng = rng
        self._n_outputs = len(accompanist.output_tracks)
        self._next_id = 0
        self._plans: dict[int, list[tuple[int, int, np.ndarray]]] = {}  # bar -> (from, id, bar)
        self._decided: dict[int, np.ndarray] = {}  # step -> bool[84, n_outputs]
        self._outstanding: dict[int, PlanRequest] = {}  # may still be used
        self._in_flight: set[int] = set()  # submitted, result not back yet
        self._counted_late: set[int] = set()  # outstanding requests already counted late
        self._phrase: int | None = None
        self._z: np.ndarray | None = None
        self._new_z_from_bar: int | None = None  # a new idea: redraw z for bars from this one
        self._density: dict[str, float] | None = None
        self._opening: PlanRequest | None = None
        self._opening_result: PlanResult | None = None
        self._resyncing = False
        self._last_step: int | None = None  # the step of the last on_step
        self._recent_ms: deque[float] = deque(maxlen=8)
        self.plans_made = 0
        self.late_plans = 0
        self.requests = 0
        self.last_inference_ms: float | None = None

    # --- transport ------------------------------------------------------------------------
    def prepare_opening(self) -> None:
        """Draw the next take's first ``z`` and plan bar 1 from nothing, ahead of Start."""
        z = self.accompanist.sample_z(self._rng).astype(np.float32)
        n_steps = N_BARS * STEPS_PER_BAR  # nothing heard yet: an empty window
        silence = (np.zeros((n_steps, N_PITCHES), bool), np.zeros(n_steps, bool))
        self._opening = self._make_request(silence, 0, 0, z, math.inf)
        self._opening_result = None
        self._in_flight.add(self._opening.request_id)
        self.planner.submit(self._opening)

    def start(self) -> None:
        """Transport Start: position 0, a fresh phrase with the prepared opening."""
        self._reset_timeline()
        if self._opening is None:
            self.prepare_opening()
        self.wait_for_opening(OPENING_WAIT_SECONDS)  # bar 1 must not start silent
        opening, self._opening = self._opening, None
        assert opening is not None
        self._phrase, self._z = 0, opening.z
        self._resyncing = True
        if self._opening_result is not None and self._opening_result.error is None:
            self._accept(self._opening_result)
            self._resyncing = False
        else:
            self._outstanding[opening.request_id] = opening
        self._opening_result = None

    def resync(
        self,
        step: int,
        now_seconds: float,
        seconds_per_step: float,
        first_tick_seconds: float | None = None,
    ) -> None:
        """The position moved to ``step`` (jump, Continue): forget this timeline, plan anew.

        ``first_tick_seconds``: when the tick of ``step`` is expected (default: now)."""
        self._reset_timeline()
        self._resyncing = True
        tick = now_seconds if first_tick_seconds is None else first_tick_seconds
        self._catch_up(_Timing(step, now_seconds, seconds_per_step, tick))

    def stop(self) -> None:
        """Transport stopped (or the clock was lost): forget plans, prepare the next opening."""
        self._reset_timeline()
        self.prepare_opening()

    def set_accompanist(self, accompanist: Any) -> None:
        """Use another model from now on (call while stopped or followed by a resync)."""
        self.accompanist = accompanist
        self._n_outputs = len(accompanist.output_tracks)
        self._phrase = None
        self.stop()

    def _reset_timeline(self) -> None:
        self._plans.clear()
        self._decided.clear()
        self._outstanding.clear()
        self._counted_late.clear()
        self._last_step = None
        self._resyncing = False

    # --- the player's controls -------------------------------------------------------------
    def new_idea(self, step: int) -> None:
        """A fresh ``z`` for the bars after the one holding ``step`` (that bar plays on as
        planned; steps already decided never change)."""
        self._new_z_from_bar = step // STEPS_PER_BAR + 1

    @property
    def density(self) -> dict[str, float] | None:
        """Track name -> density factor of the plans (None: the model's own)."""
        return self._density

    @density.setter
    def density(self, value: dict[str, float] | None) -> None:
        self._density = dict(value) if value else None
        self._changes_planned = None  # plan again at the next step, with the new thresholds

    # --- the clock ------------------------------------------------------------------------
    def on_step(self, step: int, now_seconds: float, seconds_per_step: float) -> None:
        """The clock reached the boundary of ``step`` at ``now_seconds``: request a plan when
        the player's part changed or a grid point was reached."""
        self._poll()
        previous, self._last_step = self._last_step, step
        timing = _Timing(step, now_seconds, seconds_per_step, now_seconds)
        if self._resyncing and not self._in_flight:
            self._catch_up(timing)
            return
        if previous is None or not previous < step:
            on_grid = step % self.grid_steps == 0
        else:  # lost ticks may skip a grid point: plan at the first step after it
            on_grid = step // self.grid_steps > previous // self.grid_steps
        changed = (self.heard_changes is not None
                   and self.heard_changes(step) != self._changes_planned)
        if not (on_grid or changed):
            return
        applies_from = step + self.lookahead_steps  # the first step not decided yet
        # while re-syncing, a catch-up plan on its way for the same step makes this one moot
        if self._resyncing and any(
            r.applies_from_step == applies_from for r in self._outstanding.values()
        ):
            return
        self._submit(timing, applies_from)

    def _catch_up(self, timing: _Timing) -> None:
        """After a jump: a plan for the first step the model can make in time, judged from
        its recent inference times."""
        expected = max(self._recent_ms, default=0.0) / 1000.0 * CATCH_UP_FACTOR
        spare = timing.tick_seconds - timing.now_seconds - expected - SAFETY_MARGIN_SECONDS
        lead = max(0, math.ceil(-spare / timing.seconds_per_step)) if spare < 0 else 0
        self._submit(timing, timing.step + lead + self.lookahead_steps)

    def _submit(self, timing: _Timing, applies_from: int) -> None:
        """Ask for the plan of the bar holding step ``applies_from``, to apply from the first
        step decided after it is back (and not before ``applies_from``)."""
        target_bar = applies_from // STEPS_PER_BAR
        phrase = target_bar // N_BARS
        new_idea = self._new_z_from_bar is not None and target_bar >= self._new_z_from_bar
        if phrase != self._phrase or self._z is None or new_idea:
            self._phrase = phrase
            self._new_z_from_bar = None
            self._z = self.accompanist.sample_z(self._rng).astype(np.float32)
        # useful until the last step of its bar is decided
        last_decided_at = (target_bar + 1) * STEPS_PER_BAR - 1 - self.lookahead_steps
        deadline = (
            timing.tick_seconds
            + (last_decided_at - timing.step) * timing.seconds_per_step
            - SAFETY_MARGIN_SECONDS
        )
        if self.heard_changes is not None:
            self._changes_planned = self.heard_changes(timing.step)
        first = (target_bar - N_BARS + 1) * STEPS_PER_BAR
        heard = self.window(first, N_BARS * STEPS_PER_BAR, timing.step)
        request = self._make_request(heard, target_bar, applies_from, self._z, deadline)
        self._outstanding[request.request_id] = request
        self._in_flight.add(request.request_id)
        self.planner.submit(request)

    def _make_request(
        self,
        heard: tuple[np.ndarray, np.ndarray],
        target_bar: int,
        applies_from: int,
        z: np.ndarray,
        deadline: float,
    ) -> PlanRequest:
        """A request for the window ``heard`` = (roll ``bool[192, 84]``, known ``bool[192]``)."""
        roll, known = heard
        self._next_id += 1
        self.requests += 1
        return PlanRequest(
            request_id=self._next_id,
            accompanist=self.accompanist,
            target_bar=target_bar,
            applies_from_step=applies_from,
            deadline_seconds=deadline,
            condition=roll.reshape(1, N_BARS, STEPS_PER_BAR, N_PITCHES).astype(np.float32),
            known_mask=known.reshape(1, N_BARS, STEPS_PER_BAR).astype(np.float32),
            z=np.asarray(z, dtype=np.float32).reshape(1, -1),
            threshold=self.threshold,
            density=self._density,
            sounding_before=self._decided.get(target_bar * STEPS_PER_BAR - 1),
        )

    @property
    def opening_ready(self) -> bool:
        """The plan of the next take's first bar is back (or already in use)."""
        return self._opening is None or self._opening_result is not None

    def wait_for_opening(self, timeout_seconds: float) -> bool:
        """Block (outside the timing path) until the opening plan is back; False on timeout."""
        deadline = time.monotonic() + timeout_seconds
        while not self.opening_ready:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._poll(timeout_seconds=remaining)
        return True

    def _poll(self, timeout_seconds: float = 0.0) -> None:
        for result in self.planner.poll(timeout_seconds):
            self._in_flight.discard(result.request.request_id)
            if result.error is None:
                self.last_inference_ms = result.inference_ms
                self._recent_ms.append(result.inference_ms)
            if result.request is self._opening:
                self._opening_result = result
                continue
            request_id = result.request.request_id
            if self._outstanding.pop(request_id, None) is None:
                continue  # from a timeline that was abandoned, or its bar is over
            counted = request_id in self._counted_late
            self._counted_late.discard(request_id)
            if result.error is not None or result.bar_tracks is None:
                if result.error != "superseded" and not counted:  # replaced is not late
                    self.late_plans += 1
                continue
            self._accept(result)

    def _accept(self, result: PlanResult) -> None:
        request = result.request
        bar_tracks = result.bar_tracks
        if bar_tracks is None or bar_tracks.shape != (STEPS_PER_BAR, N_PITCHES, self._n_outputs):
            self.late_plans += 1
            return
        self._plans.setdefault(request.target_bar, []).append(
            (request.applies_from_step, request.request_id, bar_tracks)
        )
        self.plans_made += 1

    def decide(self, step: int) -> np.ndarray:
        """The notes of ``step``: ``bool[84, n_output_tracks]``, fixed once decided."""
        row = self._decided.get(step)
        if row is not None:
            return row
        self._poll()
        bar, offset = divmod(step, STEPS_PER_BAR)
        for request_id, request in list(self._outstanding.items()):
            if request.target_bar < bar:  # its bar is over: it can no longer be used
                del self._outstanding[request_id]
                if request_id not in self._counted_late:
                    self.late_plans += 1
                self._counted_late.discard(request_id)
            elif request.applies_from_step < step and request_id not in self._counted_late:
                self._counted_late.add(request_id)  # more than a step late; applies once back
                self.late_plans += 1
                logger.debug("plan for step %d is late", request.applies_from_step)
        usable = [p for p in self._plans.get(bar, ()) if p[0] <= step]
        if usable:  # the plan made last (it heard the most) among those in effect
            row = max(usable, key=lambda p: p[1])[2][offset]
            self._resyncing = False
        elif step - STEPS_PER_BAR in self._decided:
            row = self._decided[step - STEPS_PER_BAR]  # the previous bar plays on
        else:
            row = np.zeros((N_PITCHES, self._n_outputs), dtype=bool)
        self._decided[step] = row
        self._decided.pop(step - 2 * STEPS_PER_BAR - 1, None)
        if len(self._decided) > 4 * STEPS_PER_BAR:  # after gaps: sweep what pop() missed
            for old in [s for s in self._decided if s < step - 2 * STEPS_PER_BAR]:
                del self._decided[old]
        if len(self._plans) > 1:
            for old in [b for b in self._plans if b < bar]:
                del self._plans[old]
        return row
