"""What the pages and the JSON API both do: turning request parameters into store queries, gathering a
listing's page, a seller's page and the dashboard's figures. The HTML routes (pages.py) and the API
(api.py) are thin layers over this, so they cannot drift apart."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from listings.model import FLAGGED
from listings.store import REVIEW_STATUSES, SearchQuery
from review.i18n import BANGKOK

ORDERS = ("relevance", "risk", "recent", "price")
FLAGGED_VERDICTS = ("unlicensed", "mislabeled", "needs_review")
VERDICT_NAMES = ("not_controlled", "licensed", "unlicensed", "mislabeled", "needs_review")


class BadParam(ValueError):
    pass


def parse_day(s: str | None, end: bool = False) -> datetime | None:
    """'2026-11-22' (a day in Asia/Bangkok) to the UTC instant it starts (or ends, when `end`)."""
    if not s:
        return None
    try:
        d = date.fromisoformat(s.strip())
    except ValueError:
        raise BadParam(f"not a date (YYYY-MM-DD): {s[:40]!r}") from None
    t = datetime.combine(d, time.max if end else time.min, BANGKOK)
    return t.astimezone(UTC)


@dataclass
class ListFilters:
    """The filters of the queue and the search page, as given in the URL."""

    q: str = ""
    marketplace: str = ""
    verdict: str = ""
    tis: str = ""
    seller: str = ""
    date_from: str = ""
    date_to: str = ""
    status: str = ""
    flagged: bool = True
    order: str = "risk"
    price_min: float | None = None
    price_max: float | None = None

    def query(self, limit: int, offset: int) -> SearchQuery:
        if self.verdict and self.verdict not in VERDICT_NAMES:
            raise BadParam(f"unknown verdict {self.verdict[:40]!r}")
        if self.status and self.status != "all" and self.status not in REVIEW_STATUSES:
            raise BadParam(f"unknown review status {self.status[:40]!r}")
        if self.order not in ORDERS:
            raise BadParam(f"unknown order {self.order[:40]!r}")
        return SearchQuery(
            text=self.q[:500], marketplace=self.marketplace or None, verdict=self.verdict or None, tis=self.tis.strip() or None,
            seller=self.seller.strip() or None, date_from=parse_day(self.date_from), date_to=parse_day(self.date_to, end=True),
            review_status=None if self.status in ("", "all") else self.status, flagged_only=self.flagged,
            price_min=self.price_min, price_max=self.price_max, order=self.order, limit=limit, offset=offset)

    def params(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if v not in ("", None)}
        d["flagged"] = "1" if self.flagged else "0"
        return d


def search_with_counts(store: Any, cache: Any, f: ListFilters, limit: int, offset: int) -> tuple[Any, dict[str, list[tuple[str, int]]]]:
    """One page of listings under the filters (read every time) and the facet counts of all of them
    (kept briefly in `cache`, a review.counts.CountCache): (SearchResult, facets).
    Raises BadParam for a bad filter."""
    from dataclasses import replace as _replace

    from review.counts import filters_key

    q = f.query(limit, offset)
    key = filters_key("counts", f.params())
    kept = cache.peek(key)
    if kept is not None:
        return store.search(_replace(q, facets=False)), kept[1]
    res = store.search(q)  # the page and the counts in one go (one text match, one scan)
    cache.put(key, (res.total, res.facets))
    return res, res.facets


def counts_of(store: Any, cache: Any, f: ListFilters) -> tuple[int, dict[str, list[tuple[str, int]]]]:
    """(total, facets) of every listing under the filters, kept in `cache` (review/counts.py)."""
    from review.counts import filters_key

    def compute() -> tuple[int, dict[str, list[tuple[str, int]]]]:
        r = store.search(f.query(0, 0))
        return r.total, r.facets

    return cache.get(filters_key("counts", f.params()), compute)


def listing_page(store: Any, decider: Any, key: str, lang: str = "th") -> dict[str, Any] | None:
    d = store.get(key)
    if d is None:
        return None
    history = store.history(key)
    evidence = store.evidence(key)
    seller = store.seller(d["marketplace"], d["seller_id"]) if d.get("seller_id") else None
    detail = d.get("detail") or {}
    claims = detail.get("claims") or []
    prices = []
    for o in history.get("observations", []):
        p = (o.get("data") or {}).get("price")
        if p is not None:
            prices.append((o["first_seen"], float(p)))
    # newest capture of each kind: what the page shows (older captures stay in the evidence pack)
    latest: dict[str, dict[str, Any]] = {}
    for e in evidence:
        if e["kind"] not in latest or e["created_at"] >= latest[e["kind"]]["created_at"]:
            latest[e["kind"]] = e
    decisions = decider.for_listing(key)
    timeline = sorted(
        [{"at": c["at"], "kind": "change", **c} for c in history.get("changes", [])]
        + [{"at": v["at"], "kind": "verdict", **v} for v in history.get("verdicts", [])]
        + [{"at": x["at"], "kind": "decision", **x} for x in decisions],
        key=lambda x: x["at"])
    return {
        "l": d, "history": history, "evidence": evidence, "latest_evidence": latest, "seller": seller,
        "claims": claims, "claim_texts": [c.get("text") or c.get("value") for c in claims if c.get("where") == "title"],
        "standards": detail.get("standards") or ([d["tis_no"]] if d.get("tis_no") else []),
        "candidates": detail.get("candidates") or [], "prices": prices, "decisions": decisions,
        "timeline": timeline,
        "other_listings": [x for x in (seller or {}).get("items", []) if x["key"] != key][:20],
        "pictures": _pictures(store, key, evidence, claims, lang),  # images/: claims drawn over the pictures
    }


def _pictures(store: Any, key: str, evidence: list[dict[str, Any]], claims: list[dict[str, Any]], lang: str) -> dict[str, Any]:
    from images.review import picture_panel

    return picture_panel(store, key, evidence, claims, lang)


def evidence_file(store: Any, home: Any, key: str, eid: int) -> tuple[Any, dict[str, Any]] | None:
    """(path, record) of one of a listing's evidence files, only if it lies inside the data directory."""
    ev = store.evidence(key)
    if not 0 <= eid < len(ev):
        return None
    rec = ev[eid]
    root = home.resolve()
    p = (root / rec["path"]).resolve()
    if not p.is_relative_to(root) or not p.is_file():
        return None
    return p, rec


