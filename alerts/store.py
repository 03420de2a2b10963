"""alerts.sqlite: partners, their keys and webhook secrets, alerts, each partner's feed, deliveries,
attempts, feedback, digests, and the cursor of the listing event log.

Why one SQLite file and these invariants:
- The engine writes the messages it derives from a batch of events *and* moves its event cursor in
  one transaction, so a crash or restart never doubles nor loses an alert.
- A partner's feed is numbered by its own `seq` (1, 2, 3 … per partner), assigned inside the write
  transaction. SQLite has one writer at a time, so a reader never sees seq N+1 before seq N is
  committed: polling with the last seq seen misses nothing and repeats nothing. The numbers reveal
  nothing about other partners.
- A delivery is claimed with a lease before it is sent, so two delivery workers (the scheduler and a
  manual `tiswatch partners deliver`) never send the same message at once.
- Webhook secrets are stored encrypted (alerts/secretbox.py) under a key kept outside this file.
- An older alerts.sqlite is migrated in place when opened (`_migrate`, `meta.schema_version`): new
  columns get defaults that keep every partner working as before, plain webhook secrets are encrypted.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alerts.clock import iso
from alerts.model import DEFAULT_SCOPES, SCOPES
from alerts.netguard import AddressPolicy, BlockedAddress, check_url_now, system_resolve
from alerts.rules import PARTNER_KINDS, Filters, tis_base
from alerts.secretbox import KeySource, SecretBox, is_encrypted
from alerts.signing import key_matches, new_api_key, new_webhook_secret, parse_api_key
from listings.sqlite_util import enable_wal

SCHEMA_VERSION = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS partners (  -- v2 adds kind, operates (AlertStore._migrate)
  id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1, scopes TEXT NOT NULL, filters TEXT NOT NULL,
  webhook_url TEXT, email TEXT, digest INTEGER NOT NULL DEFAULT 0, concurrency INTEGER NOT NULL DEFAULT 4,
  failures INTEGER NOT NULL DEFAULT 0, paused_until TEXT
);
-- v3: any change to a partner counts up meta.partners_version (AlertStore.partner_fresh)
CREATE TRIGGER IF NOT EXISTS partners_version_insert AFTER INSERT ON partners BEGIN
  UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'partners_version'; END;
CREATE TRIGGER IF NOT EXISTS partners_version_update AFTER UPDATE ON partners BEGIN
  UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'partners_version'; END;
CREATE TRIGGER IF NOT EXISTS partners_version_delete AFTER DELETE ON partners BEGIN
  UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'partners_version'; END;
CREATE TABLE IF NOT EXISTS api_keys (
  key_id TEXT PRIMARY KEY, partner_id TEXT NOT NULL REFERENCES partners(id), hash TEXT NOT NULL,
  created_at TEXT NOT NULL, expires_at TEXT, last_used_at TEXT
);
CREATE TABLE IF NOT EXISTS webhook_secrets (
  id INTEGER PRIMARY KEY, partner_id TEXT NOT NULL REFERENCES partners(id), secret TEXT NOT NULL,
  created_at TEXT NOT NULL, expires_at TEXT
);
CREATE TABLE IF NOT EXISTS facts (key TEXT PRIMARY KEY, data TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
  id TEXT PRIMARY KEY, partner_id TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL, basis TEXT,
  public_state TEXT, opened_at TEXT NOT NULL, updated_at TEXT NOT NULL, closed_at TEXT, close_reason TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open ON alerts(partner_id, key) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS alerts_key ON alerts(key);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT, msg_id TEXT NOT NULL UNIQUE, partner_id TEXT NOT NULL,
  seq INTEGER NOT NULL, alert_id TEXT NOT NULL, type TEXT NOT NULL, created_at TEXT NOT NULL,
  key TEXT NOT NULL, marketplace TEXT, verdict TEXT, tis_base TEXT, risk INTEGER, event_id INTEGER,
  payload TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_seq ON messages(partner_id, seq);
CREATE INDEX IF NOT EXISTS messages_alert ON messages(alert_id, id);
CREATE INDEX IF NOT EXISTS messages_time ON messages(partner_id, created_at);
CREATE TABLE IF NOT EXISTS deliveries (
  message_id INTEGER PRIMARY KEY REFERENCES messages(id), partner_id TEXT NOT NULL, alert_id TEXT NOT NULL,
  state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, next_at TEXT NOT NULL,
  lease_until TEXT, first_at TEXT, last_at TEXT, last_status INTEGER, last_error TEXT, delivered_at TEXT,
  dead_at TEXT, body BLOB
);
-- v3: a partner's queue in order, covering the due and lease checks: claiming the next few walks it from
-- the front instead of sorting every due row (v2's deliveries_due(partner_id, state, next_at) did).
CREATE INDEX IF NOT EXISTS deliveries_queue ON deliveries(partner_id, state, message_id, next_at, lease_until);
CREATE INDEX IF NOT EXISTS deliveries_alert ON deliveries(alert_id, state, message_id);
CREATE TABLE IF NOT EXISTS attempts (
  id INTEGER PRIMARY KEY, message_id INTEGER NOT NULL, partner_id TEXT NOT NULL, at TEXT NOT NULL,
  status INTEGER, error TEXT, latency_ms REAL
);
CREATE INDEX IF NOT EXISTS attempts_message ON attempts(message_id, id);
CREATE INDEX IF NOT EXISTS attempts_partner ON attempts(partner_id, id);
CREATE TABLE IF NOT EXISTS feedback (
  id INTEGER PRIMARY KEY, alert_id TEXT NOT NULL, partner_id TEXT NOT NULL, key TEXT NOT NULL,
  status TEXT NOT NULL, reason TEXT, at TEXT NOT NULL, event_id INTEGER, dedupe TEXT UNIQUE,
  verify_state TEXT, verified_at TEXT, verify_detail TEXT
);
CREATE INDEX IF NOT EXISTS feedback_alert ON feedback(alert_id, id);
CREATE INDEX IF NOT EXISTS feedback_key ON feedback(key, id);
CREATE INDEX IF NOT EXISTS feedback_verify ON feedback(verify_state);
CREATE TABLE IF NOT EXISTS digests (recipient TEXT NOT NULL, period TEXT NOT NULL, sent_at TEXT NOT NULL,
  PRIMARY KEY (recipient, period));
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS activity (
  id INTEGER PRIMARY KEY, day TEXT NOT NULL, at TEXT NOT NULL, key TEXT NOT NULL, marketplace TEXT,
  tis_base TEXT, what TEXT NOT NULL, verdict TEXT, risk INTEGER
);
CREATE INDEX IF NOT EXISTS activity_day ON activity(day, what);
"""

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")
_MARKETPLACE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class PartnerError(ValueError):
    """A partner operation that cannot be done; the message says why."""


