"""`tiswatch search / history / seller / store ...` as an investigator and an operator use them, and
the same store through the JSON API (/api/v1/search, /history, /sellers, /seller-history)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from store_helpers import T0, osmem  # noqa: F401
from typer.testing import CliRunner

import cli
from listings.model import Listing
from listings.store import SearchQuery, open_store
from sandbox.history import simulate

runner = CliRunner()
EVIL = "[red]ปลั๊กพ่วง[/red] <script>alert(1)</script> มอก.2432"


@pytest.fixture(scope="module")
def events():
    from sandbox.world import build_world

    w = build_world(seed=3, n_licences=300, n_listings=40)
    return list(simulate(w, 160, seed=4))


def fill(st, events):
    buf = []
    for e in events:
        if e.kind == "ingest":
            buf.append((e.listing, e.verdict, e.at))
        else:
            st.ingest_many(buf)
            buf = []
            st.delist(e.key, e.at)
    st.ingest_many(buf)
    x = Listing(marketplace="shopee", item_id="evil", title=EVIL, seller="[bold]ร้าน[/bold]", seller_id="s-evil", price=99.0,
                url="https://shopee.co.th/evil-i.1.2")
    st.ingest(x, None, T0)


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    """Tables as wide as they need (under xdist the console would be 80 columns and wrap text)."""
    from rich.console import Console

    import listings.cli as lcli

    monkeypatch.setattr(lcli, "console", Console(width=250))
    monkeypatch.setattr(lcli, "err", Console(width=250, stderr=True))


@pytest.fixture
def tw(tmp_path, monkeypatch, events):
    for k in list(__import__("os").environ):
        if k.startswith("TISWATCH_"):
            monkeypatch.delenv(k)
    home = tmp_path / "home"
    from settings import load_settings

    s = load_settings(home=home, environ={})
    st = open_store(s)
    fill(st, events)
    st.close()

    def run(*args: str, code: int = 0):
        cli.state._settings = None  # the CLI caches its settings per process
        r = runner.invoke(cli.app, ["--home", str(home), *args], catch_exceptions=False)
        assert r.exit_code == code, r.output
        return r

    run.home = home
    run.settings = s
    return run


def js(r):
    return json.loads(r.stdout)


def test_search_prints_and_answers_json(tw):
    d = js(tw("search", "ปลั๊ก พ่วง", "--json"))
    assert d["terms"] == ["ปลั๊ก", "พ่วง"] and d["total"] >= 1
    assert "shopee:evil" in [h["key"] for h in d["hits"]]
    assert all(h["matched"] == d["terms"] for h in d["hits"]) and set(d["facets"]) >= {"marketplace", "verdict", "seller"}
    out = tw("search", "ปลั๊ก", "--limit", "50").stdout
    assert "[red]ปลั๊กพ่วง[/red]" in out  # seller text printed as text, not as markup
    d = js(tw("search", "--marketplace", "lazada", "--order", "price", "--json", "--limit", "5"))
    assert all(h["marketplace"] == "lazada" for h in d["hits"]) and [h["price"] for h in d["hits"]] == sorted(h["price"] for h in d["hits"])
    d = js(tw("search", "--from", "2026-03-05", "--to", "2026-03-06", "--json"))
    assert all(h["last_seen"] >= "2026-03-04T17:00:00+00:00" and h["first_seen"] <= "2026-03-06T17:00:00+00:00" for h in d["hits"])
    tw("search", "x", "--verdict", "bogus", code=2)
    tw("search", "x", "--from", "yesterday", code=2)
    assert js(tw("search", '"; DROP TABLE listings; --', "--json"))["total"] == 0


def test_history_by_key_url_and_item_id(tw, events):
    key = events[0].key
    d = js(tw("history", key, "--json"))
    kinds = [e["kind"] for e in d["timeline"]]
    assert kinds[0] == "listed" and kinds[-1] == "last_seen" and "verdict" in kinds and "view" in kinds
    assert [e["at"] for e in d["timeline"]] == sorted(e["at"] for e in d["timeline"])
    assert len([e for e in d["timeline"] if e["kind"] == "view"]) == len(d["history"]["observations"])
    out = tw("history", "https://shopee.co.th/evil-i.1.2").stdout
    assert "[red]ปลั๊กพ่วง[/red]" in out and "first seen" in out
    assert "evil" in tw("history", "evil").stdout
    tw("history", "shopee:nope", code=1)


def test_seller_profiles_and_timeline(tw, events):
    st = open_store(tw.settings)
    g = st.get(events[0].key)
    st.close()
    d = js(tw("seller", f"{g['marketplace']}:{g['seller_id']}", "--json"))
    p = d["profile"]
    assert p["seller_id"] == g["seller_id"] and p["listings"] == len(p["items"]) and d["summary"]["accounts"] == 1
    assert [e["at"] for e in d["timeline"]] == sorted(e["at"] for e in d["timeline"])
    assert {e["kind"] for e in d["timeline"]} >= {"listed", "verdict"}
    out = tw("seller", "s-evil").stdout
    assert "[bold]ร้าน[/bold]" in out
    tw("seller", "nobody-at-all", code=1)


def test_export_import_round_trip(tw, tmp_path):
    out = tmp_path / "dump.jsonl"
    tw("store", "export", "--out", str(out))
    lines = out.read_text("utf-8").splitlines()
    assert json.loads(lines[0])["type"] == "meta" and len(lines) > 40
    other = tmp_path / "other"
    cli.state._settings = None
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines[:5] + ["{not json", '{"type": "listing"}'] + lines[5:]) + "\n", "utf-8")
    r = runner.invoke(cli.app, ["--home", str(other), "store", "import", str(bad)], catch_exceptions=False)
    assert r.exit_code == 0 and "2 bad lines skipped" in " ".join(r.output.split())
    assert f"{bad}:6" in " ".join(r.output.split())
    cli.state._settings = None
    r = runner.invoke(cli.app, ["--home", str(other), "store", "export"], catch_exceptions=False)
    assert r.stdout.splitlines() == lines
    info = js(tw("store", "info", "--json"))
    assert info["backend"] == "sqlite" and info["counts"]["listings"] == 41


def test_migrate_a_v1_home(tmp_path):
    import sqlite3

    home = tmp_path / "v1home"
    home.mkdir()
    db = sqlite3.connect(home / "listings.sqlite")
    db.executescript((Path(__file__).parent / "data" / "listings-v1.sql").read_text("utf-8"))
    db.close()
    cli.state._settings = None
    r = runner.invoke(cli.app, ["--home", str(home), "search", "x"], catch_exceptions=False)
    assert r.exit_code == 2 and "tiswatch store migrate" in " ".join(r.output.split())
    cli.state._settings = None
    r = runner.invoke(cli.app, ["--home", str(home), "store", "migrate"], catch_exceptions=False)
    assert r.exit_code == 0 and "v1 -> v2" in r.output and list(home.glob("listings.sqlite.v1-*.bak"))
    cli.state._settings = None
    r = runner.invoke(cli.app, ["--home", str(home), "search", "--json"], catch_exceptions=False)
    assert r.exit_code == 0 and json.loads(r.stdout)["total"] == 36


def test_prune_evidence_by_policy(tw, events):
    s = tw.settings
    st = open_store(s)
    keys = sorted({e.key for e in events})
    old, new_flagged, decided = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC)
    flagged = [k for k in keys if st.get(k)["verdict"] in ("unlicensed", "mislabeled")]
    plain = [k for k in keys if st.get(k)["verdict"] in ("licensed", "not_controlled")]
    made = {}
    for name, key, at in (("old", plain[0], old), ("flag1", flagged[0], old), ("flag2", flagged[0], new_flagged),
                          ("decided", flagged[1], decided)):
        d = s.evidence_dir / key.replace(":", "/") / at.strftime("%Y%m%dT%H%M%SZ")
        d.mkdir(parents=True)
        (d / "page.html").write_text(name)
        st.add_evidence(key, "html", str((d / "page.html").relative_to(s.home)), "0" * 64, len(name), at)
        made[name] = d
    st.set_review_status(flagged[1], "confirmed")
    st.close()
    r = tw("store", "prune-evidence", "--days", "30", "--dry-run")
    assert "would prune 2" in " ".join(r.output.split()) and all(d.exists() for d in made.values())
    r = tw("store", "prune-evidence", "--days", "30")
    text = " ".join(r.output.split())
    assert "pruned 2" in text and "kept 1: an officer acted on the listing" in text and "kept 1: newest capture of a flagged listing" in text
    assert not made["old"].exists() and not made["flag1"].exists() and made["flag2"].exists() and made["decided"].exists()
    st = open_store(s)
    ev = st.evidence(plain[0])
    assert ev[0]["pruned_at"] and ev[0]["sha256"] == "0" * 64  # the record stays
    st.close()
    assert "nothing pruned" in tw("store", "prune-evidence").output  # retention off by default


def test_prune_observations_by_policy(tw):
    s = tw.settings
    assert "every observation kept" in tw("store", "prune-observations").output  # retention off by default
    st = open_store(s)
    keys = [h["key"] for h in st.search(SearchQuery(limit=1000, facets=False)).hits]
    decided = next(k for k in keys if len(st.history(k)["observations"]) > 1)
    st.set_review_status(decided, "dismissed")
    before = {k: st.history(k) for k in keys}
    st.close()
    n_obs = sum(len(h["observations"]) for h in before.values())
    # every observation of the simulated history is older than a day: all but each listing's newest go
    # (and all of the listing an officer dismissed)
    want = sum(len(h["observations"]) - 1 for k, h in before.items() if k != decided)
    assert want > 0
    r = tw("store", "prune-observations", "--days", "1", "--dry-run")
    assert f"would prune {want:,} observations" in " ".join(r.output.split())
    st = open_store(s)
    assert st.info()["counts"]["observations"] == n_obs
    st.close()
    r = tw("store", "prune-observations", "--days", "1")
    assert f"pruned {want:,} observations" in " ".join(r.output.split())
    st = open_store(s)
    for k, h in before.items():
        after = st.history(k)
        assert after["observations"] == (h["observations"] if k == decided else h["observations"][-1:])
        assert (after["changes"], after["verdicts"]) == (h["changes"], h["verdicts"])
    st.close()


@pytest.mark.server
def test_reindex_to_a_cluster_and_back(tw, osmem, tmp_path):  # noqa: F811
    clone = osmem.clone()
    try:
        r = tw("store", "reindex", "--to", "es", "--es-url", clone.url, "--prefix", "twcli")
        assert "copied 41 listings" in " ".join(r.output.split())
        tw("store", "reindex", "--to", "es", "--es-url", clone.url, "--prefix", "twcli", code=2)  # not empty: refused
        back = tmp_path / "back.sqlite"
        r = tw("store", "reindex", "--to", "sqlite", "--es-url", clone.url, "--prefix", "twcli", "--sqlite", str(back))
        assert "copied 41 listings" in " ".join(r.output.split())
        from listings.sqlite_store import SqliteStore

        a, b = SqliteStore(tw.home / "listings.sqlite"), SqliteStore(back)
        assert [{k: v for k, v in x.items() if k != "backend"} for x in a.dump()] == \
            [{k: v for k, v in x.items() if k != "backend"} for x in b.dump()]
        a.close()
        b.close()
    finally:
        clone.close()


# ---- the JSON API ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api(tmp_path_factory, events):
    from review.app import create_app
    from review.db import open_appdb
    from settings import load_settings

    s = load_settings(home=tmp_path_factory.mktemp("lapi") / "home", environ={})
    s.ensure_home()
    st = open_store(s)
    fill(st, events)
    st.close()
    db = open_appdb(s)
    db.add_user("inv", "investig-pass-1", "investigator")
    db.add_user("part", "partner-pass-1", "partner_admin")
    db.close()
    app = create_app(s)

    def login(name, pw):
        c = TestClient(app)
        tok = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        c.post("/login", data={"username": name, "password": pw, "csrf": tok, "next": "/"}, follow_redirects=False)
        return c

    return app, login("inv", "investig-pass-1"), login("part", "partner-pass-1")


PATHS = ["/api/v1/search?q=x", "/api/v1/history/shopee:evil", "/api/v1/sellers?q=s", "/api/v1/seller-history/shopee/s-evil"]


@pytest.mark.parametrize("path", PATHS)
def test_api_needs_an_officer_or_investigator(api, path):
    app, inv, part = api
    assert TestClient(app).get(path).status_code == 401
    assert part.get(path).status_code == 403
    assert inv.get(path).status_code == 200


def test_api_search_history_sellers(api, events):
    _, c, _ = api
    d = c.get("/api/v1/search", params={"q": "ปลั๊ก พ่วง"}).json()
    assert d["terms"] == ["ปลั๊ก", "พ่วง"] and any(h["key"] == "shopee:evil" for h in d["hits"])
    hit = next(h for h in d["hits"] if h["key"] == "shopee:evil")
    assert hit["why"][0]["field"] == "title" and hit["title"] == EVIL
    assert all(isinstance(v, list) and all(len(p) == 2 for p in v) for v in d["facets"].values())
    d = c.get("/api/v1/search", params={"verdict": "unlicensed", "order": "risk", "limit": 3, "facets": "false"}).json()
    assert d["facets"] == {} and all(h["verdict"] == "unlicensed" for h in d["hits"])
    for bad in ({"verdict": "x"}, {"order": "x"}, {"from": "soon"}, {"status": "gone"}, {"review_status": "x"}, {"limit": 9999}):
        assert c.get("/api/v1/search", params=bad).status_code in (400, 422), bad
    assert c.get("/api/v1/search", params={"q": "title:* OR 1=1"}).json()["total"] == 0
    h = c.get(f"/api/v1/history/{events[0].key}").json()
    assert h["listing"]["key"] == events[0].key and h["timeline"][0]["kind"] == "listed"
    assert c.get("/api/v1/history/shopee:nope").status_code == 404
    s = c.get("/api/v1/sellers", params={"q": "s-evil"}).json()
    assert [a["seller_id"] for a in s["accounts"]] == ["s-evil"] and s["summary"]["listings"] == 1
    t = c.get("/api/v1/seller-history/shopee/s-evil").json()
    assert t["seller"]["listings"] == 1 and t["timeline"][0]["kind"] == "listed"
    assert c.get("/api/v1/seller-history/shopee/nobody").status_code == 404


def test_the_retention_job_prunes_observations(tmp_path):
    """The scheduler's retention job applies [store] observation_retention_days (ops/jobs.py calls
    listings.retention.run_observation_retention)."""
    from ops.jobs import JobContext, run
    from settings import load_settings

    s = load_settings(home=tmp_path / "home", environ={}, store={"observation_retention_days": 30})
    s.ensure_home()
    st = open_store(s)
    for i, p in enumerate([100.0, 110.0, 120.0]):
        x = Listing(marketplace="lazada", item_id="7", title="พัดลม", price=p)
        st.ingest(x, None, datetime(2026, 1, 1 + i, tzinfo=UTC))
    st.close()
    ctx = JobContext(s)
    out = run(ctx, "retention")
    ctx.close()
    assert out.status == "ok" and out.result["observations_pruned"] == 2, out
    st = open_store(s)
    assert [o["data"]["price"] for o in st.history("lazada:7")["observations"]] == [120.0]
    st.close()


def test_store_rebuild_words(tw):
    import sqlite3

    db = sqlite3.connect(tw.home / "listings.sqlite")
    (n,) = db.execute("SELECT count(*) FROM listings").fetchone()
    db.execute("UPDATE search_words SET words = 'x' WHERE rowid = (SELECT min(rowid) FROM search_words)")  # one row spoilt
    db.commit()
    db.close()
    out = " ".join(tw("store", "rebuild-words").stdout.split())
    assert f"{n:,} listings read, 1 with new words" in out
    assert "0 with new words" in " ".join(tw("store", "rebuild-words").stdout.split())
