"""The daemon: real ports, clock, session and status line wired for `musegan-live --in --out`."""
