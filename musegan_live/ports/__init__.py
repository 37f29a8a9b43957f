"""MIDI ports: the validating, locking base classes and the rtmidi / JACK backends."""
