"""The catalog this station works from and searching it."""

from __future__ import annotations

from functools import lru_cache

from schema.catalog import Catalog, Item, Policy, default_catalog
from station.catalog_search import CatalogIndex


def current_catalog(session=None) -> Catalog:
    """The latest catalog the county published (``catalog.published``, by pull), else the default."""
    if session is None:
        return default_catalog()
    from station.replication.catalog import current_catalog as latest

    return latest(session)


@lru_cache(maxsize=4)
def _index(catalog: Catalog) -> CatalogIndex:
    return CatalogIndex(catalog)


def search(text: str, session=None, limit: int = 20) -> list[Item]:
    return _index(current_catalog(session)).search(text, limit=limit)


def get(code: str, session=None) -> Item:
    return current_catalog(session).get(code.strip())


def current_policy(session=None) -> Policy:
    """The county's limits published with the catalog (stage limits, 容缺 and 整改 days …)."""
    return current_catalog(session).policy
