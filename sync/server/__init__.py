"""The county center (县中心): enrollment, push/pull of signed segments, county-published events.

Layers, inside out:

- :mod:`sync.server.db` — peewee models and ``connect(url)`` (SQLite or PostgreSQL, one code path);
- :mod:`sync.server.keystore` — the county keys, wrapped under the admin passphrase;
- :mod:`sync.server.county_chain` — the county's own hash chain of published events;
- :mod:`sync.server.registry`, :mod:`sync.server.ingest`, :mod:`sync.server.pull`,
  :mod:`sync.server.bundles`, :mod:`sync.server.catalog_import` — plain functions, no HTTP;
- :mod:`sync.server.app` — the FastAPI app (handlers only translate to and from those functions);
- :mod:`sync.server.cli` — the ``county-center`` command.
"""
