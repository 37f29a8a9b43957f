"""``render_wav`` with the real FluidSynth when it is installed, and its messages when not."""

from __future__ import annotations

import shutil
import wave

import numpy as np
import pytest

from musegan_live.files import audio_render
from musegan_live.files.audio_render import SynthUnavailable, find_soundfont, render_wav
from musegan_live.files.midi_write import write_midi
from musegan_live.representation import LOWEST_PITCH, N_PITCHES, N_TRACKS, STRINGS

needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None, reason="fluidsynth is not installed")


def one_note_song(path):
    roll = np.zeros((48, N_PITCHES, N_TRACKS), bool)
    roll[0:24, 60 - LOWEST_PITCH, STRINGS] = True  # a string pad, half a bar at 120 BPM
    write_midi(path, roll, tempo_bpm=120.0, programs=[0, 0, 0, 0, 48])
    return path


@needs_fluidsynth
def test_a_rendered_note_sounds_and_then_dies_away(tmp_path):
    try:
        find_soundfont()
    except SynthUnavailable as err:
        pytest.skip(str(err))
    wav = render_wav(one_note_song(tmp_path / "a.mid"), tmp_path / "out" / "a.wav")
    with wave.open(str(wav)) as f:
        rate, frames = f.getframerate(), f.readframes(f.getnframes())
        assert f.getnchannels() == 2 and f.getsampwidth() == 2
    samples = np.frombuffer(frames, np.int16).astype(np.float64) / 32768.0
    level = 20 * np.log10(np.sqrt(np.mean(samples[: rate // 2 * 2] ** 2)) + 1e-12)
    assert level > -40.0  # the note is heard
    assert not list(tmp_path.glob("out/*.partial"))


def test_without_fluidsynth_the_message_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(audio_render.shutil, "which", lambda name: None)
    with pytest.raises(SynthUnavailable, match="apt-get install fluidsynth fluid-soundfont-gm"):
        render_wav(tmp_path / "a.mid", tmp_path / "a.wav")
    assert not (tmp_path / "a.wav").exists()


def test_a_soundfont_path_that_is_not_a_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv(audio_render.SOUNDFONT_ENV, str(tmp_path / "none.sf2"))
    with pytest.raises(SynthUnavailable, match="none.sf2.*not a file"):
        find_soundfont()
