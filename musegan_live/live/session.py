"""``Session``: the musical core the daemon and the offline jobs drive with clock events.

The daemon (or an offline job on a simulated clock) feeds it clock events and the player's
messages; it answers with the MIDI messages to send and when (:class:`Outgoing`). The session
keeps the transport (running, position) and hands the rest to small parts: the clock's last tick
and tempo (:class:`ClockView`), the player's roll (:class:`Player`), the plans (:class:`Engine`),
step -> messages (:class:`Scheduler` through the :class:`NoteLedger`), due times
(:class:`DueTimes`), thru (:class:`Thru`) and the take (:class:`Take`). Nothing is real-time:
time is whatever the events say, so the same code runs live and offline.

Timing (``docs/DESIGN.md``, "Timing"; due times in ``due_times``): a step whose due time has
passed by more than :func:`late_note_on_limit_seconds` when it is produced loses its note-ons
(note-offs still go): late notes are dropped, never sent in a burst.
Transport: Start = position 0 and a fresh phrase; Stop, clock loss and jumps end every note
(note-offs first, then CC123 and CC64 = 0); after a jump or Continue the engine re-plans at once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import mido
import numpy as np

from musegan_live.clock.follower import ClockEvent
from musegan_live.config.live import LiveConfig
from musegan_live.errors import ConfigError
from musegan_live.live.clock_view import ClockView
from musegan_live.live.controls import BarHold, ControlAction, Controls
from musegan_live.live.due_times import DueTimes
from musegan_live.live.engine import Engine
from musegan_live.live.ledger import NoteLedger
from musegan_live.live.outgoing import Outgoing, late_note_on_limit_seconds
from musegan_live.live.planner import Planner
from musegan_live.live.player import Player
from musegan_live.live.scheduler import FOLLOW_DEFAULT_VELOCITY, Scheduler, track_slots
from musegan_live.live.stats import StatusSnapshot
from musegan_live.live.take import Take
from musegan_live.live.thru import Thru
from musegan_live.representation import (
    DRUMS,
    LOWEST_PITCH,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    TICKS_PER_BEAT,
    TICKS_PER_STEP,
    TRACK_NAMES,
    seconds_per_tick_at,
)

logger = logging.getLogger(__name__)

GRID_STEPS = {"bar": STEPS_PER_BAR, "beat": STEPS_PER_BEAT, "step": 1}
#: Bars of the player's roll kept behind the clock when the song is not recorded.
KEEP_BARS = 8
#: A tick this many ticks past the expected one is still the same run (lost ticks), not a jump.
MAX_TICK_GAP = TICKS_PER_BEAT


class Session:
    """The accompaniment of one player (see the module docstring).

    ``accompanist``: an ``inference.Accompanist`` (or a duck-typed stand-in); its condition track
    must be the player's track (``config.input.track``). ``planner``: where inference runs; the
    session owns it from now on (:meth:`close` closes it). ``seed``: seeds the latent vectors
    (default ``config.seed``; None = fresh entropy). ``now``: the monotonic clock, used to judge
    whether a step is produced too late (default: the event's own time). ``keep_take``: keep
    the whole take for :meth:`take_roll` (default: when ``config.record`` is set).
    """

    def __init__(
        self,
        config: LiveConfig,
        accompanist: Any,
        *,
        planner: Planner,
        seed: int | None = None,
        now: Callable[[], float] | None = None,
        keep_take: bool | None = None,
    ) -> None:
        condition = int(accompanist.condition_track)
        if condition != config.input.track_index:
            raise ConfigError(
                f"{config.source}: input.track is {config.input.track} but the model accompanies "
                f"{TRACK_NAMES[condition]}; set input.track to {TRACK_NAMES[condition]} (or "
                "use a model trained on the track you play)"
            )
        self.config = config
        self.accompanist = accompanist
        self.planner = planner
        self._now = now
        self._keep_take = config.record is not None if keep_take is None else keep_take
        self.output_tracks = [int(t) for t in accompanist.output_tracks]
        self.ledger = NoteLedger()
        self.slots = track_slots(config, self.output_tracks)
        self.scheduler = Scheduler(self.slots, self.ledger)
        self.thru: Thru | None = None
        if config.input.thru:
            self.thru = Thru(
                self.ledger,
                port_index=config.port_index_of(condition),
                channel=config.tracks[condition].channel_index,
                listen_channel=config.input.channel_index,
                program=config.tracks[condition].program,
            )
        self._lookahead = 1 if any(slot.early for slot in self.slots) else 0
        self.player = Player(
            channel=config.input.channel_index,
            drums=condition == DRUMS,
            keep_bars=None if self._keep_take else KEEP_BARS,
        )
        rng = np.random.default_rng(config.seed if seed is None else seed)
        self.engine = Engine(
            accompanist,
            planner,
            window=self.player.window,
            heard_changes=self.player.heard_changes,
            grid_steps=GRID_STEPS[config.replan],
            rng=rng,
            lookahead_steps=self._lookahead,
            threshold=config.threshold,
        )
        self.engine.prepare_opening()
        self.controls = Controls(config, [TRACK_NAMES[t] for t in self.output_tracks])
        self._hold: BarHold | None = None
        self._running = False
        self._stopped = False  # an explicit Stop: ticks are ignored until Start/Continue
        self._position_ticks = 0
        self._clock = ClockView(seconds_per_tick_at(config.clock.bpm))
        self._due_times = DueTimes(len(self.slots))
        self._max_due = float("-inf")
        self._panic_due = float("-inf")  # the latest panic: nothing may be due before it
        self._dropped_note_ons = 0
        self._take = Take()  # the generated notes, for take_roll()
        self._track_at: dict[tuple[int, int], int] = {}  # (port, channel) -> track
        for slot in self.slots:
            self._track_at.setdefault((slot.port_index, slot.channel), slot.track)

    # --- public API -------------------------------------------------------------------------
    def start_messages(self) -> list[Outgoing]:
        """Program changes for every track (and the player's, with thru), to send first."""
        messages = self.scheduler.program_changes()
        if self.thru is not None:
            messages += self.thru.program_changes()
        return self._outgoing(messages, 0.0)

    def handle_player(self, message: mido.Message, now_seconds: float) -> list[Outgoing]:
        """One message from the player's input at ``now_seconds``; returns the thru output.

        The keyboard's controls (``musegan_live.live.controls``) act here and go no further."""
        action = self.controls.handle(message)
        if action is not None:
            self._control(action)
            return []
        step_position = self._clock.step_position_at(now_seconds) if self._running else None
        self.player.handle(message, step_position)
        if self.thru is None:
            return []
        # Not before a panic still to come: the panic would cut the note just played.
        due = max(now_seconds, self._panic_due)
        return self._outgoing(self.thru.forward(message), due)

    def handle_clock(self, event: ClockEvent) -> list[Outgoing]:
        """One clock event (a ``ClockEvent``); returns what to send."""
        self._clock.hear_tempo(event.seconds_per_tick)
        kind = event.kind
        if kind == "tick":
            return self._tick(event)
        if kind == "start":
            out = self._panic_if_sounding(event.time_seconds)
            self.player.start(0)
            self.engine.start()
            self._begin(0, event)
            return out
        if kind in ("stop", "lost"):
            out = self._panic(event.time_seconds)
            if self._running:
                self.player.stop(self._current_step())
            self.engine.stop()
            self._running = False
            self._stopped = kind == "stop"
            self._position_ticks = event.position_ticks
            return out
        if kind == "continue":
            if self._running:
                return []
            return self._resume(event.position_ticks, event)
        if kind == "jump":
            out = self._panic(event.time_seconds)
            self._position_ticks = event.position_ticks
            if self._running:
                out += self._resume(event.position_ticks, event, moved=True)
            return out
        logger.debug("ignoring clock event %r", kind)
        return []

    def _control(self, action: ControlAction) -> None:
        """Apply a control: a new idea or density goes to the engine; hold and mute change what
        the next steps play (``_row``). Stop is the daemon's (it owns the clock)."""
        if action.kind == "new_idea":
            if self._running:
                self.engine.new_idea(self._current_step())
            else:  # the next take opens with a fresh z
                self.engine.stop()
        elif action.kind == "density":
            self.engine.density = self.controls.density_exponents()
        elif action.kind == "hold":
            self._hold = BarHold.pressed_at(self._current_step())
        elif action.kind == "release":
            self._hold = None
        if action.kind not in ("none", "stop"):
            logger.info("control: %s%s", action.kind.replace("_", " "),
                        f" {', '.join(action.tracks)}" if action.kind in ("mute", "unmute")
                        else "")

    def wait_ready(self, timeout_seconds: float = 2.0) -> bool:
        """Wait until the plan for the first bar after Start is computed (call it before
        starting a clock: an internal clock ticks right after Start). False on timeout."""
        return self.engine.wait_for_opening(timeout_seconds)

    def panic(self) -> list[Outgoing]:
        """All notes off now: note-offs for sounding notes, then CC123 and CC64=0."""
        now = self._now() if self._now is not None else self._clock.last_tick_seconds
        return self._panic(now)

    def change_model(self, accompanist: Any) -> list[Outgoing]:
        """Switch to another model: all notes off, then plans from the new model only."""
        if int(accompanist.condition_track) != int(self.accompanist.condition_track):
            raise ConfigError(
                f"the new model accompanies {TRACK_NAMES[accompanist.condition_track]}, not "
                f"{self.config.input.track}; choose a model for the track you play"
            )
        out = self.panic()
        self.accompanist = accompanist
        self.engine.set_accompanist(accompanist)
        if self._running:
            clock = self._clock
            step = self._current_step()
            self.engine.resync(step, clock.last_tick_seconds, clock.seconds_per_step)
        return out

    @property
    def stats(self) -> StatusSnapshot:
        """The session now (``clock_source`` is left to the daemon)."""
        engine = self.engine
        return StatusSnapshot(
            position_ticks=self._position_ticks,
            running=self._running,
            bpm=self._clock.bpm,
            last_inference_ms=engine.last_inference_ms,
            late_plans=engine.late_plans,
            plans_made=engine.plans_made,
            late_messages=self._dropped_note_ons,
            controls=self.controls.state.describe(),
        )

    def take_roll(self) -> tuple[np.ndarray, np.ndarray]:
        """The take so far as sent: ``bool[n_steps, 84, 5]`` (player + generated tracks) and
        ``uint8`` velocities of the same shape; needs ``keep_take``. Notes still sounding end at
        the last step reached."""
        player_roll, player_velocity = self.player.song_roll()
        end_step = self._current_step() if self._running else None
        condition = int(self.accompanist.condition_track)
        return self._take.roll(player_roll, player_velocity, condition, end_step)

    def close(self) -> None:
        """Stop the planner's worker (if any)."""
        self.planner.close()

    # --- transport --------------------------------------------------------------------------
    def _current_step(self) -> int:
        """The first step boundary not processed yet: where sounding notes end."""
        next_step = self._clock.next_step() if self._running else None
        return -(-self._position_ticks // TICKS_PER_STEP) if next_step is None else next_step

    def _begin(self, position_ticks: int, event: ClockEvent) -> None:
        """Running from ``position_ticks``: the next tick should carry that position."""
        self._running = True
        self._stopped = False
        self._position_ticks = position_ticks
        self._clock.expect_tick(position_ticks, event.time_seconds)
        self._due_times.restart()

    def _resume(
        self, position_ticks: int, event: ClockEvent, moved: bool = False
    ) -> list[Outgoing]:
        """Continue or jump to ``position_ticks`` while running: re-plan from there.

        After a Continue or a Song Position Pointer the tick of the new position is expected
        one tick later; when a tick itself moved the position, it is this event."""
        step = -(-position_ticks // TICKS_PER_STEP)
        from_step = self._current_step() if moved and self._running else None
        self.player.rewind(step, from_step)
        spt = self._clock.seconds_per_tick
        first_tick = event.time_seconds + (0.0 if event.kind == "tick" else spt)
        self.engine.resync(step, event.time_seconds, self._clock.seconds_per_step, first_tick)
        self._begin(position_ticks, event)
        return []

    def _tick(self, event: ClockEvent) -> list[Outgoing]:
        out: list[Outgoing] = []
        position = event.position_ticks
        if not self._running:
            if self._stopped:
                return []  # ticks while stopped only feed the tempo estimate (in the clock)
            out += self._resume(position, event)  # ticks without Start/Continue: join in
        elif (last := self._clock.last_tick) is not None and not (
            last < position <= last + MAX_TICK_GAP
        ):
            logger.debug("tick %d after %d: treated as a jump", position, last)
            out += self._panic(event.time_seconds)
            out += self._resume(position, event, moved=True)
        self._clock.heard_tick(position, event.time_seconds)
        self._position_ticks = position
        if position % TICKS_PER_STEP == 0:
            out += self._step(position // TICKS_PER_STEP, event.time_seconds)
        return out

    # --- one step ---------------------------------------------------------------------------
    def _step(self, step: int, tick_seconds: float) -> list[Outgoing]:
        seconds_per_step = self._clock.seconds_per_step
        self.player.advance(step)
        self.engine.on_step(step, tick_seconds, seconds_per_step)
        rows = {k: self._row(k) for k in range(step, step + self._lookahead + 1)}
        follow = self.player.recent_velocity() or FOLLOW_DEFAULT_VELOCITY
        now = tick_seconds if self._now is None else max(tick_seconds, self._now())
        late_limit = late_note_on_limit_seconds(self._clock.seconds_per_tick)
        out: list[Outgoing] = []
        for i, slot in enumerate(self.slots):
            for target in self._due_times.steps_to_send(i, step, slot.early):
                due = self._due_times.due_seconds(
                    i, target, step, tick_seconds, seconds_per_step, slot.offset_seconds
                )
                velocity = slot.velocity or follow
                result = self.scheduler.step_messages(
                    slot,
                    target,
                    rows[target][:, slot.column],
                    velocity,
                    allow_note_ons=now - due <= late_limit,
                )
                self._dropped_note_ons += result.dropped
                if self._keep_take:
                    self._take.ended(target, slot.track, result.ended)
                    self._take.started(target, slot.track, result.started, velocity)
                out += self._outgoing(result.messages, due, late_limit)
        return out

    def _row(self, step: int) -> np.ndarray:
        """The notes of ``step`` as the controls let them sound: the plan's (or, under hold,
        the held bar's), with muted tracks silent (their notes end at this step)."""
        row = self.engine.decide(step) if self._hold is None else self._hold.row(
            step, self.engine.decide)
        muted = self.controls.state.muted
        if muted:
            row = row.copy()
            for column, track in enumerate(self.output_tracks):
                if TRACK_NAMES[track] in muted:
                    row[:, column] = False
        return row

    # --- output -----------------------------------------------------------------------------
    def _outgoing(
        self, messages: list[Outgoing], due: float, late_limit: float = math.inf
    ) -> list[Outgoing]:
        """``messages`` stamped with their due time ``due`` and, for note-ons, the lateness
        ``late_limit`` (seconds) beyond which the sender drops them (``math.inf``: never)."""
        if messages:
            self._max_due = max(self._max_due, due)
        return [m._replace(due_seconds=due, late_limit_seconds=late_limit) for m in messages]

    def _panic(self, now_seconds: float) -> list[Outgoing]:
        """Every note off, due no earlier than anything already handed out (so it comes last)."""
        step = self._current_step()
        if self._keep_take:
            for port, channel, pitch in self.ledger.open_notes:
                track = self._track_at.get((port, channel))
                if track is not None:
                    self._take.ended(step, track, [pitch - LOWEST_PITCH])
        messages = self.ledger.all_off()
        self.scheduler.reset()
        due = max(now_seconds, self._max_due)
        # Nothing produced later may be due before this panic, or the panic would cut it.
        self._due_times.not_before(due)
        self._panic_due = due
        return self._outgoing(messages, due)

    def _panic_if_sounding(self, now_seconds: float) -> list[Outgoing]:
        return self._panic(now_seconds) if self.ledger.open_notes else []
