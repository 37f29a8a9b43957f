"""Engine: re-planning windows and masks, plans that react within a step, z per phrase,
late plans and fallbacks, planners."""

from __future__ import annotations

import os
import threading

import mido
import numpy as np
import pytest

from musegan_live.live.engine import Engine
from musegan_live.live.planner import InlinePlanner, PlanRequest, PlanResult, ThreadedPlanner
from musegan_live.live.player import Player
from musegan_live.representation import LOWEST_PITCH, N_BARS, STEPS_PER_BAR, STEPS_PER_BEAT
from tests.musegan_live.fakes import KICK, ManualPlanner, RuleAccompanist, strings_pitch

STEP_SECONDS = 0.5 / STEPS_PER_BEAT  # 120 BPM
GUITAR, STRINGS = 1, 3  # output columns of RuleAccompanist (Drums, Guitar, Bass, Strings)


def make_engine(planner=None, grid=STEPS_PER_BEAT, seed=0, lookahead=0):
    """An engine listening to a fresh ``Player``: (engine, model, planner, player)."""
    model = RuleAccompanist()
    planner = planner or InlinePlanner()
    player = Player()
    engine = Engine(
        model,
        planner,
        window=player.window,
        heard_changes=player.heard_changes,
        grid_steps=grid,
        rng=np.random.default_rng(seed),
        lookahead_steps=lookahead,
    )
    engine.prepare_opening()
    return engine, model, planner, player


def advance(engine, player, steps, decide=True):
    """Drive the engine like the session does; returns {step: decided row}."""
    rows = {}
    for step in steps:
        player.advance(step)
        engine.on_step(step, step * STEP_SECONDS, STEP_SECONDS)
        if decide:
            rows[step] = engine.decide(step)
    return rows


def play_chord(player, pitches, at_step, until_step=None):
    for pitch in pitches:
        player.handle(mido.Message("note_on", note=pitch, velocity=90), float(at_step))
    if until_step is not None:
        for pitch in pitches:
            player.handle(mido.Message("note_off", note=pitch), float(until_step))


def release(player, pitches, at_step):
    for pitch in pitches:
        player.handle(mido.Message("note_off", note=pitch), float(at_step))


def sounding(rows, column, pitch):
    return [s for s, r in sorted(rows.items()) if r[pitch - LOWEST_PITCH, column]]


def test_the_window_ends_with_the_bar_being_decided_and_knows_only_what_was_heard():
    engine, _, planner, player = make_engine(ManualPlanner())
    planner.finish()  # the opening plan
    player.start(0)
    engine.start()
    play_chord(player, [60], 4, 8)
    advance(engine, player, range(0, 37), decide=False)
    last: PlanRequest = planner.queue[-1]  # made at step 36, the last beat of bar 1
    assert last.target_bar == 0 and last.applies_from_step == 36
    mask = last.known_mask.reshape(-1)  # window = bars -3..0: three bars before the song
    bar_1 = 3 * STEPS_PER_BAR
    assert not mask[:bar_1].any()
    assert mask[bar_1 : bar_1 + 36].all() and not mask[bar_1 + 36 :].any()
    condition = last.condition.reshape(-1, 84)
    assert np.flatnonzero(condition[:, 60 - LOWEST_PITCH]).tolist() == [
        bar_1 + s for s in range(4, 8)
    ]
    assert last.condition.shape == (1, N_BARS, STEPS_PER_BAR, 84)
    # on the bar line the window moves on: bar 2 is planned with bar 1 wholly heard
    advance(engine, player, range(37, 49), decide=False)
    first_of_bar_2 = planner.queue[-1]
    assert (first_of_bar_2.target_bar, first_of_bar_2.applies_from_step) == (1, STEPS_PER_BAR)
    mask = first_of_bar_2.known_mask.reshape(-1)
    assert mask[2 * STEPS_PER_BAR : bar_1].all() and not mask[bar_1:].any()


