"""Training data: MIDI folders and the default corpus to phrases, phrases to batches."""
