"""Files: MIDI and piano-roll readers and writers."""