def test_a_chord_is_followed_from_the_step_after_it_is_heard():
    """The change re-plans at once; the plan applies from the first step not decided yet.
    (Yesterday a chord played at step 5 sounded from step 24: the next beat's next beat.)"""
    engine, _, _, player = make_engine()
    player.start(0)
    engine.start()
    rows = advance(engine, player, range(0, 5))
    play_chord(player, [64], 5)  # heard once the clock passed step 5: at the boundary of 6
    rows.update(advance(engine, player, range(5, 48)))
    assert sounding(rows, GUITAR, 64) == list(range(6, 48))
    assert sounding(rows, 0, KICK) == [s for s in range(48) if s % 12 < 3]


def test_a_plan_applies_from_the_first_step_decided_after_it_is_back():
    engine, _, planner, player = make_engine(ManualPlanner())
    planner.finish()  # the opening
    player.start(0)
    engine.start()
    rows = advance(engine, player, [0])
    planner.finish()  # the grid plan made at 0
    rows.update(advance(engine, player, range(1, 6)))
    play_chord(player, [64], 5)
    rows.update(advance(engine, player, [6]))  # asked at 6; not back when 6 is decided
    planner.finish()  # back during step 6, as from a worker thread
    rows.update(advance(engine, player, range(7, 12)))
    assert sounding(rows, GUITAR, 64) == list(range(7, 12))
    assert engine.late_plans == 0  # back before the step after its first one was decided


def test_a_plan_of_a_new_bar_is_given_what_sounded_at_the_step_before_it():
    """So a note held over the bar line continues instead of being decoded afresh."""
    engine, model, planner, player = make_engine(ManualPlanner())
    planner.finish()
    player.start(0)
    engine.start()
    play_chord(player, [64], 0)
    rows, finished = {}, []
    for step in range(0, 49):
        rows.update(advance(engine, player, [step]))
        finished += planner.finish()
    first_of_bar_2 = [r for r in finished if r.target_bar == 1][0]
    np.testing.assert_array_equal(first_of_bar_2.sounding_before, rows[47])
    assert first_of_bar_2.sounding_before[64 - LOWEST_PITCH, GUITAR]
    in_bar_1 = [r for r in finished if r.target_bar == 0 and r.applies_from_step > 0]
    assert in_bar_1 and all(r.sounding_before is None for r in in_bar_1)  # nothing before bar 1


def test_bar_grid_plans_each_bar_on_its_bar_line():
    engine, _, planner, player = make_engine(ManualPlanner(), grid=STEPS_PER_BAR)
    planner.finish()
    player.start(0)
    engine.start()
    advance(engine, player, range(0, 3 * STEPS_PER_BAR), decide=False)
    made = [(r.target_bar, r.applies_from_step) for r in planner.queue]
    assert made == [(0, 0), (1, 48), (2, 96)]


