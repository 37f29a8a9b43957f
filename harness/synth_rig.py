"""A real synth in the JACK test graph: FluidSynth as the DAW's instrument, and a client that
records its audio frame-exactly, to hear whether a note is left hanging.

FluidSynth runs as a JACK client with a MIDI input (``NAME:midi_00``) and two audio outputs
(``NAME:left``, ``NAME:right``), reverb and chorus off, the soundfont found as
``musegan-live accompany --wav`` finds it (``musegan_live.files.audio_render``).
"""

from __future__ import annotations

import contextlib
import subprocess
import threading

import numpy as np

from harness.jack_rig import JackServer, end_process, jack_connect, popen, wait_for_jack_ports
from musegan_live.files.audio_render import (
    SynthUnavailable,
    find_soundfont,
    fluidsynth_program,
    synth_options,
)

SILENCE_FLOOR_DB = -120.0


def missing_synth() -> str | None:
    """Why FluidSynth cannot be used here (None: it can)."""
    try:
        fluidsynth_program()
        find_soundfont()
    except SynthUnavailable as err:
        return str(err)
    return None


class FluidSynthJack:
    """``fluidsynth`` on ``server``: MIDI in from JACK, audio out to JACK (not auto-connected)."""

    def __init__(self, server: JackServer, name: str = "pytest-synth",
                 timeout_seconds: float = 20.0) -> None:
        self.server = server
        self.name = name
        args = [fluidsynth_program(), "-a", "jack", "-m", "jack", "-s", "-i",
                *synth_options(48_000), "-o", f"audio.jack.id={name}",
                "-o", f"midi.jack.id={name}", "-o", "audio.jack.autoconnect=0",
                str(find_soundfont())]
        self.process = popen(args, env=server.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait_for_jack_ports(server, {self.midi_port, *self.audio_ports}, timeout_seconds,
                               self.process):
            return
        self.close()
        raise RuntimeError(f"fluidsynth did not register its JACK ports {self.midi_port}, "
                           f"{self.audio_ports}")

    @property
    def midi_port(self) -> str:
        return f"{self.name}:midi_00"

    @property
    def audio_ports(self) -> tuple[str, str]:
        return f"{self.name}:left", f"{self.name}:right"

    def close(self) -> None:
        end_process(self.process)


class JackAudioRecorder:
    """A JACK client with two audio inputs that keeps every block with its first frame."""

    def __init__(self, server: JackServer, name: str = "pytest-audio") -> None:
        import jack

        self.client = jack.Client(name, no_start_server=True, servername=server.name)
        self.inputs = [self.client.inports.register(f"in_{i}") for i in (1, 2)]
        self._blocks: list[tuple[int, np.ndarray]] = []
        self._lock = threading.Lock()
        self.client.set_process_callback(self._process)
        self.client.activate()
        self.rate = self.client.samplerate

    def _process(self, _frames: int) -> None:
        block = np.stack([port.get_array().copy() for port in self.inputs])
        with self._lock:
            self._blocks.append((self.client.last_frame_time, block))

    def connect_from(self, server: JackServer, sources: tuple[str, str]) -> None:
        for source, port in zip(sources, self.inputs, strict=True):
            jack_connect(server, source, port.name)

    def now_frame(self) -> int:
        return self.client.frame_time

    def level_dbfs(self, start_frame: int, end_frame: int) -> float:
        """RMS level (dBFS, both channels) of the audio between two frames."""
        with self._lock:
            blocks = [b for f, b in self._blocks if start_frame <= f < end_frame]
        if not blocks:
            raise ValueError(f"no audio recorded between frames {start_frame} and {end_frame}")
        samples = np.concatenate(blocks, axis=1)
        rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
        return max(SILENCE_FLOOR_DB, 20.0 * np.log10(rms)) if rms > 0 else SILENCE_FLOOR_DB

    def levels_dbfs(self, start_frame: int, end_frame: int, window_frames: int) -> list[float]:
        """The level of each window in ``start_frame .. end_frame``."""
        return [self.level_dbfs(f, f + window_frames)
                for f in range(start_frame, end_frame - window_frames + 1, window_frames)]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.deactivate()
        self.client.close()
