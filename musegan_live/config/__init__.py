"""Configuration: the live options table and loading `configs/live.yaml` + CLI overrides."""
