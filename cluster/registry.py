"""The licence registry for processes on other machines: the machine that holds the registry
(registry.sqlite, kept current by `tiswatch registry import` and the scheduler's registry job)
publishes a snapshot to Redis whenever its version changes; crawlers and workers elsewhere load it
from there (and load it again when the version moves on).

Snapshot: `<ns>:registry` hash with `version` (the RegistryStore version, e.g. "r12"), `published`
and `data`: zlib-compressed JSON of the licences with their status and field histories. The standards
catalogue is not in it: it ships with tiswatch (config/standards.toml, or [registry] catalogue, which
must then be the same file on every machine).
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import asdict, fields
from datetime import UTC, date, datetime
from typing import Any

from cluster.keys import Keys

log = logging.getLogger(__name__)


def _jsonable(v: Any) -> Any:
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, tuple):
        return list(v)
    return v


def snapshot(settings: Any) -> tuple[str, bytes] | None:
    """(version, compressed snapshot) of the data directory's registry; None when it has no licence."""
    from registry.store import RegistryStore

    if not settings.registry_db.exists():
        return None
    rs = RegistryStore(settings.registry_db)
    try:
        if rs.count() == 0:
            return None
        version = rs.version()
        fh: dict[str, list[list[Any]]] = {}
        for no, effective, f, old in rs.db.execute("SELECT licence_no, effective, field, old FROM licence_changes ORDER BY id"):
            fh.setdefault(no, []).append([effective, f, old])
        data = {"version": version,
                "licences": [{k: _jsonable(v) for k, v in asdict(lic).items()} for lic in rs.licences()],
                "status_history": {k: [list(x) for x in v] for k, v in rs.status_history().items()},
                "field_history": fh}
    finally:
        rs.close()
    return version, zlib.compress(json.dumps(data, ensure_ascii=False).encode(), 6)


def published_version(r: Any, keys: Keys) -> str | None:
    v = r.hget(keys.registry, "version")
    return v.decode() if v else None


def publish(r: Any, keys: Keys, settings: Any, force: bool = False) -> str | None:
    """Publish the data directory's registry unless Redis has this version already; returns the
    version published (None when nothing was)."""
    from registry.store import RegistryStore

    if not settings.registry_db.exists():
        return None
    rs = RegistryStore(settings.registry_db)
    try:
        version = rs.version() if rs.count() else None
    finally:
        rs.close()
    if version is None or (not force and published_version(r, keys) == version):
        return None
    snap = snapshot(settings)
    if snap is None:
        return None
    r.hset(keys.registry, mapping={"version": snap[0], "data": snap[1],
                                   "published": datetime.now(UTC).isoformat(timespec="seconds")})
    log.info("published licence registry %s to Redis (%d bytes)", snap[0], len(snap[1]))
    return snap[0]


def _licence(d: dict[str, Any]):
    from registry.licences import Licence

    names = {f.name for f in fields(Licence)}
    kw = {k: v for k, v in d.items() if k in names}
    for k in ("trademarks", "models"):
        kw[k] = tuple(kw.get(k) or ())
    for k in ("issued", "status_date"):
        kw[k] = date.fromisoformat(kw[k]) if kw.get(k) else None
    return Licence(**kw)


def load_published(r: Any, keys: Keys, catalogue: Any) -> Any | None:
    """The published Registry, or None when nothing is published."""
    from registry.index import Registry

    blob = r.hget(keys.registry, "data")
    if not blob:
        return None
    data = json.loads(zlib.decompress(blob))
    return Registry((_licence(d) for d in data["licences"]), catalogue, version=data["version"],
                    status_history={k: [tuple(x) for x in v] for k, v in data["status_history"].items()},
                    field_history={k: [tuple(x) for x in v] for k, v in data["field_history"].items()})


def load_registry(settings: Any, r: Any, keys: Keys) -> Any:
    """The registry a distributed process checks against: the one published in Redis, else the data
    directory's own (a single machine whose processes share one data directory)."""
    from registry.catalogue import load_catalogue
    from registry.index import Registry
    from registry.store import RegistryStore

    cat = load_catalogue(settings.catalogue_path)
    reg = load_published(r, keys, cat)
    if reg is not None:
        return reg
    rs = RegistryStore(settings.registry_db)
    try:
        reg = Registry.from_store(rs, cat)
    finally:
        rs.close()
    if not reg.by_no:
        log.warning("no licence registry published in Redis (%s) and none in %s: every controlled listing will "
                    "look unlicensed; run `tiswatch cluster publish-registry` where the registry is imported",
                    keys.registry, settings.registry_db)
    return reg
