"""Listing histories over time, simulated on top of the world's listings (sandbox/world.py).

The world generator makes listings as they are on one day; investigators and the store benchmark
need them as they live for months: prices move, sales counts grow, sellers add or drop a TIS claim,
rename their shop, listings vanish and come back, and a new registry version changes verdicts. This
module replays that as a stream of what crawls would deliver, round by round (one round a day),
deterministically from a seed. It makes no listing of its own: every view is a world listing with
some fields changed.

    for ev in simulate(world, observations=1_000_000, seed=1):
        if ev.kind == "ingest": store.ingest(ev.listing, ev.verdict, ev.at)
        else: store.delist(ev.key, ev.at)

`observations` is the number of distinct views to produce (what the store keeps as observation
rows); a view is seen by a few rounds in a row, so there are more ingest events than observations.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from listings.model import FLAGGED, Listing
from matching.verdict import Verdict
from sandbox.world import World

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)

# what changes between two views of a listing, and how often
CHANGES = {"price": 0.42, "sold": 0.26, "title": 0.08, "description": 0.05, "brand": 0.03, "seller": 0.03,
           "delist": 0.06, "verdict": 0.07}
_PROMO = ["🔥ลดราคา🔥 ", "ส่งฟรี ", "⚡️Flash Sale⚡️ ", "ของแท้ 100% ", "พร้อมส่ง "]
_CLAIMS = ["มอก. {}", "มอก.{}", "(มอก.{})", "TIS {}"]


@dataclass
class Event:
    kind: str  # "ingest" or "delist"
    at: datetime
    key: str
    listing: Listing | None = None
    verdict: Verdict | None = None


@dataclass
class _Life:
    record: dict[str, Any]
    expected: dict[str, Any]
    views_left: int          # new views still to make
    seen_left: int           # sightings of the current view still to come before it changes
    verdict: str
    risk: int
    reasons: list[str]
    claims: list[dict[str, Any]]
    gone_until: int = -1     # delisted until this round


def _verdict(life: _Life, registry_version: str) -> Verdict:
    r, e = life.record, life.expected
    return Verdict(r["marketplace"], r["item_id"], life.verdict, life.risk, e.get("tis_no"), e.get("licence_no"),
                   list(life.reasons), claims=[dict(c) for c in life.claims],
                   standards=[e["tis_no"]] if e.get("tis_no") else [], registry_version=registry_version)


def _initial_reasons(e: dict[str, Any], rng: random.Random) -> tuple[int, list[str]]:
    v, tis, lic = e["verdict"], e.get("tis_no"), e.get("licence_no")
    if v == "not_controlled":
        return rng.randint(0, 10), ["no_controlled_product"]
    reasons = [f"product:{tis}:สินค้า"] if tis else []
    if v == "licensed":
        return rng.randint(0, 15), reasons + ([f"licence_match:{lic}"] if lic else ["brand_licensed:brand"])
    if v == "unlicensed":
        return rng.randint(60, 90), reasons + ["no_claim", "no_active_licence_for_brand:brand"]
    if v == "mislabeled":
        return rng.randint(80, 100), reasons + [f"claims_tis:{tis}", "no_active_licence_for_brand:brand"]
    return rng.randint(40, 70), reasons + ["ambiguous_product:สินค้า"]


def simulate(world: World, observations: int, seed: int = 1, start: datetime = T0,
             step: timedelta = timedelta(days=1), repeat: float = 0.25) -> Iterator[Event]:
    """Events in time order. Every world listing appears once at least; `observations` distinct
    views are made in all (at least one a listing); `repeat` is the share of extra sightings of an
    unchanged view (crawls that find nothing new)."""
    rng = random.Random(f"history:{seed}")
    n = len(world.listings)
    if n == 0:
        return
    per = max(1.0, observations / n)
    extra = observations - n
    lives: list[_Life] = []
    for i, w in enumerate(world.listings):
        views = 1 + (extra // n) + (1 if i < extra % n else 0) if extra > 0 else 1
        risk, reasons = _initial_reasons(w.expected, rng)
        claims = [{"kind": "tis", "value": w.expected["tis_no"]}] if w.expected["verdict"] == "mislabeled" and w.expected.get("tis_no") else []
        lives.append(_Life(dict(w.listing), dict(w.expected), views - 1, 1 + _geometric(rng, repeat), w.expected["verdict"],
                           risk, reasons, claims))
    rounds = max(2, math.ceil(per * (1 + repeat / (1 - repeat)) * 1.2) + 2)
    # listings start appearing over the first third of the rounds, like a crawl finding them
    first_round = [rng.randrange(max(1, rounds // 3)) for _ in range(n)]
    kinds, weights = list(CHANGES), list(CHANGES.values())
    for rnd in range(rounds):
        at = start + rnd * step
        version = f"sim-{1 + rnd // 7}"
        for i, life in enumerate(lives):
            if rnd < first_round[i] or (life.views_left <= 0 and life.seen_left <= 0):
                continue
            if life.gone_until >= rnd:
                continue
            key = f"{life.record['marketplace']}:{life.record['item_id']}"
            if life.seen_left <= 0:
                kind = rng.choices(kinds, weights)[0]
                if kind == "delist" and rnd + 2 < rounds:
                    life.gone_until = rnd + rng.randint(1, 2)
                    yield Event("delist", at - step / 2, key)
                    continue
                _change(life, kind, rng)
                life.views_left -= 1
                life.seen_left = 1 + _geometric(rng, repeat)
            life.seen_left -= 1
            minute = timedelta(minutes=i % 600, seconds=i % 60)
            yield Event("ingest", at + minute, key, Listing.model_validate(life.record), _verdict(life, version))
    # views still owed (the schedule ran out of rounds): one more round with them
    at = start + rounds * step
    for life in lives:
        while life.views_left > 0:
            _change(life, rng.choice(["price", "sold"]), rng)
            life.views_left -= 1
            at += timedelta(seconds=1)
            key = f"{life.record['marketplace']}:{life.record['item_id']}"
            yield Event("ingest", at, key, Listing.model_validate(life.record), _verdict(life, f"sim-{1 + rounds // 7}"))


def _geometric(rng: random.Random, p: float) -> int:
    k = 0
    while rng.random() < p and k < 20:
        k += 1
    return k


def _change(life: _Life, kind: str, rng: random.Random) -> None:
    r = life.record
    if kind in ("price", "delist") or (kind in ("brand",) and not r.get("brand")):
        base = r.get("price") or rng.choice((99.0, 199.0, 390.0))
        r["price"] = max(9.0, round(base * rng.choice((0.8, 0.85, 0.9, 0.95, 1.05, 1.1, 1.2))))
    elif kind == "sold":
        r["sold"] = (r.get("sold") or 0) + rng.randint(1, 40)
    elif kind == "title":
        t = r["title"]
        promo = next((p for p in _PROMO if t.startswith(p)), None)
        tis = life.expected.get("tis_no")
        if tis and life.verdict in FLAGGED and rng.random() < 0.5:
            claim = rng.choice(_CLAIMS).format(tis)
            if claim in t:
                r["title"] = t.replace(" " + claim, "").replace(claim, "").strip() or t
                life.claims = []
            else:
                r["title"] = f"{t} {claim}"
                life.claims = [{"kind": "tis", "value": tis}]
                if life.verdict == "unlicensed":
                    life.verdict, life.risk = "mislabeled", min(100, life.risk + 10)
                    life.reasons = [x for x in life.reasons if x != "no_claim"] + [f"claims_tis:{tis}"]
        elif promo:
            r["title"] = t[len(promo):]
        else:
            r["title"] = rng.choice(_PROMO) + t
    elif kind == "description":
        d = r.get("description") or ""
        r["description"] = d + rng.choice(["\n📌 สินค้าพร้อมส่ง", "\n✅ รับประกัน 1 ปี", "\n🚚 ส่งเร็ว 1-2 วัน"])
    elif kind == "brand":
        r["brand"] = r["brand"].upper() if r["brand"] != r["brand"].upper() else r["brand"].title()
    elif kind == "seller":
        name = r.get("seller") or "ร้าน"
        r["seller"] = name + " Official" if not name.endswith(" Official") else name[: -len(" Official")]
    elif kind == "verdict":
        # a new registry version (a licence suspended or granted) changes the verdict of the same view
        if life.verdict == "licensed":
            life.verdict, life.risk, life.reasons = "mislabeled", 85, life.reasons + ["licence_inactive:x:พักใช้"]
        elif life.verdict in ("unlicensed", "mislabeled"):
            life.verdict, life.risk, life.reasons = "licensed", 10, [x for x in life.reasons if x.startswith("product")]
        else:
            life.risk = max(0, min(100, life.risk + rng.choice((-5, 5))))
        base = r.get("price") or 100.0  # and the view changes a little too, so it is a new observation
        r["price"] = max(9.0, round(base * 0.97))
