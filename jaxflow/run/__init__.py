"""A run, assembled in one place: its config validated, its problem, streams, data, programs and state."""
