"""What only the SQLite store has: schema versions and migrating a v1 database in place, WAL, the
compressed observation format. The behaviour both backends share is in test_store_contract.py."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest
from store_helpers import RUNS_BEFORE_WORDS_V2, T0

from listings.model import Listing
from listings.sqlite_migrate import migrate
from listings.sqlite_store import SCHEMA_VERSION, SqliteStore, pack, unpack
from listings.store import SchemaError, SearchQuery, StoreError

V1_SQL = Path(__file__).parent / "data" / "listings-v1.sql"


def v1_database(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.executescript(V1_SQL.read_text("utf-8"))
    db.close()
    return path


def v1_contents(path: Path) -> dict:
    """Everything a v1 database holds, read with plain SQL (as the v1 code wrote it)."""
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    q = db.execute
    out = {
        "listings": {r["key"]: dict(r) for r in q("SELECT * FROM listings")},
        "observations": sorted((r["key"], r["content_hash"], r["first_seen"], r["last_seen"], r["times"], r["data"])
                               for r in q("SELECT * FROM observations")),
        "changes": sorted(tuple(r) for r in q("SELECT key, at, field, old, new FROM changes")),
        "verdicts": sorted(tuple(r) for r in q("SELECT key, at, verdict, risk, tis_no, licence_no, reasons, registry_version FROM verdicts")),
        "evidence": sorted(tuple(r) for r in q("SELECT key, kind, path, sha256, size, created_at FROM evidence")),
        "crawl_state": sorted(tuple(r) for r in q("SELECT * FROM crawl_state")),
    }
    db.close()
    return out


def test_v1_database_migrates_in_place_without_loss(tmp_path):
    path = v1_database(tmp_path / "listings.sqlite")
    before = v1_contents(path)
    assert len(before["listings"]) == 36 and len(before["observations"]) == 90
    with pytest.raises(SchemaError, match="tiswatch store migrate"):
        SqliteStore(path)
    said: list[str] = []
    rep = migrate(path, say=said.append)
    assert (rep["from"], rep["to"], rep["steps"]) == (1, 2, ["v1 -> v2"]) and Path(rep["backup"]).exists()
    assert v1_contents(Path(rep["backup"])) == before  # the backup is the v1 database as it was
    st = SqliteStore(path)
    for key, row in before["listings"].items():
        g = st.get(key)
        for k, v in row.items():
            if k in ("category", "attributes", "images", "reasons", "detail"):
                assert g[k] == (json.loads(v) if v else ({} if k in ("attributes", "detail") else [])), (key, k)
            else:
                assert g[k] == v, (key, k)
    after_obs = sorted((k, o["content_hash"], o["first_seen"], o["last_seen"], o["times"], o["data"])
                       for k in before["listings"] for o in st.history(k)["observations"])
    assert after_obs == [(k, h, a, b, t, json.loads(d)) for k, h, a, b, t, d in before["observations"]]
    assert sorted((k, c["at"], c["field"], c["old"], c["new"]) for k in before["listings"] for c in st.history(k)["changes"]) \
        == before["changes"]
    assert sorted((k, v["at"], v["verdict"], v["risk"], v["tis_no"], v["licence_no"], json.dumps(v["reasons"], ensure_ascii=False),
                   v["registry_version"]) for k in before["listings"] for v in st.history(k)["verdicts"]) == before["verdicts"]
    assert sorted((k, e["kind"], e["path"], e["sha256"], e["size"], e["created_at"]) for k in before["listings"]
                  for e in st.evidence(k)) == before["evidence"]
    assert st.fetch_states(before["crawl_state"][0][0], [before["crawl_state"][0][1]])
    # the rebuilt indexes search, and the store goes on from where v1 stopped
    title = next(iter(before["listings"].values()))["title"]
    word = title.split()[1] if len(title.split()) > 1 else title
    assert st.search(SearchQuery(text=word)).total >= 1
    key = next(iter(before["listings"]))
    x = Listing.model_validate({**json.loads(before["observations"][0][5]), "price": 1.0})
    r = st.ingest(x, None, T0)
    assert r.key == x.key and not r.new_listing
    assert migrate(path)["steps"] == []  # already current
    assert key in before["listings"]


def test_migration_failure_leaves_the_database_as_it_was(tmp_path, monkeypatch):
    path = v1_database(tmp_path / "listings.sqlite")
    before = v1_contents(path)
    import listings.sqlite_migrate as m

    def boom(db, say):
        m._v1_to_v2(db, say)
        raise RuntimeError("disk full")

    monkeypatch.setitem(m.STEPS, 1, boom)
    with pytest.raises(RuntimeError):
        migrate(path, make_backup=False)
    assert v1_contents(path) == before
    with pytest.raises(SchemaError):
        SqliteStore(path)


def test_newer_and_foreign_databases_are_refused(tmp_path):
    p = tmp_path / "new.sqlite"
    SqliteStore(p).close()
    db = sqlite3.connect(p)
    db.execute("UPDATE meta SET value='9' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(SchemaError, match="newer"):
        SqliteStore(p)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"junk\.sqlite"):
        SqliteStore(junk)


def test_observation_format():
    rec = {"marketplace": "shopee", "item_id": "1", "title": "ปลั๊กพ่วง \"x\" \u200b", "price": 1.5, "attributes": {"a": "b"}}
    blob = pack(rec)
    assert blob[:1] == b"\x01" and unpack(blob) == rec and unpack(json.dumps(rec)) == rec
    assert len(blob) < len(json.dumps(rec, ensure_ascii=False).encode())
    with pytest.raises(StoreError):
        unpack(b"\x09garbage")


def test_concurrent_writers_in_threads(tmp_path):
    st = SqliteStore(tmp_path / "l.sqlite")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(40):
                x = Listing(marketplace="shopee", item_id=str(i % 10), title=f"พัดลม {n} {i}", price=float(i))
                st.ingest(x, None, T0)
                st.search(SearchQuery(text="พัดลม", limit=5))
        except BaseException as e:
            errors.append(e)

    ts = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and st.counts()["listings"] == 10
    assert st.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# ---- facet counts kept by triggers (the review queue's totals and facets) ---------------------------
QUEUE_SHAPES = [
    SearchQuery(flagged_only=True, review_status="new", order="risk", limit=50),
    SearchQuery(flagged_only=True, order="risk", limit=0),
    SearchQuery(flagged_only=True, review_status="confirmed", limit=10),
    SearchQuery(flagged_only=True, marketplace="lazada", verdict="unlicensed", limit=5, offset=3),
    SearchQuery(tis="2432", limit=5),
    SearchQuery(status="delisted", order="recent", limit=5),
    SearchQuery(marketplace="shop", order="price", limit=5),
    SearchQuery(limit=0),
]


def _answers(st: SqliteStore, counted: bool) -> list:
    st.use_facet_counts = counted
    out = []
    for q in QUEUE_SHAPES:
        r = st.search(q)
        out.append((r.total, r.facets, [h["key"] for h in r.hits]))
    st.use_facet_counts = True
    return out


def test_facet_counts_agree_with_counting_the_listings(tmp_path):
    """Totals and facets from the trigger-kept table equal those counted from the listings, through
    ingestion, verdict changes, review decisions, delisting, a load from a dump, and a database whose
    table is missing (rebuilt on open)."""
    from sandbox.history import simulate
    from sandbox.world import build_world

    w = build_world(seed=5, n_licences=400, n_listings=80)
    events = list(simulate(w, 320, seed=3))
    st = SqliteStore(tmp_path / "a.sqlite")
    for i, e in enumerate(events):
        if e.kind == "ingest":
            st.ingest(e.listing, e.verdict, e.at)
        else:
            st.delist(e.key, e.at)
        if i == len(events) // 2:
            assert _answers(st, True) == _answers(st, False)
    flagged = st.search(SearchQuery(flagged_only=True, limit=20, facets=False)).hits
    assert len(flagged) >= 10
    for h, status in zip(flagged, ["confirmed", "dismissed", "escalated", "taken_down", "confirmed", "new"], strict=False):
        st.set_review_status(h["key"], status)
    for h in flagged[4:10]:
        st.delist(h["key"], events[-1].at)
    assert st.counts()["delisted"] >= 6
    expected = _answers(st, False)
    assert _answers(st, True) == expected
    assert any(t for t, _, _ in expected[2:4]), "the shapes must find something"
    b = SqliteStore(tmp_path / "b.sqlite")
    b.load(st.dump())
    assert _answers(b, True) == expected
    b.load(st.dump())  # idempotent: loading again counts nothing twice
    assert _answers(b, True) == expected
    b.db.execute("DROP TABLE facet_counts")
    b.db.execute("DELETE FROM meta WHERE key='facet_counts'")
    b.close()
    assert _answers(SqliteStore(tmp_path / "b.sqlite"), True) == expected
    st.close()


def test_facet_counts_after_migrating_a_v1_database(tmp_path):
    path = v1_database(tmp_path / "listings.sqlite")
    migrate(path, make_backup=False)
    st = SqliteStore(path)
    assert _answers(st, True) == _answers(st, False)
    assert st.search(SearchQuery(limit=0)).total == 36


def test_the_queue_reads_its_page_from_the_partial_index(tmp_path):
    """The queue's page (flagged, by risk) walks listings_flagged_risk instead of sorting every flagged
    listing: its WHERE must be exactly the flagged_only condition search() writes."""
    from listings.sqlite_store import _FLAGGED_SQL

    st = SqliteStore(tmp_path / "l.sqlite")
    sql = st.db.execute("SELECT sql FROM sqlite_master WHERE name='listings_flagged_risk'").fetchone()[0]
    assert sql.endswith(f"WHERE verdict IN {_FLAGGED_SQL}")
    from matching.verdict import Verdict

    x = Listing(marketplace="shopee", item_id="1", title="ปลั๊กพ่วง 4 ช่อง", price=99.0, seller="ร้าน", seller_id="s1")
    st.ingest(x, Verdict("shopee", "1", "unlicensed", 90, "2432-2555", None, ["no_claim"], registry_version="r1"), T0)
    plans: list[str] = []
    st.db.set_trace_callback(lambda sql: plans.append(" ".join(r[-1] for r in st.db.execute("EXPLAIN QUERY PLAN " + sql)))
                             if sql.startswith("SELECT id FROM") and "ORDER BY" in sql else None)
    st.search(SearchQuery(flagged_only=True, review_status="new", marketplace="shopee", order="risk", limit=50))
    st.db.set_trace_callback(None)
    assert len(plans) == 1 and "listings_flagged_risk" in plans[0] and "TEMP B-TREE" not in plans[0], plans


def _open_at_once(path, barrier, errors):
    barrier.wait()
    try:
        SqliteStore(path).close()
    except Exception as e:  # the test reports what each process met
        errors.put(f"{type(e).__name__}: {e}")


def test_many_processes_opening_a_new_store_at_once_all_get_the_whole_schema(tmp_path):
    """The demo and the scheduler start several crawl processes on a new data directory at once; none may
    mistake another's half-made schema for an old one ("run tiswatch store migrate")."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    for attempt in range(5):
        path = tmp_path / f"new-{attempt}" / "listings.sqlite"
        barrier, errors = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(path, barrier, errors)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        got = []
        while not errors.empty():
            got.append(errors.get())
        assert got == [] and [p.exitcode for p in procs] == [0] * 6
        st = SqliteStore(path)
        assert st.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        st.close()


