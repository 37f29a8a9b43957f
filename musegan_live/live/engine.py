"""Re-planning the accompaniment on a grid, with a fixed latent per phrase (DESIGN.md section 3).

At every grid point ``g`` (a multiple of ``grid_steps``: 48 = bar, 12 = beat, 1 = step) the engine
asks for a *plan*: the model's accompaniment of the 4-bar window whose last bar is the bar about
to sound, given everything the player has played so far (``known_mask`` = steps heard). The plan
made at ``g`` applies from ``g + grid_steps``; its deadline is the moment the scheduler must decide
that step. So the first plan for bar ``t`` is made during the last grid unit of bar ``t - 1``, and
later ones refine bar ``t`` while it plays. ``z`` stays fixed while the phrase index
(``bar // 4``) of the bar about to sound stays the same.

Inference runs off the timing path in a :class:`~musegan_live.live.planner.Planner`:
``ThreadedPlanner`` (one worker thread, latest request wins) for the daemon, ``InlinePlanner``
(synchronous, deterministic) for offline jobs and tests. A plan that is not back when its first
step is decided is not used late: the previous plan of that bar plays on, or else the previous
bar's steps are repeated; the miss is counted. Every decided step is remembered, so a step, once
decided, never changes.

Units: steps (12 per beat, absolute from the song start), seconds on the monotonic clock.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from musegan_live.live.planner import Planner, PlanRequest, PlanResult
from musegan_live.live.player import Player
from musegan_live.representation import N_BARS, N_PITCHES, STEPS_PER_BAR

logger = logging.getLogger(__name__)

#: Extra time kept free before a deadline (the scheduler's own work), seconds.
SAFETY_MARGIN_SECONDS = 0.002
#: A catch-up plan after a jump asks for this multiple of the slowest recent inference.
CATCH_UP_FACTOR = 1.5


@dataclass(frozen=True)
class EngineStats:
    plans_made: int  # results received in time and used as plans
    late_plans: int  # plans that missed the step they were due for (or failed)
    requests: int  # inference requests submitted
    last_inference_ms: float | None


class Engine:
    """Decides, step by step, which accompaniment notes sound (see the module docstring).

    ``accompanist``: an ``Accompanist`` (or anything with its ``sample_z`` / ``accompany`` /
    ``output_tracks`` / ``latent_dim``). ``grid_steps``: re-plan interval. ``lookahead_steps``:
    how many steps before a step's boundary it is decided (1 when a track is sent early).
    """

    def __init__(
        self,
        accompanist: Any,
        planner: Planner,
        *,
        grid_steps: int,
        rng: np.random.Generator,
        lookahead_steps: int = 0,
        threshold: float | None = None,
    ) -> None:
        if grid_steps < 1:
            raise ValueError(f"grid_steps must be >= 1, got {grid_steps}")
        self.accompanist = accompanist
        self.planner = planner
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
        self._phrase: int | None = None
        self._z: np.ndarray | None = None
        self._opening: PlanRequest | None = None
        self._opening_result: PlanResult | None = None
        self._resyncing = False
        self._last_step: int | None = None  # the step of the last on_step
        self._recent_ms: deque[float] = deque(maxlen=8)
        self.plans_made = 0
        self.late_plans = 0
        self.requests = 0
        self.last_inference_ms: float | None = None

    @property
    def stats(self) -> EngineStats:
        return EngineStats(self.plans_made, self.late_plans, self.requests, self.last_inference_ms)

    # --- transport ------------------------------------------------------------------------
    def prepare_opening(self) -> None:
        """Draw the next take's first ``z`` and plan bar 1 from nothing, ahead of Start."""
        z = self.accompanist.sample_z(self._rng).astype(np.float32)
        empty = Player()
        self._opening = self._make_request(empty, 0, 0, z, 0, math.inf)
        self._opening_result = None
        self._in_flight.add(self._opening.request_id)
        self.planner.submit(self._opening)

    def start(self) -> None:
        """Transport Start: position 0, a fresh phrase with the prepared opening."""
        self._reset_timeline()
        if self._opening is None:
            self.prepare_opening()
        self._poll()
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
        player: Player,
        first_tick_seconds: float | None = None,
    ) -> None:
        """The position moved to ``step`` (jump, Continue): forget this timeline, plan anew.

        ``first_tick_seconds``: when the tick of ``step`` is expected (default: now)."""
        self._reset_timeline()
        self._resyncing = True
        self._catch_up(step, now_seconds, seconds_per_step, player, first_tick_seconds)

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
        self._last_step = None
        self._resyncing = False

    # --- the clock ------------------------------------------------------------------------
    def on_step(
        self, step: int, now_seconds: float, seconds_per_step: float, player: Player
    ) -> None:
        """The clock reached the boundary of ``step`` at ``now_seconds``: request plans."""
        self._poll()
        previous, self._last_step = self._last_step, step
        if self._resyncing and not self._in_flight:
            self._catch_up(step, now_seconds, seconds_per_step, player)
            return
        if previous is None or not previous < step:
            on_grid = step % self.grid_steps == 0
        else:  # lost ticks may skip a grid point: plan at the first step after it
            on_grid = step // self.grid_steps > previous // self.grid_steps
        if not on_grid:
            return
        grid_point = step - step % self.grid_steps
        # while re-syncing, a catch-up plan on its way that comes sooner makes this one moot
        soon = [
            r.applies_from_step
            for r in self._outstanding.values()
            if r.applies_from_step >= step + self.lookahead_steps
        ]
        applies_from = grid_point + self.grid_steps
        if not (self._resyncing and soon and min(soon) <= applies_from):
            self._submit(player, step, applies_from, now_seconds, seconds_per_step)

    def _catch_up(
        self,
        step: int,
        now_seconds: float,
        seconds_per_step: float,
        player: Player,
        first_tick_seconds: float | None = None,
    ) -> None:
        """After a jump: a plan for the first step the model can make in time, judged from
        its recent inference times. The tick of ``step`` comes at ``first_tick_seconds``."""
        first_tick = now_seconds if first_tick_seconds is None else first_tick_seconds
        expected = max(self._recent_ms, default=0.0) / 1000.0 * CATCH_UP_FACTOR
        spare = first_tick - now_seconds - expected - SAFETY_MARGIN_SECONDS
        lead = max(0, math.ceil(-spare / seconds_per_step)) if spare < 0 else 0
        self._submit(
            player,
            step,
            step + lead + self.lookahead_steps,
            now_seconds,
            seconds_per_step,
            first_tick,
        )

    def _submit(
        self,
        player: Player,
        step: int,
        applies_from: int,
        now: float,
        seconds_per_step: float,
        first_tick: float | None = None,
    ) -> None:
        target_bar = applies_from // STEPS_PER_BAR
        phrase = target_bar // N_BARS
        if phrase != self._phrase or self._z is None:
            self._phrase = phrase
            self._z = self.accompanist.sample_z(self._rng).astype(np.float32)
        decide_at = applies_from - self.lookahead_steps
        tick = now if first_tick is None else first_tick  # when the tick of ``step`` comes
        deadline = tick + (decide_at - step) * seconds_per_step - SAFETY_MARGIN_SECONDS
        request = self._make_request(player, target_bar, applies_from, self._z, step, deadline)
        self._outstanding[request.request_id] = request
        self._in_flight.add(request.request_id)
        self.planner.submit(request)

    def _make_request(
        self,
        player: Player,
        target_bar: int,
        applies_from: int,
        z: np.ndarray,
        now_step: int,
        deadline: float,
    ) -> PlanRequest:
        first = (target_bar - N_BARS + 1) * STEPS_PER_BAR
        roll, known = player.window(first, N_BARS * STEPS_PER_BAR, now_step)
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
        )

    def wait_for_opening(self, timeout_seconds: float) -> bool:
        """Block (outside the timing path) until the opening plan is back; False on timeout."""
        deadline = time.monotonic() + timeout_seconds
        while self._opening is not None and self._opening_result is None:
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
            if self._outstanding.pop(result.request.request_id, None) is None:
                continue  # already counted late, or from a timeline that was abandoned
            if result.error is not None or result.bar_tracks is None:
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
        for request_id, request in list(self._outstanding.items()):
            if request.applies_from_step <= step:
                self.late_plans += 1
                del self._outstanding[request_id]
                logger.debug("plan for step %d missed its deadline", request.applies_from_step)
        bar, offset = divmod(step, STEPS_PER_BAR)
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
