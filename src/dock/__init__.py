"""Dock sync agent: recognises docked cameras over USB, offloads, verifies, uploads, erases.

``bwc dock run`` runs it: :class:`dock.runner.DockAgent` ties the bay monitor, link resolution,
camera sessions and the offload pipeline together, one worker thread per docked bay.
"""
