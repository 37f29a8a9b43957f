"""Audio from MIDI with FluidSynth: ``musegan-live accompany ... --wav out.wav``.

FluidSynth is a program, not a Python package: it is run as a subprocess when it is installed
(Debian/Ubuntu: ``sudo apt-get install fluidsynth fluid-soundfont-gm``), and a missing program or
soundfont is one message that says what to install. The soundfont is ``$MUSEGAN_LIVE_SOUNDFONT``,
else the first General MIDI soundfont found in the usual places. Reverb and chorus are off, so
what is heard is what was played.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from musegan_live.errors import DataFileError, MuseganLiveError

SOUNDFONT_ENV = "MUSEGAN_LIVE_SOUNDFONT"
SOUNDFONT_PLACES: tuple[str, ...] = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
INSTALL_HINT = ("install FluidSynth and a General MIDI soundfont (Debian/Ubuntu: sudo apt-get "
                "install fluidsynth fluid-soundfont-gm)")
RENDER_TIMEOUT_SECONDS = 600.0


class SynthUnavailable(MuseganLiveError):
    """FluidSynth or a soundfont is not installed."""


def fluidsynth_program() -> str:
    """The path of the ``fluidsynth`` program; :class:`SynthUnavailable` if there is none."""
    program = shutil.which("fluidsynth")
    if program is None:
        raise SynthUnavailable(f"rendering audio needs the fluidsynth program: {INSTALL_HINT}")
    return program


def find_soundfont() -> Path:
    """``$MUSEGAN_LIVE_SOUNDFONT`` or the first of :data:`SOUNDFONT_PLACES` that exists."""
    given = os.environ.get(SOUNDFONT_ENV)
    if given:
        if not Path(given).is_file():
            raise SynthUnavailable(f"${SOUNDFONT_ENV} is {given!r}, which is not a file; point "
                                   "it at a .sf2 soundfont or unset it")
        return Path(given)
    for place in SOUNDFONT_PLACES:
        if Path(place).is_file():
            return Path(place)
    looked = ", ".join(SOUNDFONT_PLACES)
    raise SynthUnavailable(f"no General MIDI soundfont found (looked in {looked}); "
                           f"{INSTALL_HINT}, or set ${SOUNDFONT_ENV}")


def synth_options(sample_rate: int) -> list[str]:
    """FluidSynth options for a dry General MIDI render at ``sample_rate`` Hz."""
    return ["-q", "-R", "0", "-C", "0", "-g", "0.6", "-r", str(sample_rate)]


def render_wav(midi_path: str | os.PathLike, wav_path: str | os.PathLike,
               *, sample_rate: int = 44_100) -> Path:
    """Render ``midi_path`` to a 16-bit stereo ``wav_path`` (written under a temporary name and
    renamed, so a half-written file never replaces a good one)."""
    program, soundfont = fluidsynth_program(), find_soundfont()
    wav_path = Path(wav_path)
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    partial = wav_path.with_name(wav_path.name + ".partial")
    args = [program, "-n", "-i", *synth_options(sample_rate), "-F", str(partial), "-T", "wav",
            "-O", "s16", str(soundfont), os.fspath(midi_path)]
    try:
        result = subprocess.run(args, capture_output=True, text=True,
                                timeout=RENDER_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as err:
        partial.unlink(missing_ok=True)
        raise DataFileError(f"fluidsynth took over {RENDER_TIMEOUT_SECONDS:.0f} s rendering "
                            f"{midi_path}") from err
    if result.returncode != 0 or not partial.is_file() or partial.stat().st_size <= 44:
        partial.unlink(missing_ok=True)
        detail = " ".join((result.stderr or result.stdout).split())[-300:]
        raise DataFileError(f"fluidsynth could not render {midi_path} to {wav_path}: "
                            f"{detail or f'exit status {result.returncode}'}")
    partial.replace(wav_path)
    return wav_path
