"""The review app's own data: app.sqlite in the data directory.

Users, sessions, personal API tokens, decisions, the audit log, saved searches and the dashboard's
aggregates. The audit log and the decisions are append-only **in the database**: triggers refuse any
UPDATE or DELETE, so neither a bug nor a route nor a role can rewrite the trail (only someone who
edits the file by hand, which the backup and its SHA-256 would show).

Passwords are argon2id hashes; session cookies and API tokens are random and only their SHA-256 is
stored, so a copy of app.sqlite lets nobody log in.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from listings.sqlite_util import enable_wal

ROLES = ("officer", "investigator", "partner_admin", "admin")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE COLLATE NOCASE, display_name TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL CHECK (role IN ('officer','investigator','partner_admin','admin')),
  password_hash TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL,
  failed_logins INTEGER NOT NULL DEFAULT 0, locked_until TEXT, last_login TEXT, lang TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), csrf TEXT NOT NULL,
  created_at TEXT NOT NULL, expires_at TEXT NOT NULL, last_seen TEXT NOT NULL, ip TEXT, user_agent TEXT
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);
CREATE TABLE IF NOT EXISTS api_tokens (
  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, created_at TEXT NOT NULL, last_used TEXT, revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS decisions (
  id INTEGER PRIMARY KEY, at TEXT NOT NULL, key TEXT NOT NULL, action TEXT NOT NULL, reason TEXT, target TEXT,
  note TEXT, previous TEXT, status TEXT, verdict TEXT, risk INTEGER, marketplace TEXT, tis_no TEXT,
  user_id INTEGER NOT NULL, username TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_key ON decisions(key, id);
CREATE INDEX IF NOT EXISTS decisions_at ON decisions(at);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY, at TEXT NOT NULL, user_id INTEGER, username TEXT, action TEXT NOT NULL,
  target TEXT, before TEXT, after TEXT, ip TEXT
);
CREATE INDEX IF NOT EXISTS audit_target ON audit(target, id);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
  BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
  BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TABLE IF NOT EXISTS saved_searches (
  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), name TEXT NOT NULL, query TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS flag_days (
  day TEXT NOT NULL, marketplace TEXT NOT NULL, tis_no TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (day, marketplace, tis_no)
);
"""

_hasher = PasswordHasher()
# verified against when the user does not exist, so that a login takes as long either way
_DUMMY_HASH = _hasher.hash("not a password " + secrets.token_hex(8))


class UserError(ValueError):
    """A user operation that cannot be done (unknown user, bad role, weak password ...)."""


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    failed_logins: int = 0
    locked_until: str | None = None
    last_login: str | None = None
    created_at: str = ""
    lang: str | None = None

    @property
    def name(self) -> str:
        return self.display_name or self.username

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "display_name": self.display_name, "role": self.role,
                "active": self.active, "locked_until": self.locked_until, "last_login": self.last_login,
                "created_at": self.created_at}


@dataclass(frozen=True)
class LockPolicy:
    max_failures: int = 5
    lock_minutes: int = 15


def login_outcome(failed_before: int, locked_until: str | None, password_ok: bool, now: datetime,
                  policy: LockPolicy) -> tuple[str, int, str | None]:
    """Pure lock-out rule. Returns (outcome, failed count to store, locked_until to store).

    outcome: 'ok', 'bad' (wrong password), 'locked' (refused without looking at the password: the
    account is locked until `locked_until`). The failure that reaches `max_failures` locks the account
    for `lock_minutes`; a lock that has run out is lifted and counting starts again."""
    if locked_until and datetime.fromisoformat(locked_until) > now:
        return "locked", failed_before, locked_until
    if locked_until:  # expired lock: start again
        failed_before = 0
    if password_ok:
        return "ok", 0, None
    failed = failed_before + 1
    if failed >= policy.max_failures:
        return "bad", failed, iso(now + timedelta(minutes=policy.lock_minutes))
    return "bad", failed, None


def session_state(expires_at: str, last_seen: str, now: datetime, idle: timedelta) -> str:
    """Pure session rule: 'live', 'expired' (past its absolute lifetime, [review] session_hours) or
    'idle' (nothing asked with it for longer than `idle`, [review] session_idle_minutes). An officer
    who leaves a laptop logged in at lunch finds it logged out; one who works all day is asked to
    log in again after the absolute lifetime."""
    if iso(now) >= expires_at:
        return "expired"
    if now - datetime.fromisoformat(last_seen) > idle:
        return "idle"
    return "live"


def touch_due(last_seen: str, now: datetime, idle: timedelta) -> bool:
    """Whether a live session's last_seen should be written again: at most once a minute (a write per
    request would serialise page views on the database), and often enough for `idle` to hold to within
    a quarter of itself."""
    return (now - datetime.fromisoformat(last_seen)) >= min(timedelta(minutes=1), idle / 4)


