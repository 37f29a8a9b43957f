"""Development harness (not shipped): a real JACK world for tests and benchmarks."""
