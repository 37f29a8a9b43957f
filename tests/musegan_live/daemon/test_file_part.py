"""``musegan-live play``: a file's part as the player, step by step and through the daemon."""

from __future__ import annotations

import io
import threading

import mido
import numpy as np
import pytest

from musegan_live.daemon.file_part import FilePart
from musegan_live.errors import MidiFileError
from musegan_live.files.midi_write import write_midi
from musegan_live.representation import (
    GUITAR,
    LOWEST_PITCH,
    N_PITCHES,
    N_TRACKS,
    PIANO,
    STEPS_PER_BAR,
    TICKS_PER_STEP,
)

C4 = 60 - LOWEST_PITCH


def two_bar_song(path, tempo_bpm: float = 150.0):
    """Piano: C4 on steps 0..23 at velocity 70, E4 on 24..47, G4 held over the bar line 36..59."""
    roll = np.zeros((2 * STEPS_PER_BAR, N_PITCHES, N_TRACKS), bool)
    roll[0:24, C4, PIANO] = True
    roll[24:48, C4 + 4, PIANO] = True
    roll[36:60, C4 + 7, PIANO] = True
    velocity = (roll * 70).astype(np.uint8)
    write_midi(path, roll, tempo_bpm=tempo_bpm, velocity=velocity)
    return path


def played(part: FilePart, ticks) -> list[tuple[int, str, int]]:
    return [(tick, m.type, m.note) for tick in ticks for m in part.at_tick(tick)]


def test_the_part_plays_its_notes_at_their_steps_and_ends_them(tmp_path):
    part = FilePart.from_file(two_bar_song(tmp_path / "song.mid"), PIANO)
    assert part.n_bars == 2 and part.tempo_bpm == pytest.approx(150.0)
    events = played(part, range(2 * STEPS_PER_BAR * TICKS_PER_STEP + 1))
    ticks = {note: [t for t, kind, n in events if n == note] for note in (60, 64, 67)}
    assert ticks == {60: [0, 48], 64: [48, 96], 67: [72, 120]}
    assert [kind for t, kind, n in events if t == 48] == ["note_off", "note_on"]
    assert not part.finished(191) and part.finished(192)
    assert "3 Piano notes, 2 bars at 150.0 BPM" in part.describe()


def test_a_jump_ends_the_held_notes_and_waits_for_the_next_onset(tmp_path):
    part = FilePart.from_file(two_bar_song(tmp_path / "song.mid"), PIANO, channel=4)
    part.at_tick(0)
    assert [(m.type, m.note, m.channel) for m in part.at_tick(80)] == [("note_off", 60, 4)]
    assert part.at_tick(82) == []  # G4 started at step 36: it is not picked up mid-note
    assert [m.note for m in part.at_tick(96) if m.type == "note_on"] == []
    assert [(m.type, m.note) for m in part.release()] == []


def test_a_file_without_the_part_says_which_parts_it_has(tmp_path):
    with pytest.raises(MidiFileError, match="no Guitar notes to play .the file has Piano."):
        FilePart.from_file(two_bar_song(tmp_path / "song.mid"), GUITAR)


def test_play_runs_the_daemon_on_the_files_tempo_and_ends_with_the_file(
    tiny_model_dir, tiny_model_threshold, tmp_path
):
    from musegan_live.config.live import load_config
    from musegan_live.daemon.run import Daemon
    from musegan_live.daemon.status_line import StatusLine
    from tests.musegan_live.port_fakes import FakeInputPort, FakeOutputPort

    part = FilePart.from_file(two_bar_song(tmp_path / "song.mid", tempo_bpm=300.0), PIANO)
    config = load_config(None, {
        "model_dir": str(tiny_model_dir), "threshold": f"{tiny_model_threshold:.6f}",
        "clock.source": "internal", "clock.bpm": "300", "clock.sync_start": "false",
        "input.thru": "true", "record": str(tmp_path / "take.mid")})
    output = FakeOutputPort("synth")
    daemon = Daemon(config, input_port=FakeInputPort("keys"), output_ports=[output],
                    status_line=StatusLine(io.StringIO(), is_tty=False), file_part=part)
    daemon.open()
    result = []
    thread = threading.Thread(target=lambda: result.append(daemon.run()))
    thread.start()
    thread.join(10.0)  # two bars at 300 BPM: 1.6 s
    assert not thread.is_alive(), "the daemon should end with the file"
    assert result == [0]
    sent = output.messages
    thru = [(m.type, m.note) for m in sent if m.type in ("note_on", "note_off") and m.channel == 0]
    assert thru == [("note_on", 60), ("note_off", 60), ("note_on", 64), ("note_on", 67),
                    ("note_off", 64), ("note_off", 67)]  # the file, forwarded
    band = {m.channel for m in sent if m.type == "note_on" and m.velocity and m.channel != 0}
    assert band and band <= {9, 1, 2, 3}
    recorded = [m for m in mido.MidiFile(tmp_path / "take.mid")
                if m.type == "note_on" and m.velocity and m.channel == 0]
    assert [m.note for m in recorded] == [60, 64, 67]
