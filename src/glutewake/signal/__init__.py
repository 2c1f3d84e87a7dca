"""Signal processing: pure functions over numpy arrays (no I/O, no database)."""
