"""The live engine: the player's roll, planning, scheduling, the note ledger,
sending, the session."""
