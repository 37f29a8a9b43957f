"""The project's exceptions: one base, a few specific kinds.

Library code raises these (``raise ... from err`` to keep the cause); the CLI turns any of them
into one line on stderr and a non-zero exit. Each message says what was wrong and what would fix it.
"""


class MuseganLiveError(Exception):
    """Base of every error this project reports to a user."""

    exit_code = 1


class ConfigError(MuseganLiveError):
    """A configuration file or option is invalid (unknown key, wrong type, bad value)."""

    exit_code = 2


class MidiFileError(MuseganLiveError):
    """A MIDI file cannot be read or cannot be used (corrupt, empty, unsupported meter)."""

    def __init__(self, message: str, reason: str = "corrupt") -> None:
        super().__init__(message)
        #: short machine-readable reason used by collect's summary: corrupt, not_4_4, too_short,
        #: no_usable_tracks, empty
        self.reason = reason


class DataFileError(MuseganLiveError):
    """A data file (npz, npy, manifest) is missing or malformed."""


class ModelError(MuseganLiveError):
    """An exported model is missing, corrupt, or does not match this runtime's representation."""


class PortError(MuseganLiveError):
    """A MIDI port cannot be opened: ambiguous name, or no MIDI backend is running."""


class ClockError(MuseganLiveError):
    """The MIDI clock cannot be followed (for example, an external clock was required but lost)."""
