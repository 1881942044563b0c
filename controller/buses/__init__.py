"""Buses: one worker thread per physical bus, and where the bus objects come from (real Pi or emulators)."""
