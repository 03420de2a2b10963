"""The alert engine over the real event log and listing store: filters per partner, retractions,
exactly-once across restarts and concurrent engines, and nothing internal in what partners get."""

import json
import threading

import pytest
from alerts_helpers import decide, ingest, listing, verdict

from alerts.clock import FakeClock
from alerts.engine import AlertEngine
from alerts.model import AlertMessage
from alerts.rules import Filters
from alerts.service import open_service
from alerts.store import AlertStore, PartnerError
from listings.events import EventLog


@pytest.fixture
def svc(home):
    s = open_service(home, clock=FakeClock())
    yield s
    s.close()


def feed(svc, pid, after=0):
    rows, _, _ = svc.store.feed(pid, after, 10_000)
    return [svc.publisher.message(r) for r in rows]


def kinds(msgs):
    return [(m.type, m.data.listing.key) for m in msgs]


def add(svc, pid, **kw):
    return svc.store.add_partner(pid, pid.upper(), svc.clock.now(), **kw)


def test_partners_get_what_their_filters_ask_and_retractions_follow(svc, world_registry):
    add(svc, "etda", filters=Filters(min_risk=70))
    add(svc, "shopee", filters=Filters(marketplaces=("shopee",), confirmed_only=True))
    add(svc, "lazada", filters=Filters(marketplaces=("lazada",), min_risk=80))
    ev = svc.events
    ingest(svc.listings, ev, listing(1), world_registry)  # unlicensed, risk 70
    ingest(svc.listings, ev, listing(2, "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง"), world_registry)  # mislabeled, 85
    ingest(svc.listings, ev, listing(3, "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง", marketplace="lazada"), world_registry)
    ingest(svc.listings, ev, listing(4, "ซองใส่พาวเวอร์แบงค์"), world_registry)  # not controlled
    ingest(svc.listings, ev, listing(5, "พาวเวอร์แบงค์ 20000mAh", marketplace="lazada"), world_registry)  # 70 < 80
    r = svc.engine.process()
    assert r.events == 5 and r.messages == 5  # four for etda, one for lazada
    assert kinds(feed(svc, "etda")) == [("alert.opened", "shopee:1"), ("alert.opened", "shopee:2"),
                                        ("alert.opened", "lazada:3"), ("alert.opened", "lazada:5")]
    assert feed(svc, "shopee") == [] and kinds(feed(svc, "lazada")) == [("alert.opened", "lazada:3")]

    decide(ev, "shopee:1", "confirmed")
    decide(ev, "shopee:2", "dismissed")
    verdict(ev, "lazada:5", "licensed", 5, reasons=["licence_match:ท1-1/1"])
    svc.engine.process()
    etda = feed(svc, "etda", 4)
    assert kinds(etda) == [("alert.updated", "shopee:1"), ("alert.retracted", "shopee:2"), ("alert.retracted", "lazada:5")]
    assert etda[0].data.basis == "confirmed" and etda[0].data.alert_id == feed(svc, "etda")[0].data.alert_id
    assert etda[1].data.retraction.reason == "dismissed" and etda[2].data.retraction.reason == "licensed"
    assert "officer" in etda[1].data.retraction.en
    assert kinds(feed(svc, "shopee")) == [("alert.opened", "shopee:1")]

    # the registry re-check finds a licence for a confirmed listing: every partner that has it gets a retraction
    verdict(ev, "shopee:1", "licensed", 3, reasons=["licence_match:ท1-1/1"])
    svc.engine.process()
    assert kinds(feed(svc, "shopee", 1)) == [("alert.retracted", "shopee:1")]
    assert kinds(feed(svc, "etda", 7)) == [("alert.retracted", "shopee:1")]
    # and if it is flagged again later, that is a new alert that needs a new confirmation
    verdict(ev, "shopee:1", "unlicensed", 90)
    svc.engine.process()
    again = feed(svc, "etda", 8)
    assert kinds(again) == [("alert.opened", "shopee:1")] and again[0].data.basis == "automatic"
    assert again[0].data.alert_id != etda[0].data.alert_id
    assert feed(svc, "shopee", 2) == []
    for pid in ("etda", "shopee", "lazada"):  # each partner's feed is numbered 1, 2, 3 … on its own
        assert [m.seq for m in feed(svc, pid)] == list(range(1, len(feed(svc, pid)) + 1))


def test_the_public_part_only(svc, world_registry):
    """Serialise everything every partner can get; no officer note, officer id, review state or other
    partner's anything, and only the allow-listed fields."""
    add(svc, "etda")
    add(svc, "shopee", filters=Filters(marketplaces=("shopee",)))
    ev = svc.events
    note, officer = "ผู้ขายรายนี้เป็นญาติของนายก ห้ามเปิดเผย SECRET-NOTE-7731", "officer-secret-42"
    for i in range(1, 4):
        ingest(svc.listings, ev, listing(i, "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง", marketplace="shopee" if i < 3 else "lazada"),
               world_registry)
        decide(ev, f"{'shopee' if i < 3 else 'lazada'}:{i}", "confirmed", note=note, by=officer)
    decide(ev, "shopee:2", "dismissed", note=note, by=officer)
    svc.listings.set_review_status("shopee:1", "confirmed")
    svc.engine.process()
    out = {}
    for pid in ("etda", "shopee"):
        msgs = feed(svc, pid)
        assert msgs
        out[pid] = [m.model_dump_json() for m in msgs]
        for m in msgs:
            alert = svc.store.alert(m.data.alert_id)
            assert alert["partner_id"] == pid  # nobody sees another partner's alert ids
    text = json.dumps(out, ensure_ascii=False)
    for secret in (note, "SECRET-NOTE", officer, "review_status", '"note"', '"by"', "detail", "candidates"):
        assert secret not in text, secret
    assert "etda" not in " ".join(out["shopee"]) and '"shopee"' not in " ".join(x for x in out["etda"] if "lazada:3" in x)
    allowed = _fields(AlertMessage)
    for s in out["etda"] + out["shopee"]:
        assert _keys(json.loads(s)) <= allowed