# ---- the dashboard ------------------------------------------------------------------------------
def update_flag_days(appdb: Any, events: Any, batch: int = 5000) -> int:
    """Fold new `verdict` events into flag_days (new flags per Bangkok day, marketplace and standard).

    A listing counts on the day its verdict becomes flagged (from unflagged or from nothing). The
    cursor is kept in app.sqlite, so each event is read once, whichever process reads it."""
    if events is None:
        return 0
    after = int(appdb.meta("flag_days_cursor", "0") or 0)
    n = 0
    while True:
        evs = events.read(after=after, limit=batch, kinds=["verdict"])
        if not evs:
            break
        counts: dict[tuple[str, str, str], int] = defaultdict(int)
        for e in evs:
            d = e.data
            if d.get("verdict") in FLAGGED and d.get("previous") not in FLAGGED:
                day = e.at.astimezone(BANGKOK).date().isoformat()
                counts[(day, d.get("marketplace") or e.key.split(":")[0], d.get("tis_no") or "")] += 1
        after = evs[-1].id
        with appdb._lock:
            appdb.db.execute("BEGIN IMMEDIATE")
            try:
                for (day, mp, tis), c in counts.items():
                    appdb.db.execute("INSERT INTO flag_days VALUES (?,?,?,?) ON CONFLICT(day, marketplace, tis_no)"
                                     " DO UPDATE SET n = n + excluded.n", (day, mp, tis, c))
                appdb.db.execute("INSERT OR REPLACE INTO meta VALUES ('flag_days_cursor', ?)", (str(after),))
                appdb.db.execute("COMMIT")
            except BaseException:
                appdb.db.execute("ROLLBACK")
                raise
        n += len(evs)
        if len(evs) < batch:
            break
    return n


TREND_STANDARDS = 6  # standards drawn in the per-day trend; the rest are summed as OTHER
OTHER = "other"


def top_series(series: dict[str, list[int]], n: int, other: str = OTHER) -> dict[str, list[int]]:
    """The `n` series with the largest totals (ties by name), largest first, and the rest summed into
    one series named `other` (only when there is a rest). Pure."""
    ranked = sorted(series, key=lambda k: (-sum(series[k]), k))
    out = {k: list(series[k]) for k in ranked[:n]}
    rest = ranked[n:]
    if rest:
        length = len(series[rest[0]])
        out[other] = [sum(series[k][i] for k in rest) for i in range(length)]
    return out