@dataclass
class Partner:
    id: str
    name: str
    enabled: bool = True
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    filters: Filters = field(default_factory=Filters)
    webhook_url: str | None = None
    email: str | None = None
    digest: bool = False
    concurrency: int = 4
    created_at: str = ""
    failures: int = 0
    paused_until: str | None = None
    kind: str = "other"  # etda, platform or other (alerts/rules.py PARTNER_KINDS): who escalations reach
    operates: tuple[str, ...] = ()  # for a platform: the marketplaces it operates

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> Partner:
        return cls(r["id"], r["name"], bool(r["enabled"]), tuple(json.loads(r["scopes"])),
                   Filters.from_json(json.loads(r["filters"])), r["webhook_url"], r["email"], bool(r["digest"]),
                   r["concurrency"], r["created_at"], r["failures"], r["paused_until"], r["kind"] or "other",
                   tuple(json.loads(r["operates"] or "[]")))

    def public(self) -> dict[str, Any]:
        """Everything an administrator may see of a partner (no key, no secret)."""
        return {"id": self.id, "name": self.name, "enabled": self.enabled, "kind": self.kind,
                "operates": list(self.operates), "scopes": list(self.scopes), "filters": self.filters.to_json(),
                "webhook_url": self.webhook_url, "email": self.email, "digest": self.digest,
                "concurrency": self.concurrency, "created_at": self.created_at, "consecutive_failures": self.failures,
                "paused_until": self.paused_until}


@dataclass
class Created:
    partner: Partner
    api_key: str  # shown once
    webhook_secret: str | None


def validate_webhook_url(url: str, policy: AddressPolicy | None = None, resolve: Any = system_resolve) -> str:
    """An http(s) URL with no credentials whose host is, or resolves to, addresses webhooks may reach
    (alerts/netguard.py: no loopback, private, link-local, multicast or reserved address unless
    `[alerts] webhook_allow_networks` allows it); https, except to such an allowed internal network."""
    from urllib.parse import urlsplit

    policy = policy or AddressPolicy()
    text = url.strip()
    try:
        u = urlsplit(text)
        port = u.port
    except ValueError as e:
        raise PartnerError(f"webhook URL {url!r} is not a valid URL: {e}") from None
    if u.scheme not in ("http", "https") or not u.hostname:
        raise PartnerError(f"webhook URL {url!r} must be an http(s) URL")
    if u.username or u.password:
        raise PartnerError(f"webhook URL {url!r}: put no credentials in it; the signature authenticates us")
    if port == 0:
        raise PartnerError(f"webhook URL {url!r}: port 0 cannot be reached")
    try:
        addresses = check_url_now(text, policy, resolve)
    except BlockedAddress as e:
        raise PartnerError(f"webhook URL {url!r} refused: {e}") from None
    if u.scheme == "http" and not policy.internal_allowed(addresses):
        raise PartnerError(f"webhook URL {url!r} must use https (plain http only to a network allowed by "
                           "[alerts] webhook_allow_networks, such as a local relay)")
    return text


