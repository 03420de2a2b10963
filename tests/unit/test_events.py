"""The listing event log: ordered, resumable by cursor, idempotent with a dedupe key, multi-process."""

import multiprocessing
from datetime import UTC, datetime

import pytest

from listings.events import EventLog, verdict_event
from matching.verdict import Verdict


def test_read_forward_from_a_cursor_misses_nothing(tmp_path):
    log = EventLog(tmp_path / "e.sqlite")
    ids = [log.append("verdict", f"shopee:{i}", {"n": i}) for i in range(5)]
    assert ids == sorted(ids)
    first = log.read(after=0, limit=2)
    rest = log.read(after=first[-1].id)
    assert [e.data["n"] for e in first + rest] == [0, 1, 2, 3, 4]
    assert log.read(after=log.last_id()) == []


def test_dedupe_key_makes_an_append_idempotent(tmp_path):
    log = EventLog(tmp_path / "e.sqlite")
    assert log.append("decision", "lazada:1", {"decision": "confirmed"}, dedupe="d-1") is not None
    assert log.append("decision", "lazada:1", {"decision": "confirmed"}, dedupe="d-1") is None
    assert len(log.read()) == 1


def test_filters_and_unknown_kind(tmp_path):
    log = EventLog(tmp_path / "e.sqlite")
    log.append_many([("delisted", "shop:a", {}), ("verdict", "shop:b", {}), ("delisted", "shop:c", {})],
                    at=datetime(2026, 11, 1, tzinfo=UTC))
    assert [e.key for e in log.read(kinds=["delisted"])] == ["shop:a", "shop:c"]
    assert [e.kind for e in log.read(key="shop:b")] == ["verdict"]
    assert log.read()[0].at == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown event kind"):
        log.append("exploded", "shop:a")
    with pytest.raises(ValueError):
        log.append_many([("verdict", "x", {}), ("nope", "y", {})])
    assert len(log.read()) == 3  # the bad batch wrote nothing


def test_verdict_event_carries_what_consumers_need():
    v = Verdict("shopee", "9", "mislabeled", 95, tis_no="2879-2560", reasons=["licence_not_found:ท1-1/1"],
                registry_version="r3")
    d = verdict_event(v, "licensed", "shopee", "registry")
    assert d["verdict"] == "mislabeled" and d["previous"] == "licensed" and d["source"] == "registry"
    assert d["reasons"] == ["licence_not_found:ท1-1/1"] and d["registry_version"] == "r3"


def _writer(path, n, tag):
    log = EventLog(path)
    for i in range(n):
        log.append("verdict", f"{tag}:{i}", {"i": i})
    log.close()


def test_several_processes_append_at_once(tmp_path):
    path = tmp_path / "e.sqlite"
    EventLog(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 200, f"p{k}")) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    events = EventLog(path).read(limit=10_000)
    assert len(events) == 600 and len({e.key for e in events}) == 600
    for k in range(3):  # each writer's own events stay in its order
        mine = [e.data["i"] for e in events if e.key.startswith(f"p{k}:")]
        assert mine == sorted(mine)