def dashboard(store: Any, appdb: Any, events: Any, now: datetime, days: int = 30) -> dict[str, Any]:
    update_flag_days(appdb, events)
    today = now.astimezone(BANGKOK).date()
    day_list = [(today - timedelta(days=i)).isoformat() for i in range(days - 1, -1, -1)]
    rows = appdb.q("SELECT day, marketplace, tis_no, n FROM flag_days WHERE day >= ?", (day_list[0],))
    per_mp: dict[str, list[int]] = {}
    by_std: dict[str, int] = defaultdict(int)
    std_days: dict[str, list[int]] = {}
    idx = {d: i for i, d in enumerate(day_list)}
    for r in rows:
        if r["day"] in idx:
            per_mp.setdefault(r["marketplace"], [0] * len(day_list))[idx[r["day"]]] += r["n"]
            std_days.setdefault(r["tis_no"] or "—", [0] * len(day_list))[idx[r["day"]]] += r["n"]
        by_std[r["tis_no"] or "—"] += r["n"]
    # backlog: flagged listings nobody has decided on, by how long they have been flagged (flagged_at:
    # the first flag of the current flagged spell, not first_seen: a listing seen for months and
    # flagged today after a licence was revoked is a day old in the backlog)
    backlog = []
    edges = [(0, 1), (1, 7), (7, 30), (30, None)]
    total_new = store.search(SearchQuery(flagged_only=True, review_status="new", limit=0, facets=False)).total
    older_than = {}
    for a in (1, 7, 30):
        older_than[a] = store.search(SearchQuery(flagged_only=True, review_status="new", limit=0, facets=False,
                                                 flagged_before=now - timedelta(days=a))).total
    for a, b in edges:
        n_ge_a = total_new if a == 0 else older_than[a]
        n_ge_b = older_than[b] if b else 0
        backlog.append((a, max(0, n_ge_a - n_ge_b)))
    since = (now - timedelta(days=days)).astimezone(UTC).isoformat(timespec="seconds")
    per_officer = [(r["username"], r["n"]) for r in appdb.q(
        "SELECT username, count(*) AS n FROM decisions WHERE at >= ? AND action != 'note' GROUP BY username ORDER BY n DESC",
        (since,))]
    # takedown rate over the listings officers acted on: the status each listing has now
    st = {r["status"]: r["n"] for r in appdb.q(
        "SELECT status, count(*) AS n FROM (SELECT key, status FROM decisions d WHERE id = "
        "(SELECT max(id) FROM decisions WHERE key = d.key AND action != 'note')) GROUP BY status")}
    acted = st.get("confirmed", 0) + st.get("escalated", 0) + st.get("taken_down", 0)
    counts = store.counts()
    flagged = sum(v for k, v in counts.get("by_verdict", {}).items() if k in FLAGGED)
    return {
        "days": day_list, "per_marketplace": per_mp, "per_standard": top_series(std_days, TREND_STANDARDS),
        "by_standard": sorted(by_std.items(), key=lambda x: -x[1])[:15],
        "backlog": backlog, "backlog_total": total_new, "per_officer": per_officer,
        "taken_down": st.get("taken_down", 0), "acted": acted,
        "takedown_rate": round(st.get("taken_down", 0) / acted, 3) if acted else None,
        "listings": counts.get("listings", 0), "flagged": flagged,
    }


def jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str, ensure_ascii=False))


# ---- sellers: one operator's shops across marketplaces -------------------------------------------
# how far the seller page looks for linked shops: names and contacts searched per shop, listings whose
# pictures are compared, store hits read per search, shops loaded and shown
LINK_LIMITS = {"names": 5, "contacts": 10, "photo_listings": 100, "photos": 60, "hits": 100, "load": 40, "shops": 30}


def _shop(store: Any, profile: dict[str, Any], photos: Any = None) -> Any:
    from review.linking import Shop, contacts_in, listing_text

    items = profile.get("items") or []
    contacts: set[str] = set()
    for x in items:
        contacts |= contacts_in(listing_text(x))
    names = tuple(dict.fromkeys([n for n in (profile.get("names") or []) + [profile.get("name")] if n]))
    if photos is None:
        photos = set()
        for x in items[:LINK_LIMITS["photo_listings"]]:
            photos |= {im["phash"] for im in store.images_of(x["key"]) if im.get("phash")}
            if len(photos) >= LINK_LIMITS["photos"]:
                break
    return Shop(profile["marketplace"], profile["seller_id"], names, frozenset(contacts), frozenset(photos))


