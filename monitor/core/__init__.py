"""Core: plain data and pure helpers every stage shares (summaries, reference, values, durations,
objectives, clock, redaction). Imports nothing from Vigil; everything else may import it."""
