"""Replication with the county center: enrollment, push, pull, relay and USB bundles.

Everything here runs against an unlocked :class:`station.session.Session`; the
wire format and the HTTP client live in :mod:`sync`. See ``docs/sync.md``.
"""
