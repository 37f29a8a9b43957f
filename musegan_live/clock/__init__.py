"""Clocks: clock events and the external MIDI clock follower, the internal clock,
the choice between them."""