def linked_shops(store: Any, profile: dict[str, Any], limits: dict[str, int] | None = None, depth: int = 2) -> dict[str, Any]:
    """The shops the seller of `profile` (store.seller()) may also run, and why (review/linking.py).

    Candidates come from the store: accounts whose name contains a word of a shop's name
    (store.sellers), listings whose text may carry one of its contacts (store.search, then read with
    the pure extractor), listings with one of the anchor's pictures (store.find_images). The pure
    rules decide. The search starts again from each shop found by a strong or medium link, `depth`
    rounds in all (2: the anchor's links and theirs). Returns {"anchor": Shop, "linked": [{"profile",
    "links", "strength"}], "totals": listings, flagged, first/last seen of the anchor and its strong
    and medium links together}."""
    from review.linking import (
        contacts_in,
        listing_text,
        name_words,
        operator_group,
        search_forms,
        shop_name_key,
    )

    lim = {**LINK_LIMITS, **(limits or {})}
    anchor = _shop(store, profile)
    # candidates by the strength of what found them (contacts, names, photos): loaded in that order, at
    # most lim["load"] of them (a generic name can match hundreds of accounts)
    found: dict[str, dict[tuple[str, str], set[str]]] = {"contact": {}, "name": {}, "photo": {}}

    def note(how: str, mp: Any, sid: Any, phash: str | None = None) -> None:
        if mp and sid and (mp, sid) != (anchor.marketplace, anchor.seller_id):
            s = found[how].setdefault((str(mp), str(sid)), set())
            if phash:
                s.add(phash)

    def gather(shop: Any, photos: bool) -> None:
        keys = {k for n in shop.names if (k := shop_name_key(n))}
        for name in shop.names[:lim["names"]]:
            words = sorted(name_words(name), key=len, reverse=True)
            if keys and words and len(words[0]) >= 3:
                for acc in store.sellers(words[0], limit=lim["hits"]):
                    if shop_name_key(acc.get("name")) in keys:  # the account's name; its others are read when loaded
                        note("name", acc.get("marketplace"), acc.get("seller_id"))
        for c in sorted(shop.contacts)[:lim["contacts"]]:
            for form in search_forms(c):
                try:
                    res = store.search(SearchQuery(text=form, limit=lim["hits"], facets=False, order="recent"))
                except ValueError:
                    continue
                for h in res.hits:
                    if c in contacts_in(listing_text(h)):
                        note("contact", h.get("marketplace"), h.get("seller_id"))
        if photos:
            for ph in sorted(shop.photos)[:lim["photos"]]:
                for h in store.find_images(ph, limit=lim["hits"]):
                    note("photo", h.get("marketplace"), h.get("seller_id"), h.get("phash"))

    profiles: dict[str, dict[str, Any]] = {}
    shops: dict[str, Any] = {}
    searched = {anchor.key}
    frontier = [anchor]
    group: list[Any] = []
    for round_ in range(max(1, depth)):
        for shop in frontier:
            gather(shop, photos=round_ == 0)
        for how in ("contact", "name", "photo"):
            for (mp, sid), phashes in found[how].items():
                k = f"{mp}:{sid}"
                if k in shops:
                    if phashes - shops[k].photos:
                        shops[k] = replace(shops[k], photos=shops[k].photos | frozenset(phashes))
                    continue
                if len(shops) >= lim["load"]:
                    break
                p = store.seller(mp, sid)
                if p is None:
                    continue
                profiles[k] = p
                shops[k] = _shop(store, p, photos=phashes)
        group = operator_group(anchor, shops.values())
        frontier = [g.shop for g in group if g.strength != "weak" and g.shop.key not in searched]
        searched |= {s.key for s in frontier}
        if not frontier:
            break
    group = group[:lim["shops"]]
    linked = [{"profile": profiles[g.shop.key], "strength": g.strength,
               "links": [{"kind": r.kind, "value": r.value, "strength": r.strength, "via": r.via} for r in g.links]}
              for g in group]
    same = [profile] + [x["profile"] for x in linked if x["strength"] != "weak"]
    n = sum(p["listings"] for p in same)
    flagged = sum(p["flagged"] for p in same)
    totals = {"shops": len(same), "marketplaces": sorted({p["marketplace"] for p in same}), "listings": n,
              "flagged": flagged, "flagged_share": round(flagged / n, 3) if n else 0.0,
              "first_seen": min((p["first_seen"] for p in same if p.get("first_seen")), default=None),
              "last_seen": max((p["last_seen"] for p in same if p.get("last_seen")), default=None)}
    return {"anchor": anchor, "linked": linked, "totals": totals}


def operator_listings(anchor_profile: dict[str, Any], linked: list[dict[str, Any]], limit: int = 1000) -> list[dict[str, Any]]:
    """The listings of a shop and of the shops strongly or medium linked to it, riskiest first."""
    items = list(anchor_profile.get("items") or [])
    for x in linked:
        if x["strength"] != "weak":
            items += x["profile"].get("items") or []
    items.sort(key=lambda h: (-(h.get("risk") or 0), h.get("key") or ""))
    return items[:limit]
