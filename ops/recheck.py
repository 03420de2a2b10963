"""Re-checking stored listings when the licence registry changes.

A licence revoked, suspended, granted or edited can change the verdict of listings that were not
crawled again: a listing that rested on a revoked licence is now `mislabeled` or `unlicensed`, one that
was `unlicensed` may now be covered by a newly granted licence. After every registry import that
changed something (the scheduler's registry refresh, or `tiswatch registry import`), the listings the
changed licences touch are checked again with the new registry:

1. the changed licences since the last re-check (`RegistryStore.changes_since`), and the standards
   they were and are under (base numbers: a licence moved from one standard to another touches both);
2. the stored listings that may depend on them (`ListingStore.affected_keys`): under one of those
   standards (the main one or one that applies with it), or matched to or claiming one of those
   licences. Nothing else can change: check() reads licences only through the listing's standards
   and claimed licence numbers;
3. each is checked again (with the image claims it had); when the verdict, risk, standard, licence or
   reasons differ, a `verdict` event (source "registry") is appended to the event log, so that alerts
   follow, and the verdict is recorded in the listing's history with the registry version and reason
   codes that say why (registry_recheck, registry_granted, registry_status). A re-check that changes
   nothing writes nothing.

The cursor (the last import re-checked) is kept in jobs.sqlite. It moves on only when no crawl was
running: a crawl that loaded the old registry might store a verdict after the re-check; the next run
then checks the same listings again (idempotent: unchanged verdicts write nothing, events are
de-duplicated).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from matching.reasons import substantive

log = logging.getLogger(__name__)
CURSOR = "recheck_import_id"
LISTING_FIELDS = ("marketplace", "item_id", "title", "shop_id", "url", "description", "brand", "seller", "seller_id",
                  "price", "currency", "sold", "location", "category", "attributes", "images")


# ---- pure ---------------------------------------------------------------------------------------------
def import_id(version: str) -> int:
    """'r12' -> 12 (the registry store's version names the last import that changed something)."""
    try:
        return int(version.lstrip("r"))
    except ValueError:
        return 0


def group_changes(changes: Iterable[Any]) -> list[dict[str, Any]]:
    """RegistryStore.changes_since rows (one per field changed, field 'added' for a new licence) to one
    entry per licence: {"licence_no", "new", "changes": [{"field", "old", "new"}, ...]}. Pure."""
    out: dict[str, dict[str, Any]] = {}
    for c in changes:
        d = out.setdefault(c.licence_no, {"licence_no": c.licence_no, "new": False, "changes": []})
        if c.field == "added":
            d["new"] = True
        else:
            d["changes"].append({"field": c.field, "old": c.old, "new": c.new})
    return list(out.values())


def touched(deltas: Iterable[dict[str, Any]], current_tis: dict[str, str | None]) -> tuple[set[str], set[str]]:
    """(standard bases, licence numbers) touched by changed licences. `current_tis`: licence number ->
    its standard now. A change of standard touches the old one too."""
    from registry.tisno import parse_tis

    bases: set[str] = set()
    nos: set[str] = set()
    for d in deltas:
        nos.add(d["licence_no"])
        tis_values = [current_tis.get(d["licence_no"])]
        tis_values += [c["old"] for c in d.get("changes", []) if c["field"] == "tis_no"]
        for t in tis_values:
            p = parse_tis(t) if t else None
            if p is not None:
                bases.add(p.base)
    return bases, nos


def verdict_tuple(verdict: str | None, risk: Any, tis_no: str | None, licence_no: str | None,
                  reasons: Iterable[str]) -> tuple[Any, ...]:
    return (verdict, risk, tis_no, licence_no, tuple(substantive(list(reasons))))


def same_verdict(row: dict[str, Any], v: Any) -> bool:
    return verdict_tuple(row.get("verdict"), row.get("risk"), row.get("tis_no"), row.get("licence_no"), row.get("reasons") or []) \
        == verdict_tuple(v.verdict, v.risk, v.tis_no, v.licence_no, v.reasons)


def _status_change(delta: dict[str, Any]) -> str | None:
    st = [c["new"] for c in delta.get("changes", []) if c["field"] == "status"]
    return st[-1] if st else None


def provenance(row: dict[str, Any], v: Any, deltas: dict[str, dict[str, Any]], version: str) -> list[str]:
    """Reason codes that say why a re-check changed a verdict: the licence granted or whose status or
    details the registry changed (the new licence first, then the one the listing rested on), and the
    registry version."""
    out: list[str] = []
    mentioned: set[str] = set()
    for no in (v.licence_no, row.get("licence_no")):
        if not no or no in mentioned or no not in deltas:
            continue
        mentioned.add(no)
        d = deltas[no]
        status = _status_change(d)
        newly_covers = row.get("verdict") != "licensed" or row.get("licence_no") != no
        if v.verdict == "licensed" and no == v.licence_no and newly_covers and (d["new"] or status == "active"):
            out.append(f"registry_granted:{no}")
        elif status:
            out.append(f"registry_status:{no}:{status}")
        elif d["new"]:
            out.append(f"registry_licence_changed:{no}:new")
        else:
            fields = sorted({c["field"] for c in d.get("changes", [])})
            out.append(f"registry_licence_changed:{no}:{', '.join(fields)}")
    out.append(f"registry_recheck:{version}")
    return out


def dedupe_key(version: str, key: str, row: dict[str, Any], v: Any) -> str:
    """One event per transition of one listing under one registry version, however often it is re-run."""
    before = verdict_tuple(row.get("verdict"), row.get("risk"), row.get("tis_no"), row.get("licence_no"), row.get("reasons") or [])
    after = verdict_tuple(v.verdict, v.risk, v.tis_no, v.licence_no, v.reasons)
    h = hashlib.sha256(json.dumps([before, after], ensure_ascii=False, default=str).encode()).hexdigest()[:16]
    return f"registry:{version}:{key}:{h}"


def listing_from_row(row: dict[str, Any]):
    """The Listing as stored (its latest view), to check again."""
    from listings.model import Listing

    data = {k: row.get(k) for k in LISTING_FIELDS}
    data["observed_at"] = row.get("last_seen")
    return Listing.model_validate(data)


def image_claims_from_detail(detail: dict[str, Any]) -> list[Any]:
    """The claims a crawl read from the listing's images (kept in the verdict detail), so that a
    re-check weighs the same evidence as the crawl did."""
    raw = [c for c in (detail or {}).get("claims", []) if str(c.get("where", "")).startswith("image:")]
    if not raw:
        return []
    try:
        from matching.image_claims import ImageClaim
    except ImportError:  # pragma: no cover - image claims not installed
        return []
    out = []
    for c in raw:
        try:
            out.append(ImageClaim(kind=c["kind"], value=c["value"], where=c["where"], span=tuple(c.get("span") or (0, 0)),
                                  text=c.get("text") or "", box=tuple(c.get("box") or (0, 0, 0, 0)),
                                  source=c.get("source") or "", image_size=tuple(c.get("image_size") or (0, 0))))
        except (KeyError, TypeError):
            continue
    return out


# ---- the re-check -------------------------------------------------------------------------------------
def recheck(settings: Any, *, history: Any, store: Any = None, events: Any = None,
            clock: Callable[[], datetime] | None = None, crawls_running: Callable[[], bool] | None = None,
            since: int | None = None, stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Re-check the listings touched by registry changes since the cursor (or `since`, an import id).
    The first run on a data directory starts from the first import, so it checks every listing under a
    licensed standard once. Returns what it did, for the job history."""
    from listings.events import open_events, verdict_event
    from listings.store import open_store
    from matching import check
    from registry.catalogue import load_catalogue
    from registry.index import Registry
    from registry.store import RegistryStore

    now = (clock or (lambda: datetime.now(UTC)))()
    rs = RegistryStore(settings.registry_db)
    own_store, own_events = store is None, events is None
    try:
        version = rs.version()
        current = import_id(version)
        # never re-checked on this data directory: from the start (listings checked with any older
        # registry are covered; unchanged verdicts cost a check and write nothing)
        cursor = int(since if since is not None else history.get(CURSOR, 0))
        if current <= cursor:
            return {"version": version, "candidates": 0, "changed": 0, "licences_changed": 0}
        deltas = group_changes(rs.changes_since(cursor))
        by_no = {d["licence_no"]: d for d in deltas}
        registry = Registry.from_store(rs, load_catalogue(settings.catalogue_path))
        current_tis = {no: (lic.tis_no if (lic := registry.licence(no)) else None) for no in by_no}
        bases, nos = touched(deltas, current_tis)
        store = store or open_store(settings)
        events = events or open_events(settings)
        running_before = crawls_running() if crawls_running else False
        keys = store.affected_keys(bases, nos)
        changed: list[dict[str, Any]] = []
        transitions: dict[str, int] = {}
        failed = 0
        stopped = False
        for key in keys:
            if stop is not None and stop():
                stopped = True  # the cursor stays: the next run checks these listings again
                break
            row = store.get(key)
            if row is None:
                continue
            try:
                listing = listing_from_row(row)
                v = check(listing, registry, image_claims=image_claims_from_detail(row.get("detail") or {}) or None)
            except Exception as e:  # one bad stored row must not stop the re-check of the others
                failed += 1
                log.warning("re-check of %s failed: %s", key, e, extra={"listing": key})
                continue
            if same_verdict(row, v):
                continue
            v.reasons = list(v.reasons) + provenance(row, v, by_no, version)
            data = verdict_event(v, row.get("verdict"), row["marketplace"], "registry")
            data["status"] = row.get("status")  # a delisted listing's verdict changes too; consumers may skip it
            # the event first: a crash between the two leaves the store unchanged, and the next run
            # finds the same transition and appends nothing new (same dedupe key)
            events.append("verdict", key, data, at=now, dedupe=dedupe_key(version, key, row, v))
            store.record_verdict(key, v, now)
            t = f"{row.get('verdict')}→{v.verdict}"
            transitions[t] = transitions.get(t, 0) + 1
            changed.append({"key": key, "from": row.get("verdict"), "to": v.verdict})
            log.info("re-check %s: %s → %s", key, row.get("verdict"), v.verdict,
                     extra={"listing": key, "marketplace": row["marketplace"]})
        running = running_before or (crawls_running() if crawls_running else False)
        advance = not running and not stopped
        if advance:
            history.put(CURSOR, current)
        out = {"version_from": f"r{cursor}", "version": version, "licences_changed": len(deltas),
               "standards": sorted(bases)[:50], "candidates": len(keys), "changed": len(changed),
               "transitions": transitions, "failed": failed, "cursor_advanced": advance, "listings": changed[:50]}
        if stopped:
            out["stopped"] = True
        return out
    finally:
        rs.close()
        if own_store and store is not None:
            store.close()
        if own_events and events is not None:
            events.close()