def _found(store: SqliteStore, text: str) -> list[str]:
    return sorted(h["key"] for h in store.search(SearchQuery(text=text)).hits)


def test_search_index_in_a_batch_reads_its_own_writes_and_commits_with_it(tmp_path, monkeypatch):
    """In a batch the full-text rows are written at the commit (outside each write's SAVEPOINT): this
    connection still finds its uncommitted listings, others find them once committed, a listing seen
    twice is found by its latest text only, and a write that fails leaves no rows behind."""
    path = tmp_path / "s.sqlite"
    store, other = SqliteStore(path), SqliteStore(path)
    try:
        def li(n: int, title: str) -> Listing:
            return Listing(marketplace="shopee", item_id=str(n), title=title, url=f"https://shopee.example/{n}",
                           seller="ร้านหนึ่ง", price=100.0)

        store.begin_batch()
        store.ingest(li(1, "ปลั๊กพ่วง 4 ช่อง"), None, T0)
        store.ingest(li(2, "หม้อหุงข้าว"), None, T0)
        assert _found(store, "ปลั๊กพ่วง") == ["shopee:1"]  # its own uncommitted write
        assert _found(other, "ปลั๊กพ่วง") == []
        store.ingest(li(2, "พัดลมตั้งพื้น"), None, T0.replace(hour=5))  # the same listing, a new title
        real = SqliteStore._write_plan

        def fail_after(self, *a, **kw):
            real(self, *a, **kw)
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(SqliteStore, "_write_plan", fail_after)
        with pytest.raises(sqlite3.OperationalError):
            store.ingest(li(3, "เตารีดไอน้ำ"), None, T0)
        monkeypatch.undo()
        store.ingest(li(1, "ปลั๊กพ่วง 4 ช่อง"), None, T0.replace(hour=6))  # seen again unchanged: no index rows
        store.commit_batch()
        assert store.db.execute("SELECT count(*) FROM search_words").fetchone()[0] == 2  # none of the failed write
        for s in (store, other):
            assert _found(s, "ปลั๊กพ่วง") == ["shopee:1"]
            assert _found(s, "พัดลม") == ["shopee:2"] and _found(s, "หม้อหุงข้าว") == []
            assert _found(s, "เตารีด") == [] and s.get("shopee:3") is None
        store.end_batch()
        store.ingest(li(4, "เตารีดไอน้ำ"), None, T0)  # out of a batch: at once
        assert _found(other, "เตารีด") == ["shopee:4"]
    finally:
        store.close()
        other.close()


