"""Dock sync agent: recognises docked cameras over USB, offloads, verifies, uploads, erases.

Not built yet (its issue is open); `bwc dock ...` says so and exits 2.
"""
