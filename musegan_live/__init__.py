"""musegan-live: real-time MIDI accompaniment with a MuseGAN-style track-conditional generator.

The runtime package (numpy, mido, JACK-Client, onnxruntime; python-rtmidi for ALSA; never
torch). Start at ``docs/ARCHITECTURE.md`` for the module map and ``docs/DESIGN.md`` for the
contracts.
"""

__version__ = "0.1.0"
