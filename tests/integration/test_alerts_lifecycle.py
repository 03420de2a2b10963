"""An alert's life after it opens: the listing is delisted (resolved) and listed again (re-opened), an
officer escalates it to ETDA or to the platform (who is alerted), an older alerts.sqlite is migrated in
place, and webhook secrets are encrypted at rest under a key kept outside the database."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta

import pytest
from alerts_helpers import Receiver, decide, ingest, listing, verdict

from alerts.clock import FakeClock, run_async
from alerts.delivery import AlertWorker
from alerts.notify import WebhookNotifier
from alerts.rules import Filters
from alerts.secretbox import SecretsKeyError
from alerts.service import open_service
from alerts.store import SCHEMA, PartnerError


@pytest.fixture
def home(home):
    home.alerts.webhook_allow_networks = ["127.0.0.1/32"]  # the receivers are on this machine
    return home


@pytest.fixture
def svc(home):
    s = open_service(home, clock=FakeClock(datetime(2026, 11, 23, 3, 0, tzinfo=UTC)))
    yield s
    s.close()


def feed(svc, pid, after=0):
    rows, _, _ = svc.store.feed(pid, after, 10_000)
    return [svc.publisher.message(r) for r in rows]


def kinds(msgs):
    return [(m.type, m.data.listing.key) for m in msgs]


def drain(svc):
    worker = AlertWorker(svc.store, svc.publisher, WebhookNotifier(2.0, svc.clock, policy=svc.store.policy),
                         engine=svc.engine, clock=svc.clock, poll=0.05)

    async def go():
        try:
            return await worker.drain()
        finally:
            await worker.notifier.aclose()

    return run_async(go)


def delist(svc, key, at):
    """What a complete crawl that no longer finds a listing does (crawlers/middlewares.py)."""
    mp = key.split(":")[0]
    svc.listings.delist(key, at)
    svc.events.append("delisted", key, {"marketplace": mp, "last_seen": (at - timedelta(hours=6)).isoformat()}, at=at)


# ---- 1. delisted listings -------------------------------------------------------------------------------
@pytest.mark.server
def test_a_delisted_listing_resolves_its_alerts_and_relisting_reopens_them(svc, world_registry):
    clock = svc.clock
    with Receiver(now=clock.now) as rx:
        c = svc.store.add_partner("etda", "ETDA", clock.now(), webhook_url=rx.url, filters=Filters(min_risk=0))
        rx.secret = c.webhook_secret
        svc.store.add_partner("shopee", "Shopee", clock.now(), filters=Filters(confirmed_only=True))
        for i in (1, 2):
            ingest(svc.listings, svc.events, listing(i, "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง"), world_registry)
        decide(svc.events, "shopee:1", "confirmed")
        drain(svc)
        opened = {m.data.listing.key: m.data.alert_id for m in feed(svc, "etda")}
        assert set(opened) == {"shopee:1", "shopee:2"} and kinds(feed(svc, "shopee")) == [("alert.opened", "shopee:1")]

        gone_at = clock.advance(hours=2)
        delist(svc, "shopee:1", gone_at)
        drain(svc)
        for pid in ("etda", "shopee"):  # every partner holding an open alert on it is told
            last = feed(svc, pid)[-1]
            assert (last.type, last.data.listing.key, last.data.state) == ("alert.resolved", "shopee:1", "resolved")
            assert last.data.alert_id == svc.store.alerts_for_listing("shopee:1")[0 if pid == "etda" else 1]["id"]
            assert last.data.resolution.reason == "delisted" and "no longer on the marketplace" in last.data.resolution.en
            assert last.data.resolution.at == "2026-11-23T05:00:00.000000Z" and last.data.retraction is None
        pushed = [json.loads(r.body) for r in rx.processed.values()]
        assert [(m["type"], m["data"]["listing"]["key"]) for m in pushed][-1] == ("alert.resolved", "shopee:1")
        assert pushed[-1]["data"]["alert_id"] == opened["shopee:1"]  # the same alert, closed
        assert svc.store.alert(opened["shopee:1"])["state"] == "resolved"
        assert {a["key"] for a in svc.store.open_alerts("etda")} == {"shopee:2"}

        # while it is gone, a re-check changes its risk: nothing is sent about a listing that is not there
        verdict(svc.events, "shopee:1", "unlicensed", 92, source="registry")
        assert svc.engine.process().messages == 0

        clock.advance(hours=30)
        svc.events.append("relisted", "shopee:1", {"marketplace": "shopee"})
        drain(svc)
        back = feed(svc, "etda")[-1]
        assert (back.type, back.data.state, back.data.alert_id) == ("alert.reopened", "open", opened["shopee:1"])
        assert back.data.verdict == "unlicensed" and back.data.risk == 92 and back.data.resolution is None
        # the re-check made a new verdict, so the officer's confirmation no longer stands: the
        # confirmed-only partner's alert stays resolved, and nothing re-opens for it
        assert feed(svc, "shopee")[-1].type == "alert.resolved"
        assert [json.loads(r.body)["type"] for r in rx.processed.values()][-1] == "alert.reopened"
        assert not rx.bad_signatures
        # the feed filter knows the new types
        rows, _, _ = svc.store.feed("etda", 0, 100, mtype="alert.resolved")
        assert [r["key"] for r in rows] == ["shopee:1"]
    assert svc.store.pending_count() == 0


def test_feed_formats_carry_the_resolution(svc, world_registry):
    from alerts.feeds import to_atom, to_csv

    svc.store.add_partner("etda", "ETDA", svc.clock.now(), filters=Filters(min_risk=0))
    ingest(svc.listings, svc.events, listing(5, "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง"), world_registry)
    svc.engine.process_all()
    delist(svc, "shopee:5", svc.clock.advance(hours=1))
    svc.engine.process_all()
    msgs = feed(svc, "etda")
    lines = to_csv(msgs).splitlines()
    assert lines[0].endswith(",retraction,resolution") and lines[-1].endswith(",,delisted")
    assert "Resolved: the listing is no longer on the marketplace" in to_atom(
        msgs, feed_id="x", title="t", self_url="http://x", next_url=None, updated="now")


# ---- 2. escalation targets ---------------------------------------------------------------------------------
def test_escalations_reach_their_target_partners(svc, home, world_registry):
    """Decisions made through the review app's own Decider (the real `decision` event data, with its
    target)."""
    from review.db import open_appdb
    from review.decisions import Decider

    s = svc.store
    now = svc.clock.now()
    s.add_partner("etda", "ETDA", now, kind="etda", filters=Filters(marketplaces=("lazada",), confirmed_only=True))
    s.add_partner("shopee", "Shopee", now, kind="platform", operates=("shopee",), filters=Filters(confirmed_only=True,
                                                                                                    standards=("166",)))
    s.add_partner("lazada", "Lazada", now, kind="platform", operates=("lazada",), filters=Filters(confirmed_only=True))
    s.add_partner("ngo", "Consumer group", now, filters=Filters(confirmed_only=True))  # kind "other"
    for i in (1, 2):
        ingest(svc.listings, svc.events, listing(i, "ปลั๊กพ่วง มอก.2432-2555 4 ช่อง"), world_registry)
    svc.engine.process_all()
    appdb = open_appdb(home)
    officer = appdb.add_user("somchai", "a-long-password-1", "officer")
    decider = Decider(svc.listings, appdb, svc.events)

    def step():
        before = {p: len(feed(svc, p)) for p in ("etda", "shopee", "lazada", "ngo")}
        svc.engine.process_all()
        return {p: [(m.type, m.data.listing.key, m.data.basis) for m in feed(svc, p)[before[p]:]]
                for p in before if len(feed(svc, p)) > before[p]}

    decider.decide("shopee:1", "escalate", officer, target="platform", note="ร้านนี้ขายซ้ำ")
    assert step() == {
        "shopee": [("alert.opened", "shopee:1", "escalated")],  # its filters (standard 166) do not matter
        "ngo": [("alert.opened", "shopee:1", "confirmed")],  # for the others, an escalation is a confirmation
    }  # ETDA's filters (lazada only) keep it out; Lazada does not operate shopee
    decider.decide("shopee:1", "reopen", officer)
    assert step() == {"shopee": [("alert.retracted", "shopee:1", "escalated")],
                      "ngo": [("alert.retracted", "shopee:1", "confirmed")]}
    decider.decide("shopee:1", "escalate", officer, target="etda")
    assert step() == {"etda": [("alert.opened", "shopee:1", "escalated")],  # outside its filters, sent to it
                      "ngo": [("alert.opened", "shopee:1", "confirmed")]}  # shopee: standard 166 only
    decider.decide("shopee:1", "taken_down", officer)
    assert step() == {}  # taken down after the escalation: still ETDA's, nothing changed for anyone

    decider.decide("shopee:2", "confirm", officer)  # a plain confirmation: as before, no target
    decider.decide("shopee:2", "escalate", officer, target="etda")
    assert step() == {"ngo": [("alert.opened", "shopee:2", "confirmed")],
                      "etda": [("alert.opened", "shopee:2", "escalated")]}
    text = json.dumps([m.model_dump() for p in ("etda", "ngo") for m in feed(svc, p)], ensure_ascii=False)
    assert "ร้านนี้ขายซ้ำ" not in text and "somchai" not in text and '"target"' not in text
    appdb.close()


def test_partner_kinds_are_validated_and_changed(svc):
    now = svc.clock.now()
    with pytest.raises(PartnerError, match="platform partner needs the marketplaces"):
        svc.store.add_partner("shopee", "Shopee", now, kind="platform")
    with pytest.raises(PartnerError, match="only a platform partner operates"):
        svc.store.add_partner("etda", "ETDA", now, kind="etda", operates=("shopee",))
    with pytest.raises(PartnerError, match="partner kind 'police'"):
        svc.store.add_partner("xy", "X", now, kind="police")
    p = svc.store.add_partner("shopee", "Shopee", now, kind="platform", operates=("Shopee", "shopee-mall")).partner
    assert (p.kind, p.operates) == ("platform", ("shopee", "shopee-mall"))
    q, _ = svc.store.update_partner("shopee", now, kind="other")
    assert (q.kind, q.operates) == ("other", ())


# ---- 3. migrating an alerts.sqlite of the first version -------------------------------------------------------------
@pytest.mark.server
def test_an_alerts_database_of_the_first_version_is_migrated_in_place(home, world_registry):
    """A v1 database (partners without kind, webhook secrets in plain text, an open alert on a listing the
    crawl delisted) keeps working: same API key, same webhook secret, the alert resolved once."""
    from alerts.signing import new_api_key, new_webhook_secret

    path = home.home / "alerts.sqlite"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)  # the v1 tables: AlertStore._migrate adds what v2 needs
    key, secret = new_api_key(), new_webhook_secret()
    with Receiver() as rx:
        db.execute("INSERT INTO partners(id, name, created_at, updated_at, enabled, scopes, filters, webhook_url, email,"
                   " digest, concurrency) VALUES ('etda','ETDA','2026-01-01T00:00:00.000000Z','2026-01-01T00:00:00.000000Z',"
                   "1, ?, ?, ?, NULL, 0, 4)", (json.dumps(["alerts:read", "alerts:feedback"]),
                                                json.dumps(Filters(min_risk=0).to_json()), rx.url))
        db.execute("INSERT INTO api_keys(key_id, partner_id, hash, created_at) VALUES (?, 'etda', ?, '2026-01-01')",
                   (key.key_id, key.hash))
        db.execute("INSERT INTO webhook_secrets(partner_id, secret, created_at) VALUES ('etda', ?, '2026-01-01')", (secret,))
        facts = {"marketplace": "shopee", "verdict": "unlicensed", "risk": 90, "tis_no": "2432-2555", "licence_no": None,
                 "reasons": ["no_claim"], "decision": None, "status": "delisted"}
        db.execute("INSERT INTO facts VALUES ('shopee:7', ?, '2026-01-02')", (json.dumps(facts),))
        db.execute("INSERT INTO alerts(id, partner_id, key, state, basis, public_state, opened_at, updated_at) VALUES"
                   " ('al_old', 'etda', 'shopee:7', 'open', 'automatic', ?, '2026-01-01', '2026-01-01')",
                   (json.dumps(["automatic", "unlicensed", 90, "2432-2555", None, ["no_claim"]]),))
        db.commit()
        db.close()

        clock = FakeClock(datetime.now(UTC))
        svc = open_service(home, clock=clock)
        p = svc.store.partner("etda")
        assert (p.kind, p.operates, p.webhook_url) == ("other", (), rx.url)
        assert svc.store.authenticate(key.plain, clock.now()).id == "etda"  # the partner's key still works
        raw = sqlite3.connect(path).execute("SELECT secret FROM webhook_secrets").fetchall()
        assert len(raw) == 1 and raw[0][0].startswith("enc:v1:") and secret not in raw[0][0]
        assert svc.store.webhook_secrets("etda", clock.now()) == [secret]
        rx.secret = secret  # the partner verifies with the secret it always had
        drain(svc)
        got = [json.loads(r.body) for r in rx.processed.values()]
        assert [(m["type"], m["data"]["alert_id"]) for m in got] == [("alert.resolved", "al_old")]
        assert not rx.bad_signatures
        svc.close()
        svc = open_service(home, clock=clock)  # opening again changes nothing more
        assert svc.engine.process_all().messages == 0 and svc.store.webhook_secrets("etda", clock.now()) == [secret]
        svc.close()


def test_a_v2_database_gets_the_queue_index_and_partner_changes_are_seen_by_every_connection(home):
    """v3: the delivery queue's index replaces v2's, and a change to a partner by anyone (another process,
    plain SQL) reaches a delivery worker that keeps the partner in memory (AlertStore.partner_fresh)."""
    from alerts.store import AlertStore

    path = home.home / "alerts.sqlite"
    st = AlertStore(path)
    st.add_partner("etda", "ETDA", datetime.now(UTC))
    st.db.execute("CREATE INDEX deliveries_due ON deliveries(partner_id, state, next_at)")  # as v2 left it
    st.db.execute("DROP INDEX deliveries_queue")
    st.db.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    st.db.execute("DELETE FROM meta WHERE key='partners_version'")
    st.close()
    worker, admin = AlertStore(path), AlertStore(path)
    indexes = {r[0] for r in worker.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "deliveries_queue" in indexes and "deliveries_due" not in indexes
    plan = " ".join(str(r[-1]) for r in worker.db.execute(
        "EXPLAIN QUERY PLAN SELECT message_id FROM deliveries INDEXED BY deliveries_queue WHERE partner_id='etda'"
        " AND state='pending' ORDER BY message_id LIMIT 16"))
    assert "deliveries_queue" in plan and "TEMP B-TREE" not in plan  # walked in order, never sorted
    assert worker.partner_fresh("etda").enabled and worker.partner_fresh("etda").concurrency == 4
    admin.update_partner("etda", datetime.now(UTC), enabled=False)  # the administrator, elsewhere
    assert not worker.partner_fresh("etda").enabled
    admin.db.execute("UPDATE partners SET enabled=1, concurrency=9")  # even by hand
    assert worker.partner_fresh("etda").enabled and worker.partner_fresh("etda").concurrency == 9
    worker.partner_failed("etda", 3, None)  # and by the worker itself
    assert worker.partner_fresh("etda").failures == 3
    assert worker.partner_fresh("nobody") is None
    worker.close()
    admin.close()


# ---- 6. webhook secrets at rest -----------------------------------------------------------------------------------
@pytest.mark.server
def test_webhook_secrets_are_encrypted_under_a_key_outside_the_database(home, world_registry):
    clock = FakeClock(datetime.now(UTC))
    svc = open_service(home, clock=clock)
    with Receiver(now=clock.now) as rx:
        c = svc.store.add_partner("etda", "ETDA", clock.now(), webhook_url=rx.url)
        rx.secret = c.webhook_secret
        raw = (home.home / "alerts.sqlite").read_bytes() + (home.home / "alerts.sqlite-wal").read_bytes()
        plain = c.webhook_secret.encode()
        assert plain not in raw and plain.split(b"_", 1)[1] not in raw  # not in the database file, nor its WAL
        keyfile = home.home / "alerts.key"
        assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
        verdict(svc.events, "shopee:1", "unlicensed", 90)
        drain(svc)
        assert len(rx.processed) == 1 and not rx.bad_signatures

        # another process holds the old key in memory while the key is rotated: it reads the file again
        other = open_service(home, clock=clock)
        assert other.store.webhook_secrets("etda", clock.now()) == [c.webhook_secret]
        old_key = keyfile.read_text()
        assert svc.store.rotate_encryption_key() == 1
        assert keyfile.read_text() != old_key and stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
        assert other.store.webhook_secrets("etda", clock.now()) == [c.webhook_secret]
        other.close()

        # the wrong key: deliveries wait (nothing lost, nothing sent unsigned) and say why
        good = keyfile.read_text()
        from alerts.secretbox import new_key

        keyfile.write_text(new_key().decode() + "\n")
        svc.close()
        svc = open_service(home, clock=clock)
        with pytest.raises(SecretsKeyError, match="cannot be decrypted with the key file"):
            svc.store.webhook_secrets("etda", clock.now())
        verdict(svc.events, "shopee:2", "unlicensed", 90)
        drain(svc)
        d = svc.store.deliveries("etda", "pending")
        assert len(d) == 1 and "cannot be decrypted with the key file" in d[0]["last_error"] and len(rx.processed) == 1
        keyfile.write_text(good)  # restored from the backup
        svc.store.box.reset()
        clock.advance(minutes=5)
        svc.store.partner_recovered("etda", clock.now())
        drain(svc)
        assert len(rx.processed) == 2 and not rx.bad_signatures
        # a lost key: the data directory cannot invent one for secrets it cannot read …
        keyfile.unlink()
        svc.store.box.reset()
        with pytest.raises(SecretsKeyError, match=r"missing or empty.*restore the key from the backup.*--lost"):
            svc.store.webhook_secrets("etda", clock.now())
        with pytest.raises(SecretsKeyError):
            svc.store.rotate_secret("etda", clock.now())
        assert not keyfile.exists()
        # … the recovery: a new key, a new secret for each webhook partner (handed over once)
        fresh = svc.store.replace_lost_key(clock.now())
        assert list(fresh) == ["etda"] and keyfile.exists() and fresh["etda"] != c.webhook_secret
        assert svc.store.webhook_secrets("etda", clock.now()) == [fresh["etda"]]
        assert svc.store.replace_lost_key(clock.now()) == {}  # nothing more to do
        rx.secret = fresh["etda"]
        verdict(svc.events, "shopee:3", "unlicensed", 90)
        drain(svc)
        assert len(rx.processed) == 3 and not rx.bad_signatures
    svc.close()


def test_the_key_can_come_from_the_configuration(home):
    from alerts.secretbox import new_key

    k1, k2 = new_key().decode(), new_key().decode()
    home.alerts.secrets_key = k1
    svc = open_service(home, clock=FakeClock())
    c = svc.store.add_partner("etda", "ETDA", svc.clock.now(), webhook_url="https://hooks.etda.example/tw")
    assert not (home.home / "alerts.key").exists()  # nothing written into the data directory
    with pytest.raises(SecretsKeyError, match="put a new key first in it"):
        svc.store.rotate_encryption_key()
    svc.close()
    home.alerts.secrets_key = f"{k2},{k1}"  # rotation by configuration: the new key first, the old one after
    svc = open_service(home, clock=FakeClock())
    assert svc.store.webhook_secrets("etda", svc.clock.now()) == [c.webhook_secret]
    assert svc.store.reencrypt_secrets() == 1
    svc.close()
    home.alerts.secrets_key = k2  # the old key removed
    svc = open_service(home, clock=FakeClock())
    assert svc.store.webhook_secrets("etda", svc.clock.now()) == [c.webhook_secret]
    svc.close()
    home.alerts.secrets_key = "not-a-key"
    svc = open_service(home, clock=FakeClock())
    with pytest.raises(SecretsKeyError, match=r"\[alerts\] secrets_key: entry 1 is not a Fernet key"):
        svc.store.webhook_secrets("etda", svc.clock.now())
    svc.close()


def test_kinds_and_key_rotation_from_the_command_line(tmp_path):
    import re

    from typer.testing import CliRunner

    import alerts.cli
    import cli

    home = tmp_path / "home"

    def run(*args):
        cli.state._settings = None
        alerts.cli.console.width = 250
        return CliRunner().invoke(cli.app, ["--home", str(home), "partners", *args],
                                  env={"TISWATCH_CONFIG": "", "COLUMNS": "250"})

    r = run("add", "shopee", "--kind", "platform", "--webhook", "https://hooks.shopee.example/tw")
    assert r.exit_code == 2 and "needs the marketplaces it operates" in r.output
    r = run("add", "shopee", "--kind", "platform", "--operates", "shopee", "--webhook", "https://hooks.shopee.example/tw")
    assert r.exit_code == 0, r.output
    secret = re.search(r"(whsec_\S+)", r.output).group(1)
    r = run("add", "etda", "--kind", "etda", "--webhook", "https://127.0.0.1/hook")
    assert r.exit_code == 2 and "'https://127.0.0.1/hook' refused: 127.0.0.1 is a loopback address" in r.output
    assert run("add", "etda", "--kind", "etda").exit_code == 0
    r = run("list")
    assert "platform (shopee)" in r.output and "etda" in r.output
    assert json.loads(run("show", "shopee").output)["operates"] == ["shopee"]
    r = run("set", "shopee", "--operates", "shopee", "--operates", "shopee-mall")
    assert r.exit_code == 0 and json.loads(run("show", "shopee").output)["operates"] == ["shopee", "shopee-mall"]
    for cmd in (["show", "lazada"], ["set", "lazada", "--name", "x"], ["rotate-key", "lazada"], ["disable", "lazada"]):
        r = run(*cmd)  # an unknown partner: its name and exit code 2, no traceback
        assert r.exit_code == 2 and "lazada" in r.output and "Traceback" not in r.output, (cmd, r.output)
    before = (home / "alerts.key").read_text()
    r = run("rotate-encryption-key")
    assert r.exit_code == 0 and "1 webhook secrets encrypted again" in r.output, r.output
    assert (home / "alerts.key").read_text() != before
    from settings import load_settings

    svc = open_service(load_settings(home=home, environ={}))
    assert svc.store.webhook_secrets("shopee", datetime.now(UTC)) == [secret]
    svc.close()
    (home / "alerts.key").unlink()
    r = run("rotate-encryption-key")
    assert r.exit_code == 2 and "--lost" in r.output
    r = run("rotate-encryption-key", "--lost")
    assert r.exit_code == 0 and re.search(r"shopee: whsec_\S+", r.output), r.output
