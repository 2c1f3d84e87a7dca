"""Seeded simulators: participants, postures and EMG rendered to device-native bytes."""