def check_password_strength(pw: str) -> None:
    if len(pw) < 10:
        raise UserError("a password needs at least 10 characters")
    if pw.strip() != pw or len(set(pw)) < 4:
        raise UserError("a password may not start or end with spaces and needs at least 4 different characters")


class AppDB:
    def __init__(self, path: str | Path, policy: LockPolicy | None = None, session_idle: timedelta = timedelta(minutes=30)):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.policy = policy or LockPolicy()
        self.session_idle = session_idle
        self._lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        enable_wal(self.db)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def q(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return self.db.execute(sql, params).fetchall()

    # ---- audit ----------------------------------------------------------------------------------
    def audit(self, action: str, target: str | None = None, before: Any = None, after: Any = None,
              user: User | None = None, ip: str | None = None, at: datetime | None = None) -> int:
        with self._lock:
            cur = self.db.execute(
                "INSERT INTO audit(at, user_id, username, action, target, before, after, ip) VALUES (?,?,?,?,?,?,?,?)",
                (iso(at or now_utc()), user.id if user else None, user.username if user else None, action, target,
                 None if before is None else json.dumps(before, ensure_ascii=False, default=str),
                 None if after is None else json.dumps(after, ensure_ascii=False, default=str), ip))
            return int(cur.lastrowid or 0)

    def audit_rows(self, target: str | None = None, user: str | None = None, action: str | None = None,
                   limit: int = 200, before_id: int | None = None) -> list[dict[str, Any]]:
        sql, p = "SELECT * FROM audit WHERE 1=1", []
        for col, v in (("target", target), ("username", user), ("action", action)):
            if v:
                sql += f" AND {col}=?"
                p.append(v)
        if before_id:
            sql += " AND id < ?"
            p.append(before_id)
        sql += " ORDER BY id DESC LIMIT ?"
        p.append(limit)
        out = []
        for r in self.q(sql, p):
            d = dict(r)
            d["before"] = json.loads(d["before"]) if d["before"] else None
            d["after"] = json.loads(d["after"]) if d["after"] else None
            out.append(d)
        return out

    # ---- users ----------------------------------------------------------------------------------
    @staticmethod
    def _user(r: sqlite3.Row | None) -> User | None:
        if r is None:
            return None
        return User(r["id"], r["username"], r["display_name"], r["role"], bool(r["active"]), r["failed_logins"],
                    r["locked_until"], r["last_login"], r["created_at"], r["lang"])

    def user(self, username: str) -> User | None:
        return self._user(self.db.execute("SELECT * FROM users WHERE username=?", (username,)).fetchone())

    def user_by_id(self, uid: int) -> User | None:
        return self._user(self.db.execute("SELECT * FROM users WHERE id=?", (uid,)).fetchone())

    def users(self) -> list[User]:
        return [u for r in self.q("SELECT * FROM users ORDER BY username") if (u := self._user(r))]

    def count_users(self) -> int:
        return self.db.execute("SELECT count(*) FROM users").fetchone()[0]

    def add_user(self, username: str, password: str, role: str, display_name: str = "",
                 by: User | None = None) -> User:
        username = username.strip()
        if not username or len(username) > 64 or any(c.isspace() for c in username):
            raise UserError("a user name is 1-64 characters without spaces")
        if role not in ROLES:
            raise UserError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        check_password_strength(password)
        with self._lock:
            try:
                self.db.execute("INSERT INTO users(username, display_name, role, password_hash, created_at) VALUES (?,?,?,?,?)",
                                (username, display_name.strip(), role, _hasher.hash(password), iso(now_utc())))
            except sqlite3.IntegrityError:
                raise UserError(f"user {username!r} already exists") from None
            u = self.user(username)
            assert u is not None
            self.audit("user.add", f"user:{username}", None, {"role": role, "display_name": display_name}, by)
            return u

    def _need(self, username: str) -> User:
        u = self.user(username)
        if u is None:
            raise UserError(f"no user {username!r}")
        return u

    def set_active(self, username: str, active: bool, by: User | None = None) -> User:
        u = self._need(username)
        with self._lock:
            self.db.execute("UPDATE users SET active=? WHERE id=?", (int(active), u.id))
            if not active:
                self.db.execute("DELETE FROM sessions WHERE user_id=?", (u.id,))
                self.db.execute("UPDATE api_tokens SET revoked_at=? WHERE user_id=? AND revoked_at IS NULL",
                                (iso(now_utc()), u.id))
        self.audit("user.enable" if active else "user.disable", f"user:{u.username}", {"active": u.active},
                   {"active": active}, by)
        return self._need(username)

    def set_role(self, username: str, role: str, by: User | None = None) -> User:
        if role not in ROLES:
            raise UserError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        u = self._need(username)
        with self._lock:
            self.db.execute("UPDATE users SET role=? WHERE id=?", (role, u.id))
            self.db.execute("DELETE FROM sessions WHERE user_id=?", (u.id,))
        self.audit("user.role", f"user:{u.username}", {"role": u.role}, {"role": role}, by)
        return self._need(username)

    def set_password(self, username: str, password: str, by: User | None = None) -> None:
        check_password_strength(password)
        u = self._need(username)
        with self._lock:
            self.db.execute("UPDATE users SET password_hash=?, failed_logins=0, locked_until=NULL WHERE id=?",
                            (_hasher.hash(password), u.id))
            self.db.execute("DELETE FROM sessions WHERE user_id=?", (u.id,))
        self.audit("user.password", f"user:{u.username}", None, None, by)

    def unlock(self, username: str, by: User | None = None) -> User:
        u = self._need(username)
        with self._lock:
            self.db.execute("UPDATE users SET failed_logins=0, locked_until=NULL WHERE id=?", (u.id,))
        self.audit("user.unlock", f"user:{u.username}", {"failed_logins": u.failed_logins, "locked_until": u.locked_until},
                   {"failed_logins": 0, "locked_until": None}, by)
        return self._need(username)

    def set_lang(self, user: User, lang: str) -> None:
        with self._lock:
            self.db.execute("UPDATE users SET lang=? WHERE id=?", (lang, user.id))

    def authenticate(self, username: str, password: str, ip: str | None = None,
                     now: datetime | None = None) -> tuple[str, User | None]:
        """('ok', user) | ('bad', None) | ('locked', None) | ('disabled', None). Every attempt is audited."""
        now = now or now_utc()
        with self._lock:
            r = self.db.execute("SELECT * FROM users WHERE username=?", (username.strip(),)).fetchone()
            if r is None:
                try:
                    _hasher.verify(_DUMMY_HASH, password)
                except VerificationError:
                    pass
                self.audit("login.failed", f"user:{username[:64]}", None, {"why": "unknown user"}, None, ip, now)
                return "bad", None
            u = self._user(r)
            assert u is not None
            try:
                ok = _hasher.verify(r["password_hash"], password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                ok = False
            outcome, failed, locked = login_outcome(r["failed_logins"], r["locked_until"], ok, now, self.policy)
            if outcome == "ok" and not u.active:
                outcome = "disabled"
            if outcome == "ok":
                self.db.execute("UPDATE users SET failed_logins=0, locked_until=NULL, last_login=? WHERE id=?", (iso(now), u.id))
                if _hasher.check_needs_rehash(r["password_hash"]):
                    self.db.execute("UPDATE users SET password_hash=? WHERE id=?", (_hasher.hash(password), u.id))
                self.audit("login", f"user:{u.username}", None, None, u, ip, now)
                return "ok", self.user_by_id(u.id)
            self.db.execute("UPDATE users SET failed_logins=?, locked_until=? WHERE id=?", (failed, locked, u.id))
            why = {"bad": "wrong password", "locked": "account locked", "disabled": "account disabled"}[outcome]
            after = {"why": why, "failed_logins": failed}
            if locked and locked != r["locked_until"]:
                after["locked_until"] = locked
                self.audit("user.locked", f"user:{u.username}", None, {"locked_until": locked}, None, ip, now)
            self.audit("login.failed", f"user:{u.username}", None, after, None, ip, now)
            return outcome, None

    # ---- sessions -------------------------------------------------------------------------------
    def new_session(self, user: User, hours: float, ip: str | None = None, user_agent: str | None = None,
                    now: datetime | None = None) -> tuple[str, str]:
        """Returns (cookie value, CSRF token). Only the cookie's SHA-256 is stored."""
        now = now or now_utc()
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self.db.execute("DELETE FROM sessions WHERE expires_at < ? OR last_seen < ?",
                            (iso(now), iso(now - self.session_idle)))
            self.db.execute("INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?)",
                            (sha256(token), user.id, csrf, iso(now), iso(now + timedelta(hours=hours)), iso(now), ip,
                             (user_agent or "")[:300]))
        return token, csrf

    def session(self, token: str, now: datetime | None = None) -> tuple[User, str] | None:
        """The user and CSRF token of a live session cookie, or None. A session past its absolute
        lifetime or idle for longer than `session_idle` is ended here (and audited as such)."""
        if not token or len(token) > 200:
            return None
        now = now or now_utc()
        sid = sha256(token)
        r = self.db.execute("SELECT s.csrf, s.expires_at, s.last_seen, u.* FROM sessions s"
                            " JOIN users u ON u.id = s.user_id WHERE s.id=?", (sid,)).fetchone()
        if r is None or not r["active"]:
            return None
        state = session_state(r["expires_at"], r["last_seen"], now, self.session_idle)
        if state != "live":
            with self._lock:
                gone = self.db.execute("DELETE FROM sessions WHERE id=?", (sid,)).rowcount
            if gone:
                self.audit("session.end", f"user:{r['username']}", None,
                           {"why": state, "last_seen": r["last_seen"]}, self._user(r), None, now)
            return None
        if touch_due(r["last_seen"], now, self.session_idle):
            with self._lock:
                self.db.execute("UPDATE sessions SET last_seen=? WHERE id=?", (iso(now), sid))
        u = self._user(r)
        assert u is not None
        return u, r["csrf"]

    def end_session(self, token: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM sessions WHERE id=?", (sha256(token),))

    # ---- API tokens -----------------------------------------------------------------------------
    def new_token(self, user: User, name: str) -> tuple[int, str]:
        """A personal API token: shown once, stored as SHA-256. Returns (id, token)."""
        token = "tw_" + secrets.token_urlsafe(32)
        name = (name or "token").strip()[:80]
        with self._lock:
            cur = self.db.execute("INSERT INTO api_tokens(user_id, name, token_hash, prefix, created_at) VALUES (?,?,?,?,?)",
                                  (user.id, name, sha256(token), token[:10], iso(now_utc())))
        tid = int(cur.lastrowid or 0)
        self.audit("token.create", f"user:{user.username}", None, {"token_id": tid, "name": name}, user)
        return tid, token

    def tokens(self, user: User) -> list[dict[str, Any]]:
        return [dict(r) for r in self.q("SELECT id, name, prefix, created_at, last_used, revoked_at FROM api_tokens"
                                         " WHERE user_id=? ORDER BY id DESC", (user.id,))]

    def revoke_token(self, user: User, token_id: int, by: User | None = None) -> bool:
        """Revoke `user`'s token `token_id` (by the user, or by `by`: an administrator)."""
        with self._lock:
            n = self.db.execute("UPDATE api_tokens SET revoked_at=? WHERE id=? AND user_id=? AND revoked_at IS NULL",
                                (iso(now_utc()), token_id, user.id)).rowcount
        if n:
            self.audit("token.revoke", f"user:{user.username}", None, {"token_id": token_id}, by or user)
        return bool(n)

    def token_user(self, token: str, now: datetime | None = None) -> User | None:
        if not token.startswith("tw_") or len(token) > 200:
            return None
        r = self.db.execute("SELECT t.id AS tid, t.last_used, u.* FROM api_tokens t JOIN users u ON u.id=t.user_id"
                            " WHERE t.token_hash=? AND t.revoked_at IS NULL", (sha256(token),)).fetchone()
        if r is None or not r["active"]:
            return None
        now = now or now_utc()
        if not r["last_used"] or (now - datetime.fromisoformat(r["last_used"])).total_seconds() > 60:
            with self._lock:
                self.db.execute("UPDATE api_tokens SET last_used=? WHERE id=?", (iso(now), r["tid"]))
        return self._user(r)

    # ---- saved searches -------------------------------------------------------------------------
    def save_search(self, user: User, name: str, query: dict[str, Any]) -> int:
        with self._lock:
            cur = self.db.execute("INSERT INTO saved_searches(user_id, name, query, created_at) VALUES (?,?,?,?)",
                                  (user.id, name.strip()[:120] or "search", json.dumps(query, ensure_ascii=False),
                                   iso(now_utc())))
        return int(cur.lastrowid or 0)

    def saved_searches(self, user: User) -> list[dict[str, Any]]:
        return [{**dict(r), "query": json.loads(r["query"])} for r in
                self.q("SELECT id, name, query, created_at FROM saved_searches WHERE user_id=? ORDER BY id DESC", (user.id,))]

    def delete_saved_search(self, user: User, sid: int) -> bool:
        with self._lock:
            return bool(self.db.execute("DELETE FROM saved_searches WHERE id=? AND user_id=?", (sid, user.id)).rowcount)

    # ---- meta -----------------------------------------------------------------------------------
    def meta(self, key: str, default: str | None = None) -> str | None:
        r = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return r[0] if r else default

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value))


def open_appdb(settings) -> AppDB:
    settings.ensure_home()
    r = settings.review
    return AppDB(settings.app_db, LockPolicy(r.max_failed_logins, r.lockout_minutes),
                 timedelta(minutes=r.session_idle_minutes))


def secret_key(settings) -> bytes:
    """[review] secret_key, or one generated once and kept in the data directory (mode 0600)."""
    if settings.review.secret_key:
        return settings.review.secret_key.encode()
    settings.ensure_home()
    p = settings.home / "secret_key"
    if not p.exists():
        tmp = p.with_name("secret_key.part")
        tmp.write_text(secrets.token_hex(32))
        tmp.chmod(0o600)
        tmp.replace(p)
    return p.read_text().strip().encode()