def test_a_database_whose_words_were_cut_by_an_older_tiswatch_is_cut_again_when_opened(tmp_path, monkeypatch, caplog):
    import logging

    import matching.normalise as N
    from listings.query import WORDS_VERSION

    path = tmp_path / "listings.sqlite"
    monkeypatch.setattr(N, "_RUNS", RUNS_BEFORE_WORDS_V2)
    st = SqliteStore(path)
    x = Listing(marketplace="shopee", item_id="1", title="รางปลั๊ก Haco", description="ปลั๊กพ่วง4ช่อง")
    st.ingest(x, None, T0)
    st.close()
    db = sqlite3.connect(path)
    db.execute("DELETE FROM meta WHERE key='words_version'")  # as a database written before the version was kept
    db.commit()
    db.close()
    monkeypatch.undo()

    with caplog.at_level(logging.INFO, logger="listings.sqlite_store"):
        st = SqliteStore(path)
    assert "1 of 1 listings changed" in caplog.text
    assert [h["key"] for h in st.search(SearchQuery(text="ช่อง")).hits] == [x.key]
    assert tuple(st.db.execute("SELECT value FROM meta WHERE key='words_version'").fetchone()) == (WORDS_VERSION,)
    st.close()

    # at the current version, opening cuts nothing again
    monkeypatch.setattr(SqliteStore, "rebuild_words", lambda self, progress=None: pytest.fail("cut again"))
    SqliteStore(path).close()
