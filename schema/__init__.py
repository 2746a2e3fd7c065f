"""The shared vocabulary of the station network: pure data and rules, no I/O.

Imported by ``sync`` and ``station``; imports nothing of ours (DESIGN.md §3).
"""
