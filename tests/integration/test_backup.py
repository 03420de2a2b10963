"""Backup of a data directory while it is written to, and restore with checks."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from listings.events import open_events
from listings.model import Listing
from listings.store import open_store
from matching.verdict import Verdict
from ops.backup import BackupError, make_backup, restore_backup
from ops.locks import FileLock, service_lock_path

T = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _listing(i: int) -> Listing:
    return Listing(marketplace="lazada", item_id=str(i), title=f"พาวเวอร์แบงค์ รุ่น {i}", url=f"http://x/{i}",
                   observed_at=T + timedelta(minutes=i))


@pytest.fixture
def data_home(home, world):
    from registry.store import RegistryStore, bulk

    rs = RegistryStore(home.registry_db)
    rs.import_licences(bulk(world.licences[:50]))
    rs.close()
    store = open_store(home)
    for i in range(40):
        store.ingest(_listing(i), Verdict("lazada", str(i), "unlicensed", 70))
    ev = home.evidence_dir / "lazada" / "1" / "20261120T100000"
    ev.mkdir(parents=True)
    (ev / "page.html").write_text("<html>หลักฐาน</html>", "utf-8")
    store.add_evidence("lazada:1", "html", str((ev / "page.html").relative_to(home.home)), "0" * 64, 30, T)
    store.close()
    (home.crawl_dir / "lazada" / "job").mkdir(parents=True)
    (home.crawl_dir / "lazada" / "job" / "requests.queue").write_text("interrupted crawl state")
    (home.log_dir / "crawl-lazada.log").write_text("log")
    return home


def _count(db, table="listings"):
    c = sqlite3.connect(db)
    try:
        return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        c.close()


def test_backup_while_writing_then_restore(data_home, tmp_path):
    home = data_home
    store = open_store(home)
    events = open_events(home)
    stop = threading.Event()
    written = []

    def writer():
        i = 1000
        while not stop.is_set():
            r = store.ingest(_listing(i), Verdict("lazada", str(i), "mislabeled", 90))
            events.append("verdict", r.key, {"verdict": "mislabeled"})
            written.append(i)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        dest = tmp_path / "backup"
        m = make_backup(home.home, dest)
    finally:
        stop.set()
        t.join()
    store.close()
    events.close()
    assert written, "the writer never ran"
    assert set(m["databases"]) >= {"listings.sqlite", "registry.sqlite", "events.sqlite"}
    assert "evidence/lazada/1/20261120T100000/page.html" in m["files"]
    assert not any(f.startswith(("logs/", "locks/")) or "/job/" in f or f.endswith(("-wal", "-shm")) for f in m["files"])

    target = tmp_path / "restored"
    restore_backup(dest, target)
    for db in ("listings.sqlite", "registry.sqlite", "events.sqlite"):
        assert sqlite3.connect(target / db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n = _count(target / "listings.sqlite")
    assert 40 <= n <= 40 + len(written)
    # a consistent snapshot: every listing has its observation, and the events are a prefix
    c = sqlite3.connect(target / "listings.sqlite")
    assert c.execute("SELECT count(*) FROM listings WHERE key NOT IN (SELECT key FROM observations)").fetchone()[0] == 0
    assert c.execute("SELECT count(*) FROM listings l WHERE verdict IS NOT NULL AND NOT EXISTS "
                     "(SELECT 1 FROM verdicts v WHERE v.key = l.key)").fetchone()[0] == 0
    r = open_store(home.model_copy(update={"home": target}))
    assert r.get("lazada:1")["title"] == "พาวเวอร์แบงค์ รุ่น 1" and r.evidence("lazada:1")
    r.close()
    assert (target / "evidence" / "lazada" / "1" / "20261120T100000" / "page.html").read_text("utf-8") == "<html>หลักฐาน</html>"
    assert (target / "logs").is_dir() and (target / "crawl").is_dir()


def test_archive_and_tampering(data_home, tmp_path):
    archive = tmp_path / "b.tar.gz"
    make_backup(data_home.home, archive, evidence=False)
    assert archive.is_file()
    with pytest.raises(BackupError, match="already exists"):
        make_backup(data_home.home, archive)
    restore_backup(archive, tmp_path / "r1")
    assert _count(tmp_path / "r1" / "listings.sqlite") == 40 and not (tmp_path / "r1" / "evidence" / "lazada").exists()

    d = tmp_path / "dir"
    make_backup(data_home.home, d)
    (d / "evidence" / "lazada" / "1" / "20261120T100000" / "page.html").write_text("changed")
    with pytest.raises(BackupError, match="does not match the manifest"):
        restore_backup(d, tmp_path / "r2")
    assert not (tmp_path / "r2").exists()
    with pytest.raises(BackupError, match="not a tiswatch backup"):
        restore_backup(tmp_path / "r1", tmp_path / "r3")


def test_restore_refuses_a_used_home_unless_forced_and_keeps_the_old_one(data_home, tmp_path):
    b = tmp_path / "b"
    make_backup(data_home.home, b)
    store = open_store(data_home)
    store.ingest(_listing(500), Verdict("lazada", "500", "licensed", 5))
    store.close()
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(b, data_home.home)
    with FileLock(service_lock_path(data_home.home), what="tiswatch run"), pytest.raises(BackupError, match="stop the service"):
        restore_backup(b, data_home.home, force=True)
    m = restore_backup(b, data_home.home, force=True)
    assert _count(data_home.listings_db) == 40
    kept = m["replaced"]
    assert _count(f"{kept}/listings.sqlite") == 41  # the replaced directory is kept, renamed


def test_cli_backup_and_restore(data_home, tmp_path):
    from cli import app

    runner = CliRunner()
    dest = tmp_path / "snap.tar.gz"
    r = runner.invoke(app, ["--home", str(data_home.home), "backup", str(dest)])
    assert r.exit_code == 0, r.output
    assert "listings.sqlite" in " ".join(r.output.split()) and dest.exists()
    r = runner.invoke(app, ["--home", str(tmp_path / "new"), "restore", str(dest)])
    assert r.exit_code == 0, r.output
    assert _count(tmp_path / "new" / "listings.sqlite") == 40
    r = runner.invoke(app, ["--home", str(tmp_path / "new"), "restore", str(dest)])
    assert r.exit_code == 1 and "not empty" in " ".join(r.output.split())