def _fields(model, prefix=""):
    from typing import get_args

    from pydantic import BaseModel

    out = set()
    for name, f in model.model_fields.items():
        out.add(prefix + name)
        for t in (f.annotation, *get_args(f.annotation), *[a for x in get_args(f.annotation) for a in get_args(x)]):
            if isinstance(t, type) and issubclass(t, BaseModel):
                out |= _fields(t, prefix + name + ".")
    return out


def _keys(d, prefix=""):
    out = set()
    if isinstance(d, dict):
        for k, v in d.items():
            out.add(prefix + k)
            out |= _keys(v, prefix + k + ".")
    elif isinstance(d, list):
        for v in d:
            out |= _keys(v, prefix)
    return out


def test_restart_neither_doubles_nor_loses(home, world_registry):
    clock = FakeClock()
    s1 = open_service(home, clock=clock)
    s1.store.add_partner("etda", "ETDA", clock.now())
    for i in range(10):
        ingest(s1.listings, s1.events, listing(i, "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง"), world_registry)
    assert s1.engine.process(limit=4).messages == 4  # stops after a partial batch …
    s1.close()
    s2 = open_service(home, clock=clock)  # … a new process picks up where it left
    assert s2.engine.process_all().messages == 6
    assert s2.engine.process_all().messages == 0
    ids = [m.data.listing.key for m in feed(s2, "etda")]
    assert len(ids) == 10 == len(set(ids))
    s2.close()


def test_a_failing_batch_writes_nothing(svc, world_registry):
    add(svc, "etda")
    for i in range(3):
        ingest(svc.listings, svc.events, listing(i, "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง"), world_registry)
    calls = []

    def boom(ev, facts):
        calls.append(ev.id)
        if len(calls) == 2:
            raise RuntimeError("disk full")

    svc.engine.on_event = boom
    with pytest.raises(RuntimeError):
        svc.engine.process()
    assert feed(svc, "etda") == [] and svc.store.cursor("events") == 0 and svc.store.open_alerts("etda") == []
    svc.engine.on_event = None
    assert svc.engine.process().messages == 3


def test_two_engines_at_once_write_each_message_once(home, world_registry):
    clock = FakeClock()
    svc = open_service(home, clock=clock)
    svc.store.add_partner("etda", "ETDA", clock.now())
    svc.store.add_partner("lazada", "LZ", clock.now(), filters=Filters(min_risk=0))
    path = home.home / "alerts.sqlite"
    engines = [AlertEngine(AlertStore(path), EventLog(home.home / "events.sqlite"), svc.listings, None, clock)
               for _ in range(2)]
    done = threading.Event()

    def run(e):
        while not done.is_set():
            e.process(limit=7)
        e.process_all()

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for i in range(120):
        verdict(svc.events, f"shopee:{i}", "unlicensed", 90)
    done.set()
    for t in threads:
        t.join(60)
    for pid in ("etda", "lazada"):
        keys = [m.data.listing.key for m in feed(svc, pid)]
        assert sorted(keys) == sorted(f"shopee:{i}" for i in range(120))
    svc.close()


def test_backfill_and_filter_changes_reconcile(svc, world_registry):
    for i in range(4):
        ingest(svc.listings, svc.events, listing(i, "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง", marketplace="shopee" if i % 2 else "lazada"),
               world_registry)
    svc.engine.process_all()
    add(svc, "etda")
    assert svc.engine.reconcile("etda") == 4  # a new partner gets the current flags …
    assert svc.engine.reconcile("etda") == 0  # … once
    svc.store.update_partner("etda", svc.clock.now(), filters=Filters(marketplaces=("shopee",)))
    assert svc.engine.reconcile("etda") == 2
    last = feed(svc, "etda", 4)
    assert {m.type for m in last} == {"alert.retracted"} and {m.data.retraction.reason for m in last} == {"outside_filters"}
    assert {m.data.listing.marketplace for m in last} == {"lazada"}


def test_partner_admin_validation(svc):
    with pytest.raises(PartnerError, match="lower-case"):
        add(svc, "ETDA!")
    add(svc, "etda")
    with pytest.raises(PartnerError, match="exists"):
        add(svc, "etda")
    with pytest.raises(PartnerError, match="https"):
        add(svc, "p2", webhook_url="http://partner.example/hook")
    with pytest.raises(PartnerError, match="credentials"):
        add(svc, "p3", webhook_url="https://u:pw@partner.example/hook")
    with pytest.raises(PartnerError, match="scope"):
        add(svc, "p4", scopes=("alerts:everything",))
    with pytest.raises(PartnerError, match="e-mail"):
        add(svc, "p5", email="not an address")
    with pytest.raises(PartnerError, match="not a flagged verdict"):
        add(svc, "p6", filters=Filters(verdicts=("licensed",)))
    with pytest.raises(PartnerError, match="no partner"):
        svc.store.rotate_key("nobody", svc.clock.now())
    assert [p.id for p in svc.store.partners()] == ["etda"]