def validate_kind(kind: str, operates: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    if kind not in PARTNER_KINDS:
        raise PartnerError(f"partner kind {kind!r}: one of {', '.join(PARTNER_KINDS)}")
    ops = tuple(dict.fromkeys(m.strip().lower() for m in operates if m.strip()))
    bad = [m for m in ops if not _MARKETPLACE.match(m)]
    if bad:
        raise PartnerError(f"marketplace {bad[0]!r}: lower-case letters, digits, '-' and '_'")
    if kind == "platform" and not ops:
        raise PartnerError("a platform partner needs the marketplaces it operates (e.g. --operates shopee)")
    if kind != "platform" and ops:
        raise PartnerError(f"only a platform partner operates marketplaces (this one is {kind!r}); "
                           "to receive only some marketplaces, use the marketplace filter")
    return kind, ops


def validate_email(addr: str) -> str:
    a = addr.strip()
    if not re.fullmatch(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+", a):
        raise PartnerError(f"{addr!r} is not an e-mail address")
    return a


def _check_partner_fields(scopes: tuple[str, ...], filters: Filters, concurrency: int) -> None:
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise PartnerError(f"unknown scope {bad[0]!r} (one of {', '.join(SCOPES)})")
    problems = filters.validate()
    if problems:
        raise PartnerError("; ".join(problems))
    if not 1 <= concurrency <= 64:
        raise PartnerError("concurrency must be between 1 and 64")


class AlertStore:
    def __init__(self, path: str | Path, *, policy: AddressPolicy | None = None, keys: KeySource | None = None):
        """`policy`: which addresses webhook URLs may reach (default: public ones only); `keys`: where the
        key of the webhook secrets is (default: `alerts.key` beside the database)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.policy = policy or AddressPolicy()
        self.resolve = system_resolve  # DNS at configuration time (tests replace it)
        self._lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        enable_wal(self.db)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self._in_tx = False
        self._seq = {}
        self._partner_cache: dict[str, tuple[Any, Partner | None]] = {}  # partner_fresh
        self.box = SecretBox(keys or KeySource(path=self.path.parent / "alerts.key"), may_create=self._nothing_encrypted)
        with self._lock:
            self.db.executescript(SCHEMA)
            self._migrate()

    def close(self) -> None:
        self.db.close()

    # ---- schema migrations ----------------------------------------------------------------------------
    def _columns(self, table: str) -> set[str]:
        return {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}

    def _migrate(self) -> None:
        """Bring an older alerts.sqlite up to SCHEMA_VERSION in place (each step idempotent, all in one
        transaction, so a crash leaves the old or the new schema, never half)."""
        r = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(r[0]) if r else 1
        plain = self.db.execute("SELECT count(*) FROM webhook_secrets WHERE secret NOT LIKE 'enc:%'").fetchone()[0]
        if version >= SCHEMA_VERSION and not plain:
            return
        with self.tx() as db:
            cols = self._columns("partners")
            if "kind" not in cols:  # v2: who escalations reach; existing partners are "other" (as before)
                db.execute("ALTER TABLE partners ADD COLUMN kind TEXT NOT NULL DEFAULT 'other'")
            if "operates" not in cols:
                db.execute("ALTER TABLE partners ADD COLUMN operates TEXT NOT NULL DEFAULT '[]'")
            if version < 3:  # deliveries_queue (in SCHEMA) replaces it; the partners_version counter starts
                db.execute("DROP INDEX IF EXISTS deliveries_due")
                db.execute("INSERT OR IGNORE INTO meta VALUES ('partners_version', '0')")
            if version < 2 and db.execute("SELECT 1 FROM alerts WHERE state='open' LIMIT 1").fetchone():
                # open alerts of listings delisted before v2 are resolved when the engine reconciles once
                db.execute("INSERT OR IGNORE INTO meta VALUES ('reconcile_all', '1')")
            db.execute("INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                       (str(SCHEMA_VERSION),))
        if plain:
            try:
                self.reencrypt_secrets(only_plain=True)
            except Exception as e:  # a bad key setting must not stop feeds and the app; delivery reports it
                import logging

                logging.getLogger("tiswatch.alerts").error("webhook secrets left unencrypted: %s", e)

    def _nothing_encrypted(self) -> bool:
        return self.db.execute("SELECT 1 FROM webhook_secrets WHERE secret LIKE 'enc:%' LIMIT 1").fetchone() is None

    def reencrypt_secrets(self, only_plain: bool = False) -> int:
        """Encrypt every stored webhook secret again with the current key (`only_plain`: just the plain
        ones of an older installation). Returns how many were written."""
        with self.tx() as db:
            rows = db.execute("SELECT id, secret FROM webhook_secrets").fetchall()
            out = [(self.box.encrypt(self.box.decrypt(r["secret"])), r["id"]) for r in rows
                   if not (only_plain and is_encrypted(r["secret"]))]
            db.executemany("UPDATE webhook_secrets SET secret=? WHERE id=?", out)
        return len(out)

    def rotate_encryption_key(self) -> int:
        """A new key for the webhook secrets (key file only); returns the secrets re-encrypted."""
        return self.box.rotate(lambda box: self.reencrypt_secrets())

    def flag(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM meta WHERE key=?", (name,)).fetchone() is not None

    def replace_lost_key(self, now: datetime) -> dict[str, str]:
        """Recover from a lost secrets key: drop the stored secrets no key can read, and give every webhook
        partner left without a secret a new one (returned once: partner id -> secret, to hand over)."""
        self.box.ensure_key()
        out: dict[str, str] = {}
        with self.tx() as db:
            bad = [r["id"] for r in db.execute("SELECT id, secret FROM webhook_secrets") if not self.box.can_decrypt(r["secret"])]
            db.executemany("DELETE FROM webhook_secrets WHERE id=?", [(i,) for i in bad])
            for r in db.execute("SELECT id FROM partners WHERE webhook_url IS NOT NULL AND NOT EXISTS (SELECT 1 FROM"
                                " webhook_secrets w WHERE w.partner_id=partners.id AND (w.expires_at IS NULL OR"
                                " w.expires_at > ?)) ORDER BY id", (iso(now),)).fetchall():
                out[r["id"]] = new_webhook_secret()
                db.execute("INSERT INTO webhook_secrets(partner_id, secret, created_at) VALUES (?,?,?)",
                           (r["id"], self.box.encrypt(out[r["id"]]), iso(now)))
        return out

    def take_flag(self, name: str) -> bool:
        """Read and clear a one-shot flag of the meta table (e.g. 'reconcile_all' after a migration)."""
        with self.tx() as db:
            return db.execute("DELETE FROM meta WHERE key=?", (name,)).rowcount > 0

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: other writers wait), re-entrant within a thread."""
        with self._lock:
            if self._in_tx:
                yield self.db
                return
            self.db.execute("BEGIN IMMEDIATE")
            self._in_tx = True
            self._seq: dict[str, int] = {}  # each partner's last seq, valid inside this transaction
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            finally:
                self._in_tx = False

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same committed state."""
        with self._lock:
            if self._in_tx:
                yield self.db
                return
            self.db.execute("BEGIN")
            self._in_tx = True
            try:
                yield self.db
            finally:
                self._in_tx = False
                self.db.execute("COMMIT")

    # ---- meta --------------------------------------------------------------------------------------
    def signing_key(self) -> bytes:
        """The key that signs evidence links, made once per data directory."""
        with self.tx() as db:
            r = db.execute("SELECT value FROM meta WHERE key='evidence_key'").fetchone()
            if r:
                return bytes.fromhex(r[0])
            k = secrets.token_bytes(32)
            db.execute("INSERT INTO meta VALUES ('evidence_key', ?)", (k.hex(),))
            return k

    def cursor(self, name: str) -> int:
        r = self.db.execute("SELECT value FROM cursors WHERE name=?", (name,)).fetchone()
        return int(r[0]) if r else 0

    def set_cursor(self, name: str, value: int) -> None:
        with self.tx() as db:
            db.execute("INSERT INTO cursors VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                       (name, value))

    # ---- partners ------------------------------------------------------------------------------------
    def check_webhook_url(self, url: str) -> str:
        return validate_webhook_url(url, self.policy, self.resolve)

    def add_partner(self, pid: str, name: str, now: datetime, *, scopes: tuple[str, ...] = DEFAULT_SCOPES,
                    filters: Filters | None = None, webhook_url: str | None = None, email: str | None = None,
                    digest: bool = False, concurrency: int = 4, kind: str = "other",
                    operates: tuple[str, ...] = ()) -> Created:
        if not _ID.match(pid):
            raise PartnerError(f"partner id {pid!r}: 2-32 characters, lower-case letters, digits and '-'")
        filters = filters or Filters()
        _check_partner_fields(scopes, filters, concurrency)
        kind, operates = validate_kind(kind, operates)
        url = self.check_webhook_url(webhook_url) if webhook_url else None
        mail = validate_email(email) if email else None
        key = new_api_key()
        whsec = new_webhook_secret() if url else None
        stored = self.box.encrypt(whsec) if whsec else None
        with self.tx() as db:
            if db.execute("SELECT 1 FROM partners WHERE id=?", (pid,)).fetchone():
                raise PartnerError(f"partner {pid!r} exists already")
            db.execute("INSERT INTO partners(id, name, created_at, updated_at, enabled, scopes, filters, webhook_url,"
                       " email, digest, concurrency, kind, operates) VALUES (?,?,?,?,1,?,?,?,?,?,?,?,?)",
                       (pid, name.strip() or pid, iso(now), iso(now), json.dumps(list(scopes)),
                        json.dumps(filters.to_json()), url, mail, int(digest), concurrency, kind, json.dumps(list(operates))))
            db.execute("INSERT INTO api_keys(key_id, partner_id, hash, created_at) VALUES (?,?,?,?)",
                       (key.key_id, pid, key.hash, iso(now)))
            if stored:
                db.execute("INSERT INTO webhook_secrets(partner_id, secret, created_at) VALUES (?,?,?)",
                           (pid, stored, iso(now)))
        p = self.partner(pid)
        assert p is not None
        return Created(p, key.plain, whsec)

    def partner(self, pid: str) -> Partner | None:
        r = self.db.execute("SELECT * FROM partners WHERE id=?", (pid,)).fetchone()
        return Partner.from_row(r) if r else None

    def partner_fresh(self, pid: str) -> Partner | None:
        """`partner(pid)` as it is now, read again only when a partner changed since the last call: every
        write to the partners table, by any connection, counts up `meta.partners_version` (a trigger in
        SCHEMA). A delivery lane asks before every message; a partner disabled elsewhere is seen at once."""
        r = self.db.execute("SELECT value FROM meta WHERE key='partners_version'").fetchone()
        version = r[0] if r else None
        hit = self._partner_cache.get(pid)
        if hit is not None and version is not None and hit[0] == version:
            return hit[1]
        p = self.partner(pid)
        self._partner_cache[pid] = (version, p)
        return p

    def partners(self, enabled_only: bool = False) -> list[Partner]:
        sql = "SELECT * FROM partners" + (" WHERE enabled=1" if enabled_only else "") + " ORDER BY id"
        return [Partner.from_row(r) for r in self.db.execute(sql)]

    def update_partner(self, pid: str, now: datetime, *, name: str | None = None, scopes: tuple[str, ...] | None = None,
                       filters: Filters | None = None, webhook_url: str | None = None, email: str | None = None,
                       digest: bool | None = None, concurrency: int | None = None,
                       enabled: bool | None = None, kind: str | None = None,
                       operates: tuple[str, ...] | None = None) -> tuple[Partner, str | None]:
        """Change a partner; returns it and a new webhook secret when a webhook URL was set for the first time.
        An empty string for webhook_url or email removes it. A kind other than platform drops `operates`."""
        p = self.partner(pid)
        if p is None:
            raise PartnerError(f"no partner {pid!r}")
        scopes = p.scopes if scopes is None else scopes
        filters = p.filters if filters is None else filters
        concurrency = p.concurrency if concurrency is None else concurrency
        _check_partner_fields(scopes, filters, concurrency)
        new_kind = p.kind if kind is None else kind
        if operates is None:
            operates = p.operates if new_kind == "platform" else ()
        new_kind, operates = validate_kind(new_kind, operates)
        url = p.webhook_url if webhook_url is None else (self.check_webhook_url(webhook_url) if webhook_url else None)
        mail = p.email if email is None else (validate_email(email) if email else None)
        new_secret = None
        with self.tx() as db:
            db.execute("UPDATE partners SET name=?, scopes=?, filters=?, webhook_url=?, email=?, digest=?, concurrency=?,"
                       " enabled=?, kind=?, operates=?, updated_at=? WHERE id=?",
                       (name or p.name, json.dumps(list(scopes)), json.dumps(filters.to_json()), url, mail,
                        int(p.digest if digest is None else digest), concurrency,
                        int(p.enabled if enabled is None else enabled), new_kind, json.dumps(list(operates)), iso(now), pid))
            if url and not db.execute("SELECT 1 FROM webhook_secrets WHERE partner_id=?", (pid,)).fetchone():
                new_secret = new_webhook_secret()
                db.execute("INSERT INTO webhook_secrets(partner_id, secret, created_at) VALUES (?,?,?)",
                           (pid, self.box.encrypt(new_secret), iso(now)))
            if enabled:
                db.execute("UPDATE partners SET failures=0, paused_until=NULL WHERE id=?", (pid,))
        q = self.partner(pid)
        assert q is not None
        return q, new_secret

    def rotate_key(self, pid: str, now: datetime, grace: timedelta = timedelta(0)) -> str:
        """A new API key (returned once); the keys in use keep working for `grace`, then stop."""
        if self.partner(pid) is None:
            raise PartnerError(f"no partner {pid!r}")
        key = new_api_key()
        until = iso(now + grace)
        with self.tx() as db:
            db.execute("UPDATE api_keys SET expires_at=? WHERE partner_id=? AND (expires_at IS NULL OR expires_at > ?)",
                       (until, pid, until))
            db.execute("INSERT INTO api_keys(key_id, partner_id, hash, created_at) VALUES (?,?,?,?)",
                       (key.key_id, pid, key.hash, iso(now)))
        return key.plain

    def rotate_secret(self, pid: str, now: datetime, grace: timedelta = timedelta(hours=24)) -> str:
        """A new webhook secret (returned once). During `grace` every webhook is signed with both the new
        and the old secret (two signatures in webhook-signature), so the partner can switch at leisure."""
        p = self.partner(pid)
        if p is None:
            raise PartnerError(f"no partner {pid!r}")
        if not p.webhook_url:
            raise PartnerError(f"partner {pid!r} has no webhook URL")
        s = new_webhook_secret()
        until = iso(now + grace)
        with self.tx() as db:
            db.execute("UPDATE webhook_secrets SET expires_at=? WHERE partner_id=? AND (expires_at IS NULL OR expires_at > ?)",
                       (until, pid, until))
            db.execute("INSERT INTO webhook_secrets(partner_id, secret, created_at) VALUES (?,?,?)",
                       (pid, self.box.encrypt(s), iso(now)))
        return s

    def webhook_secrets(self, pid: str, now: datetime, known: dict[str, str] | None = None) -> list[str]:
        """The secrets to sign with now, newest first (decrypted; SecretsKeyError when the key is wrong).
        `known`: stored value -> plain secret, from earlier calls of the same caller (a delivery lane);
        only values not in it are decrypted, and they are added to it."""
        out = []
        for (stored,) in self.db.execute("SELECT secret FROM webhook_secrets WHERE partner_id=? AND (expires_at IS NULL"
                                         " OR expires_at > ?) ORDER BY id DESC", (pid, iso(now))):
            plain = known.get(stored) if known is not None else None
            if plain is None:
                plain = self.box.decrypt(stored)
                if known is not None:
                    known[stored] = plain
            out.append(plain)
        return out

    def keys(self, pid: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute(
            "SELECT key_id, created_at, expires_at, last_used_at FROM api_keys WHERE partner_id=? ORDER BY created_at",
            (pid,))]

    def authenticate(self, plain: str, now: datetime) -> Partner | None:
        """The enabled partner whose unexpired key this is, or None."""
        parsed = parse_api_key(plain)
        if parsed is None:
            return None
        key_id, secret = parsed
        r = self.db.execute("SELECT partner_id, hash, expires_at, last_used_at FROM api_keys WHERE key_id=?",
                            (key_id,)).fetchone()
        if r is None or not key_matches(secret, r["hash"]) or (r["expires_at"] and r["expires_at"] <= iso(now)):
            return None
        p = self.partner(r["partner_id"])
        if p is None or not p.enabled:
            return None
        if not r["last_used_at"] or r["last_used_at"] < iso(now - timedelta(minutes=1)):
            try:
                with self.tx() as db:
                    db.execute("UPDATE api_keys SET last_used_at=? WHERE key_id=?", (iso(now), key_id))
            except sqlite3.OperationalError:
                pass  # bookkeeping only; never fail a request for it
        return p

    # ---- facts (what the event log says about each listing) ----------------------------------------
    def facts_json(self, key: str) -> dict[str, Any] | None:
        r = self.db.execute("SELECT data FROM facts WHERE key=?", (key,)).fetchone()
        return json.loads(r[0]) if r else None

    def put_facts(self, key: str, data: dict[str, Any], now: datetime) -> None:
        self.db.execute("INSERT INTO facts VALUES (?,?,?) ON CONFLICT(key) DO UPDATE SET data=excluded.data,"
                        " updated_at=excluded.updated_at", (key, json.dumps(data, ensure_ascii=False), iso(now)))

    def all_facts(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for r in self.db.execute("SELECT key, data FROM facts ORDER BY key").fetchall():
            yield r[0], json.loads(r[1])

    # ---- alerts and messages -----------------------------------------------------------------------
    def open_alert(self, pid: str, key: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM alerts WHERE partner_id=? AND key=? AND state='open'", (pid, key)).fetchone()

    def open_alerts(self, pid: str) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM alerts WHERE partner_id=? AND state='open' ORDER BY key", (pid,)).fetchall()

    def alert(self, alert_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM alerts WHERE id=?", (alert_id,)).fetchone()

    def alerts_for_listing(self, key: str) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM alerts WHERE key=? ORDER BY opened_at", (key,)).fetchall()

    def alerts_of_listing(self, key: str) -> dict[str, tuple[sqlite3.Row | None, sqlite3.Row | None]]:
        """Every partner's (open alert, latest alert) on a listing, in one query: what `open_alert` and
        `latest_alert` say, for all partners at once."""
        out: dict[str, tuple[sqlite3.Row | None, sqlite3.Row | None]] = {}
        for r in self.db.execute("SELECT * FROM alerts WHERE key=? ORDER BY opened_at, rowid", (key,)):
            was = out.get(r["partner_id"], (None, None))[0]
            out[r["partner_id"]] = (r if r["state"] == "open" else was, r)
        return out

    def new_alert(self, pid: str, key: str, basis: str, public_state: list[Any] | str, now: datetime) -> str:
        """A new open alert; `public_state` as a list or as its JSON already."""
        aid = "al_" + secrets.token_hex(10)
        ps = public_state if isinstance(public_state, str) else json.dumps(public_state)
        n = iso(now)
        self.db.execute("INSERT INTO alerts(id, partner_id, key, state, basis, public_state, opened_at, updated_at)"
                        " VALUES (?,?,?,'open',?,?,?,?)", (aid, pid, key, basis, ps, n, n))
        return aid

    def update_alert(self, aid: str, basis: str, public_state: list[Any], now: datetime) -> None:
        self.db.execute("UPDATE alerts SET basis=?, public_state=?, updated_at=? WHERE id=?",
                        (basis, json.dumps(public_state), iso(now), aid))

    def retract_alert(self, aid: str, reason: str, now: datetime, state: str = "retracted") -> None:
        """Close an alert: `retracted` (it should not have been acted on) or `resolved` (nothing left to do)."""
        self.db.execute("UPDATE alerts SET state=?, closed_at=?, close_reason=?, updated_at=? WHERE id=?",
                        (state, iso(now), reason, iso(now), aid))

    def latest_alert(self, pid: str, key: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM alerts WHERE partner_id=? AND key=? ORDER BY opened_at DESC, rowid DESC"
                               " LIMIT 1", (pid, key)).fetchone()

    def reopen_alert(self, aid: str, basis: str, public_state: list[Any], now: datetime) -> None:
        self.db.execute("UPDATE alerts SET state='open', basis=?, public_state=?, updated_at=?, closed_at=NULL,"
                        " close_reason=NULL WHERE id=?", (basis, json.dumps(public_state), iso(now), aid))

    def add_message(self, partner: Partner, alert_id: str, mtype: str, key: str, payload: str | dict[str, Any],
                    now: datetime, *, marketplace: str | None, verdict: str | None, tis_no: str | None,
                    risk: int | None, event_id: int | None, lease_until: str | None = None) -> tuple[int, str, int]:
        """Append one message to a partner's feed (and its webhook queue); inside the caller's transaction.
        `lease_until`: the delivery is leased from the start (handed straight to a running delivery
        worker, alerts/engine_proc.py). Returns (row id, message id, seq)."""
        seq = self._seq.get(partner.id)
        if seq is None:
            seq = self.db.execute("SELECT coalesce(max(seq), 0) FROM messages WHERE partner_id=?", (partner.id,)).fetchone()[0]
        seq += 1
        self._seq[partner.id] = seq
        msg_id = "msg_" + secrets.token_hex(12)
        cur = self.db.execute(
            "INSERT INTO messages(msg_id, partner_id, seq, alert_id, type, created_at, key, marketplace, verdict, tis_base,"
            " risk, event_id, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (msg_id, partner.id, seq, alert_id, mtype, iso(now), key, marketplace, verdict, tis_base(tis_no), risk,
             event_id, payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)))
        rowid = int(cur.lastrowid or 0)
        if partner.webhook_url:
            self.db.execute("INSERT INTO deliveries(message_id, partner_id, alert_id, state, created_at, next_at, lease_until)"
                            " VALUES (?,?,?,'pending',?,?,?)", (rowid, partner.id, alert_id, iso(now), iso(now), lease_until))
        return rowid, msg_id, seq

    def has_pending(self, alert_id: str) -> bool:
        """Whether a delivery of this alert is still pending (a new message of it must wait its turn)."""
        return self.db.execute("SELECT 1 FROM deliveries WHERE alert_id=? AND state='pending' LIMIT 1",
                               (alert_id,)).fetchone() is not None

    def feed(self, pid: str, after: int, limit: int, *, marketplace: str | None = None, verdict: str | None = None,
             standard: str | None = None, mtype: str | None = None) -> tuple[list[sqlite3.Row], int, bool]:
        """A page of a partner's feed after `after`: (rows, next cursor, more pending). Filters skip
        messages but the cursor still moves past them, so a filtered poll never rescans."""
        where, params = ["partner_id=?", "seq>?"], [pid, after]
        for col, val in (("marketplace", marketplace), ("verdict", verdict), ("type", mtype)):
            if val:
                where.append(f"{col}=?")
                params.append(val)
        if standard:
            where.append("tis_base=?")
            params.append(tis_base(standard) or standard)
        with self.snapshot() as db:
            rows = db.execute(f"SELECT * FROM messages WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
                              [*params, limit + 1]).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            if more:
                nxt = rows[-1]["seq"]
            else:  # everything up to the newest committed message was scanned
                top = db.execute("SELECT coalesce(max(seq), 0) FROM messages WHERE partner_id=?", (pid,)).fetchone()[0]
                nxt = max(after, top)
        return rows, nxt, more

    def messages_for_alert(self, alert_id: str) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM messages WHERE alert_id=? ORDER BY id", (alert_id,)).fetchall()

    def messages_between(self, start: datetime, end: datetime, pid: str | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM messages WHERE created_at >= ? AND created_at < ?"
        params: list[Any] = [iso(start), iso(end)]
        if pid:
            sql += " AND partner_id=?"
            params.append(pid)
        return self.db.execute(sql + " ORDER BY id", params).fetchall()

    # ---- deliveries ---------------------------------------------------------------------------------
    def claim_due(self, pid: str, now: datetime, limit: int, lease: timedelta) -> list[sqlite3.Row]:
        """Up to `limit` pending deliveries of a partner that are due, oldest first, leased to the caller.
        A message waits while an earlier message of the same alert is still pending, so a partner never
        gets a retraction before the alert it retracts."""
        if limit <= 0:
            return []
        n = iso(now)
        with self.tx() as db:
            rows = db.execute(
                "SELECT d.message_id FROM deliveries d INDEXED BY deliveries_queue"
                " WHERE d.partner_id=? AND d.state='pending' AND d.next_at<=?"
                " AND (d.lease_until IS NULL OR d.lease_until<=?)"
                " AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.alert_id=d.alert_id AND e.state='pending'"
                "                 AND e.message_id<d.message_id)"
                " ORDER BY d.message_id LIMIT ?", (pid, n, n, limit)).fetchall()
            ids = [r[0] for r in rows]
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            db.execute(f"UPDATE deliveries SET lease_until=? WHERE message_id IN ({marks})", [iso(now + lease), *ids])
            return db.execute(
                "SELECT d.*, m.msg_id, m.seq, m.type, m.payload, m.created_at AS msg_created_at, m.key FROM deliveries d"
                f" JOIN messages m ON m.id=d.message_id WHERE d.message_id IN ({marks}) ORDER BY d.message_id", ids).fetchall()

    def next_due(self, pid: str) -> str | None:
        r = self.db.execute("SELECT min(max(next_at, coalesce(lease_until, ''))) FROM deliveries WHERE partner_id=? AND state='pending'",
                            (pid,)).fetchone()
        return r[0] if r else None

    def pending_count(self, pid: str | None = None) -> int:
        sql = "SELECT count(*) FROM deliveries WHERE state='pending'" + (" AND partner_id=?" if pid else "")
        return self.db.execute(sql, (pid,) if pid else ()).fetchone()[0]

    def save_body(self, message_id: int, body: bytes) -> None:
        with self.tx() as db:
            db.execute("UPDATE deliveries SET body=? WHERE message_id=? AND body IS NULL", (body, message_id))

    def record_many(self, results: list[dict[str, Any]]) -> None:
        """Record several attempts in one transaction: dicts with message_id, partner_id, at (datetime), ok,
        status, error, latency_ms, next_at (datetime or None), dead, and body (bytes of a first attempt that
        failed, kept so that the retries send the same bytes; a delivered message's body is dropped)."""
        if not results:
            return
        with self.tx() as db:
            db.executemany("INSERT INTO attempts(message_id, partner_id, at, status, error, latency_ms) VALUES (?,?,?,?,?,?)",
                           [(r["message_id"], r["partner_id"], iso(r["at"]), r["status"], r["error"],
                             round(r["latency_ms"], 2)) for r in results])
            ok = [(iso(r["at"]), iso(r["at"]), r["status"], iso(r["at"]), r["message_id"]) for r in results if r["ok"]]
            if ok:  # a delivered message's body is not needed any more (it was kept only for retries)
                db.executemany("UPDATE deliveries SET state='delivered', attempts=attempts+1, first_at=coalesce(first_at, ?),"
                               " last_at=?, last_status=?, last_error=NULL, delivered_at=?, lease_until=NULL,"
                               " body=NULL WHERE message_id=?", ok)
            bad = [("dead" if r["dead"] else "pending", iso(r["at"]), iso(r["at"]), r["status"], (r["error"] or "")[:500],
                    iso(r["next_at"] or r["at"]), iso(r["at"]) if r["dead"] else None, r.get("body"), r["message_id"])
                   for r in results if not r["ok"]]
            if bad:
                db.executemany("UPDATE deliveries SET state=?, attempts=attempts+1, first_at=coalesce(first_at, ?), last_at=?,"
                               " last_status=?, last_error=?, next_at=?, lease_until=NULL, dead_at=?, body=coalesce(body, ?)"
                               " WHERE message_id=?", bad)

    def renew(self, message_ids: list[int], until: datetime) -> None:
        """Extend the leases of deliveries a worker holds (queued in a lane, not yet sent)."""
        with self.tx() as db:
            for i in range(0, len(message_ids), 500):
                part = message_ids[i:i + 500]
                db.execute(f"UPDATE deliveries SET lease_until=? WHERE state='pending' AND message_id IN"
                           f" ({','.join('?' * len(part))})", [iso(until), *part])

    def release(self, message_ids: list[int]) -> None:
        """Give back leased deliveries that were not attempted (a paused lane, a worker stopping)."""
        if message_ids:
            with self.tx() as db:
                db.execute(f"UPDATE deliveries SET lease_until=NULL WHERE message_id IN ({','.join('?' * len(message_ids))})",
                           message_ids)

    def expire(self, pid: str, deadline_before: datetime, now: datetime) -> int:
        """Move pending deliveries created before `deadline_before` (older than the retry window) to the
        dead-letter list."""
        with self.tx() as db:
            return db.execute("UPDATE deliveries SET state='dead', dead_at=?, last_error=coalesce(last_error, 'not attempted')"
                              " || ' (gave up: retry window over)' WHERE partner_id=? AND state='pending' AND created_at<?"
                              " AND (lease_until IS NULL OR lease_until<=?)",
                              (iso(now), pid, iso(deadline_before), iso(now))).rowcount

    def partner_failed(self, pid: str, failures: int, paused_until: datetime | None) -> None:
        with self.tx() as db:
            db.execute("UPDATE partners SET failures=?, paused_until=? WHERE id=?",
                       (failures, iso(paused_until) if paused_until else None, pid))

    def partner_recovered(self, pid: str, now: datetime) -> bool:
        """A success: reset the partner's failure count; if it was paused (circuit open), make its whole
        backlog due now. Returns whether it had been failing."""
        with self.tx() as db:
            r = db.execute("SELECT failures, paused_until FROM partners WHERE id=?", (pid,)).fetchone()
            if r is None or (not r["failures"] and not r["paused_until"]):
                return False
            db.execute("UPDATE partners SET failures=0, paused_until=NULL WHERE id=?", (pid,))
            db.execute("UPDATE deliveries SET next_at=? WHERE partner_id=? AND state='pending' AND next_at>?",
                       (iso(now), pid, iso(now)))
            return True

    def replay(self, pid: str | None, now: datetime, message_ids: list[str] | None = None) -> int:
        """Put dead-lettered deliveries back in the queue (same webhook-id, due now, a new retry window)."""
        sql = ("UPDATE deliveries SET state='pending', next_at=?, created_at=?, dead_at=NULL, lease_until=NULL"
               " WHERE state='dead'")
        params: list[Any] = [iso(now), iso(now)]
        if pid:
            sql += " AND partner_id=?"
            params.append(pid)
        if message_ids:
            sql += f" AND message_id IN (SELECT id FROM messages WHERE msg_id IN ({','.join('?' * len(message_ids))}))"
            params += message_ids
        with self.tx() as db:
            n = db.execute(sql, params).rowcount
            if pid:
                db.execute("UPDATE partners SET failures=0, paused_until=NULL WHERE id=?", (pid,))
            return n

    def deliveries(self, pid: str | None = None, state: str | None = None, limit: int = 100,
                   offset: int = 0) -> list[sqlite3.Row]:
        where, params = ["1=1"], []
        if pid:
            where.append("d.partner_id=?")
            params.append(pid)
        if state:
            where.append("d.state=?")
            params.append(state)
        return self.db.execute(
            "SELECT d.message_id, d.partner_id, d.alert_id, d.state, d.attempts, d.created_at, d.next_at, d.first_at,"
            " d.last_at, d.last_status, d.last_error, d.delivered_at, d.dead_at, m.msg_id, m.seq, m.type, m.key"
            f" FROM deliveries d JOIN messages m ON m.id=d.message_id WHERE {' AND '.join(where)}"
            " ORDER BY d.message_id DESC LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()

    def attempts(self, message_id: int) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM attempts WHERE message_id=? ORDER BY id", (message_id,)).fetchall()

    def delivery_stats(self, pid: str | None = None) -> dict[str, Any]:
        w, p = ("WHERE partner_id=?", (pid,)) if pid else ("", ())
        states = dict(self.db.execute(f"SELECT state, count(*) FROM deliveries {w} GROUP BY state", p).fetchall())
        lat = [r[0] for r in self.db.execute(
            f"SELECT latency_ms FROM attempts {w} ORDER BY id DESC LIMIT 1000", p)]
        ok = self.db.execute(f"SELECT count(*) FROM attempts {w + (' AND' if w else 'WHERE')} status BETWEEN 200 AND 299",
                             p).fetchone()[0]
        total = self.db.execute(f"SELECT count(*) FROM attempts {w}", p).fetchone()[0]
        lat.sort()
        return {"pending": states.get("pending", 0), "delivered": states.get("delivered", 0), "dead": states.get("dead", 0),
                "attempts": total, "ok_attempts": ok,
                "latency_p50_ms": lat[len(lat) // 2] if lat else None,
                "latency_p95_ms": lat[min(len(lat) - 1, int(len(lat) * 0.95))] if lat else None}

    # ---- feedback ------------------------------------------------------------------------------------
    def add_feedback(self, alert_id: str, pid: str, key: str, status: str, reason: str | None, now: datetime,
                     dedupe: str) -> tuple[int, bool]:
        """Record a partner's feedback; returns (id, created). The same feedback twice is stored once."""
        with self.tx() as db:
            r = db.execute("SELECT id FROM feedback WHERE dedupe=?", (dedupe,)).fetchone()
            if r:
                return r[0], False
            cur = db.execute("INSERT INTO feedback(alert_id, partner_id, key, status, reason, at, dedupe, verify_state)"
                             " VALUES (?,?,?,?,?,?,?,?)", (alert_id, pid, key, status, reason, iso(now), dedupe,
                                                          "pending" if status == "removed" else None))
            return int(cur.lastrowid or 0), True

    def set_feedback_event(self, fid: int, event_id: int | None) -> None:
        with self.tx() as db:
            db.execute("UPDATE feedback SET event_id=? WHERE id=?", (event_id, fid))

    def feedback(self, *, alert_id: str | None = None, key: str | None = None, pid: str | None = None) -> list[sqlite3.Row]:
        where, params = ["1=1"], []
        for col, val in (("alert_id", alert_id), ("key", key), ("partner_id", pid)):
            if val:
                where.append(f"{col}=?")
                params.append(val)
        return self.db.execute(f"SELECT * FROM feedback WHERE {' AND '.join(where)} ORDER BY id", params).fetchall()

    def awaiting_verification(self, limit: int = 1000) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM feedback WHERE verify_state='pending' ORDER BY id LIMIT ?", (limit,)).fetchall()

    def set_verification(self, fid: int, state: str, detail: str, now: datetime) -> None:
        with self.tx() as db:
            db.execute("UPDATE feedback SET verify_state=?, verified_at=?, verify_detail=? WHERE id=?",
                       (state, iso(now), detail[:500], fid))

    # ---- activity (for officers' digests) --------------------------------------------------------------
    def add_activity(self, day: str, at: datetime, key: str, marketplace: str | None, tis_no: str | None, what: str,
                     verdict: str | None, risk: int | None) -> None:
        self.db.execute("INSERT INTO activity(day, at, key, marketplace, tis_base, what, verdict, risk) VALUES (?,?,?,?,?,?,?,?)",
                        (day, iso(at), key, marketplace, tis_base(tis_no), what, verdict, risk))

    def activity(self, day: str) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM activity WHERE day=? ORDER BY id", (day,)).fetchall()

    # ---- digests ---------------------------------------------------------------------------------------
    def digest_sent(self, recipient: str, period: str) -> bool:
        return self.db.execute("SELECT 1 FROM digests WHERE recipient=? AND period=?", (recipient, period)).fetchone() is not None

    def mark_digest(self, recipient: str, period: str, now: datetime) -> None:
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO digests VALUES (?,?,?)", (recipient, period, iso(now)))


def open_alert_store(settings) -> AlertStore:
    settings.ensure_home()
    return AlertStore(settings.home / "alerts.sqlite", policy=AddressPolicy.from_settings(settings),
                      keys=KeySource.from_settings(settings))
