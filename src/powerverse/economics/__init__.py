"""PowerVerse tokenomics: supply, block-reward emission, allocations and their unlock schedules.

Pure functions over integers (wei, unix seconds); no I/O and no clock: every time is passed in.
"""