def test_z_is_fixed_within_a_phrase_and_new_for_the_next():
    engine, model, _, player = make_engine(seed=3)
    player.start(0)
    engine.start()
    rows = advance(engine, player, range(0, 9 * STEPS_PER_BAR))
    z_by_phrase: dict[int, set] = {}
    for (_, _, z), target_bar in zip(model.calls[1:], _targets(9), strict=True):
        z_by_phrase.setdefault(target_bar // N_BARS, set()).add(z.tobytes())
    assert sorted(z_by_phrase) == [0, 1, 2]
    assert [len(zs) for zs in z_by_phrase.values()] == [1, 1, 1]
    assert len(set.union(*z_by_phrase.values())) == 3
    # and it is audible: the strings hold the pitch of the phrase's z all phrase long
    phrase_steps = N_BARS * STEPS_PER_BAR
    for phrase, (z_bytes,) in z_by_phrase.items():
        expected = strings_pitch(np.frombuffer(z_bytes, np.float32)) - LOWEST_PITCH
        steps = [s for s in rows if s // phrase_steps == phrase and s % phrase_steps >= 12]
        held = {int(p) for s in steps for p in np.flatnonzero(rows[s][:, STRINGS])}
        assert held == {expected}


def _targets(n_bars):
    """The target bar of each grid request of a beat-grid engine over ``n_bars`` bars."""
    return [s // STEPS_PER_BAR for s in range(0, n_bars * STEPS_PER_BAR, STEPS_PER_BEAT)]


def test_the_same_seed_gives_the_same_plans():
    def run(seed):
        engine, _, _, player = make_engine(seed=seed)
        player.start(0)
        engine.start()
        rows = advance(engine, player, range(0, 5 * STEPS_PER_BAR))
        return np.stack([rows[s] for s in sorted(rows)])

    assert np.array_equal(run(11), run(11))
    assert not np.array_equal(run(11), run(12))


def test_a_late_plan_counts_and_applies_only_to_steps_decided_after_it_arrives():
    engine, _, planner, player = make_engine(ManualPlanner(), grid=STEPS_PER_BAR)
    planner.finish()  # the opening (bar 1 from nothing) is ready before Start
    player.start(0)
    engine.start()
    rows = advance(engine, player, [0])
    planner.finish()  # made at 0, back during step 0
    rows.update(advance(engine, player, [1]))
    play_chord(player, [67], 1)
    rows.update(advance(engine, player, [2]))  # heard at the boundary of 2: asked then
    planner.finish()  # back during step 2
    rows.update(advance(engine, player, range(3, 21)))
    release(player, [67], 20)
    rows.update(advance(engine, player, range(21, 30)))  # asked at 21, not back
    assert engine.late_plans == 1  # counted when step 22 was decided without it
    planner.finish()  # the late plan (silence) arrives during step 29
    rows.update(advance(engine, player, range(30, 40)))
    assert sounding(rows, GUITAR, 67) == list(range(3, 30))  # silence from its arrival on
    assert engine.late_plans == 1


def test_without_any_plan_for_a_bar_the_previous_bar_repeats():
    engine, _, planner, player = make_engine(ManualPlanner(), grid=STEPS_PER_BAR)
    planner.finish()
    player.start(0)
    engine.start()
    rows = advance(engine, player, range(0, 2 * STEPS_PER_BAR))  # bar 2's plan never comes
    first, second = (np.stack([rows[s] for s in range(b * 48, (b + 1) * 48)]) for b in (0, 1))
    assert first.any() and np.array_equal(first, second)
    assert engine.late_plans >= 1


def test_decided_steps_never_change():
    """A decided step keeps its notes, even when plans that missed it arrive afterwards (the
    plans made from step 12 on heard the chord; the steps were decided without it)."""
    engine, _, planner, player = make_engine(ManualPlanner())
    planner.finish()  # the opening (nothing heard: no guitar) is ready before Start
    player.start(0)
    engine.start()
    play_chord(player, [72], 1)  # held from step 1 on
    rows = advance(engine, player, range(0, 30))  # no plan comes back in time
    assert not any(r[72 - LOWEST_PITCH, GUITAR] for r in rows.values())
    planner.finish()  # the late plans arrive now
    advance(engine, player, range(30, 37), decide=False)
    for step, row in rows.items():
        assert np.array_equal(engine.decide(step), row), f"step {step} changed"


def test_after_a_jump_music_resumes_within_a_step_or_two():
    engine, _, _, player = make_engine()
    player.start(0)
    engine.start()
    advance(engine, player, range(0, 40))
    target = 5 * STEPS_PER_BAR + 7  # a DAW loop lands mid-beat
    player.rewind(target, 40)
    engine.resync(target, 40 * STEP_SECONDS, STEP_SECONDS)
    rows = advance(engine, player, range(target, target + STEPS_PER_BEAT))
    first_kick = next(s for s, r in sorted(rows.items()) if r.any())
    assert first_kick - target <= 2


def test_plans_use_the_configured_threshold():
    engine, model, _, player = make_engine()
    engine.threshold = 0.99
    model.probabilities = lambda c, m, z: np.full((1, 4, 48, 84, 4), 0.9, np.float32)
    player.start(0)
    engine.start()
    rows = advance(engine, player, range(12, 30))
    assert not any(r.any() for s, r in rows.items() if s >= 24)


# --- the threaded planner ----------------------------------------------------------------------
class GatedModel(RuleAccompanist):
    """Blocks inside accompany until the test opens the gate."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail = False

    def accompany(self, condition, known_mask, z, threshold=None, density=None):
        self.entered.set()
        assert self.gate.wait(10.0)
        if self.fail:
            raise RuntimeError("model exploded")
        return super().accompany(condition, known_mask, z, threshold, density)


def request(model, request_id, deadline=float("inf")):
    return PlanRequest(
        request_id=request_id,
        accompanist=model,
        target_bar=0,
        applies_from_step=0,
        deadline_seconds=deadline,
        condition=np.zeros((1, 4, 48, 84), np.float32),
        known_mask=np.zeros((1, 4, 48), np.float32),
        z=np.ones((1, 16), np.float32),
    )


def wait_for_results(planner, n):
    results = []
    for _ in range(n * 10):
        results += planner.poll(timeout_seconds=1.0)
        if len(results) >= n:
            break
    return results


def test_threaded_planner_latest_request_wins():
    model = GatedModel()
    planner = ThreadedPlanner()
    try:
        planner.submit(request(model, 1))
        assert model.entered.wait(5.0)  # the worker is busy with request 1
        for request_id in (2, 3, 4):
            planner.submit(request(model, request_id))
        model.gate.set()
        results = wait_for_results(planner, 4)
        outcome = {r.request.request_id: r.error for r in results}
        assert outcome == {1: None, 2: "superseded", 3: "superseded", 4: None}
        assert planner.superseded == 2
        done = [r for r in results if r.error is None]
        assert done[-1].request.request_id == 4
        assert done[-1].bar_tracks.shape == (48, 84, 4) and done[-1].inference_ms >= 0
    finally:
        planner.close()


def test_threaded_planner_skips_expired_requests_and_reports_failures():
    model = GatedModel()
    model.fail = True
    model.gate.set()
    planner = ThreadedPlanner(now=lambda: 100.0)
    try:
        planner.submit(request(model, 1, deadline=50.0))  # already too late
        assert [(r.request.request_id, r.error) for r in wait_for_results(planner, 1)] == [
            (1, "expired")
        ]
        planner.submit(request(model, 2))
        (result,) = wait_for_results(planner, 1)
        assert result.request.request_id == 2 and "model exploded" in result.error
        assert planner.expired == 1 and planner.failed == 1
    finally:
        planner.close()


def test_the_planner_worker_asks_for_realtime_priority_for_itself_alone():
    main_policy = os.sched_getscheduler(0)
    planner = ThreadedPlanner(realtime_priority=1)
    try:
        worker = planner._thread.native_id
        if planner.priority.startswith("refused"):  # no right to realtime scheduling here
            assert os.sched_getscheduler(worker) == main_policy
        else:
            assert planner.priority == "SCHED_FIFO 1"
            assert os.sched_getscheduler(worker) == os.SCHED_FIFO
            assert os.sched_getparam(worker).sched_priority == 1
        assert os.sched_getscheduler(0) == main_policy  # the caller's thread is untouched
    finally:
        planner.close()
    unasked = ThreadedPlanner()
    assert unasked.priority == "normal (not asked)"
    unasked.close()


class FailingPlanner(ManualPlanner):
    """Every request comes back as a model error."""

    def submit(self, request):
        self._done.append(PlanResult(request, None, 0.0, error="RuntimeError: boom"))


def test_failed_plans_count_as_late_and_the_music_goes_on():
    engine, _, _, player = make_engine(FailingPlanner())
    player.start(0)
    engine.start()
    rows = advance(engine, player, range(0, 30))
    assert not any(row.any() for row in rows.values())  # silence, no exception
    assert engine.late_plans >= 3 and engine.plans_made == 0


@pytest.mark.parametrize("grid", [1, 12, 48])
def test_every_grid_gives_one_plan_per_grid_unit(grid):
    engine, _, _, player = make_engine(grid=grid)
    player.start(0)
    engine.start()
    advance(engine, player, range(0, 2 * STEPS_PER_BAR))
    assert engine.plans_made == 1 + 2 * STEPS_PER_BAR // grid
    assert engine.late_plans == 0


def test_lost_ticks_that_skip_a_grid_point_still_get_its_plan():
    engine, _, planner, player = make_engine(ManualPlanner())
    planner.finish()
    player.start(0)
    engine.start()
    advance(engine, player, [*range(0, 11), *range(14, 20)], decide=False)  # 11..13 lost
    assert [r.applies_from_step for r in planner.queue] == [0, 14]
