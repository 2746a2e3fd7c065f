"""The catalog a station works from: the latest version the county published, else the default.

``catalog.published`` events (body = ``Catalog.to_dict()``) arrive by pull, on the county's
chain. The newest one (folding order) wins. A body that does not validate is skipped (logged,
never shown as a crash) and the previous version, or the shipped default, stays in use.
Parsed catalogs are cached by event id, so asking is one indexed query.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict

from schema import events as K
from schema.catalog import Catalog, default_catalog
from schema.errors import UserError
from station.replication import registry

log = logging.getLogger(__name__)

_cache: OrderedDict[str, Catalog | None] = OrderedDict()
_lock = threading.Lock()


def _parse(event_id: str, body: str) -> Catalog | None:
    with _lock:
        if event_id in _cache:
            _cache.move_to_end(event_id)
            return _cache[event_id]
    try:
        catalog: Catalog | None = Catalog.from_dict(json.loads(body))
    except (UserError, ValueError, TypeError, KeyError, AttributeError) as e:
        log.warning("catalog.published %s does not validate (%s); not used", event_id, type(e).__name__)
        catalog = None
    with _lock:
        _cache[event_id] = catalog
        while len(_cache) > 8:
            _cache.popitem(last=False)
    return catalog


def county_catalog(db) -> Catalog | None:
    """The newest valid catalog the county published, or None."""
    county = registry.county_station(db)
    if not county:
        return None
    rows = db.execute_sql(
        "SELECT id, body FROM event WHERE kind = ? AND station = ? ORDER BY hlc DESC, seq DESC LIMIT 5",
        (K.CATALOG_PUBLISHED, county),
    ).fetchall()
    for event_id, body in rows:
        catalog = _parse(event_id, body)
        if catalog is not None:
            return catalog
    return None


def current_catalog(session=None) -> Catalog:
    if session is None:
        return default_catalog()
    return county_catalog(session.db) or default_catalog()
