"""Webhook secrets encrypted at rest.

A webhook secret must be readable by us (HMAC signs with the secret itself, unlike an API key, which is
only compared by its hash), so alerts.sqlite keeps it encrypted with Fernet (AES-128-CBC + HMAC-SHA256,
from `cryptography`, which Scrapy already brings) under a key kept **outside the database**:

- `[alerts] secrets_key`: one or more Fernet keys separated by commas, the first encrypts (set it through
  the environment, `TISWATCH_ALERTS__SECRETS_KEY`, or a secret store); else
- `[alerts] secrets_key_file`: a file with one key a line, the first encrypts (default `alerts.key` in the
  data directory, made with mode 0600 the first time a secret is stored).

A copy of alerts.sqlite alone (a stray backup, a support bundle, a dump) then reveals no secret. Stored
values are `enc:v1:<Fernet token>`; older installations' plain values are encrypted when the store opens.
Every key of the list decrypts, so a key can be rotated without downtime (`tiswatch partners
rotate-encryption-key`): the new key goes first, every secret is re-encrypted, the old key is dropped.
A process that meets a value its keys cannot read reloads the key file once (another process rotated it).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

PREFIX = "enc:v1:"
LOST_HINT = ("restore the key from the backup of this data directory; if it is lost, "
             "`tiswatch partners rotate-encryption-key --lost` gives every webhook partner a new secret")


class SecretsKeyError(RuntimeError):
    """The webhook-secrets key is missing, malformed or not the one the secrets were encrypted with."""


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX)


def new_key() -> bytes:
    from cryptography.fernet import Fernet

    return Fernet.generate_key()


def parse_keys(text: str, source: str) -> list[bytes]:
    """Fernet keys from a comma- or newline-separated text; SecretsKeyError naming the source and line."""
    import base64
    import binascii

    keys = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("#"):
            continue
        for part in line.split(","):
            k = part.strip()
            if not k:
                continue
            try:
                ok = len(base64.urlsafe_b64decode(k.encode())) == 32
            except (binascii.Error, ValueError):
                ok = False
            if not ok:
                where = f"line {n}" if "\n" in text.strip() else f"entry {len(keys) + 1}"
                raise SecretsKeyError(f"{source}: {where} is not a Fernet key (44 characters of url-safe base64, "
                                      "as Fernet.generate_key() makes)")
            keys.append(k.encode())
    return keys


class KeySource:
    """Where the keys come from: the setting `[alerts] secrets_key`, or a key file."""

    def __init__(self, *, value: str = "", path: Path | None = None):
        if not value and path is None:
            raise ValueError("a key source needs a value or a file")
        self.value, self.path = value, path

    @classmethod
    def from_settings(cls, settings: Any) -> KeySource:
        a = settings.alerts
        if getattr(a, "secrets_key", ""):
            return cls(value=a.secrets_key)
        p = Path(getattr(a, "secrets_key_file", "") or "alerts.key")
        return cls(path=p if p.is_absolute() else Path(settings.home) / p)

    @property
    def writable(self) -> bool:
        return self.path is not None

    def describe(self) -> str:
        return f"the key file {self.path}" if self.path is not None else "the setting [alerts] secrets_key"

    def load(self, create: bool) -> list[bytes]:
        """The keys (first one encrypts). With `create`, a missing key file is made with a new key."""
        if self.path is None:
            return parse_keys(self.value, "[alerts] secrets_key")
        try:
            return parse_keys(self.path.read_text("utf-8"), str(self.path)) or self._missing(create)
        except FileNotFoundError:
            return self._missing(create)

    def _missing(self, create: bool) -> list[bytes]:
        if not create:
            raise SecretsKeyError(f"{self.describe()} is missing or empty, but alerts.sqlite holds webhook secrets "
                                  f"encrypted with it: {LOST_HINT}")
        k = [new_key()]
        self.write(k)
        return k

    def write(self, keys: list[bytes]) -> None:
        """Replace the key file atomically (mode 0600)."""
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("# tiswatch: keys of the webhook secrets in alerts.sqlite (first one encrypts). Keep it with\n"
                    "# backups of alerts.sqlite, but not inside them if you can. Never edit by hand.\n")
            f.write("".join(k.decode() + "\n" for k in keys))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)


class SecretBox:
    """Encrypts and decrypts stored webhook secrets with the keys of a KeySource (loaded when first needed)."""

    def __init__(self, source: KeySource, may_create: Any = lambda: True):
        self.source = source
        self._may_create = may_create  # called when the key file is missing: True when nothing is encrypted yet
        self._fernet: Any = None
        self._keys: list[bytes] = []
        self._lock = threading.Lock()

    def _load(self) -> Any:
        from cryptography.fernet import Fernet, MultiFernet

        with self._lock:
            if self._fernet is None:
                keys = self.source.load(create=bool(self._may_create()))
                self._keys = keys
                self._fernet = MultiFernet([Fernet(k) for k in keys])
            return self._fernet

    def keys(self) -> list[bytes]:
        self._load()
        return list(self._keys)

    def reset(self) -> None:
        with self._lock:
            self._fernet = None

    def can_decrypt(self, stored: str) -> bool:
        try:
            self.decrypt(stored)
            return True
        except SecretsKeyError:
            return False

    def ensure_key(self) -> None:
        """Make sure there is a key to encrypt with, writing a new key file when there is none (the lost-key
        recovery: whatever was encrypted with the lost key is unreadable anyway)."""
        try:
            self._load()
        except SecretsKeyError:
            if not self.source.writable:
                raise
            try:
                self.source.load(create=False)
            except SecretsKeyError:
                self.source.write([new_key()])
            self.reset()
            self._load()

    def encrypt(self, plain: str) -> str:
        return PREFIX + self._load().encrypt(plain.encode()).decode()

    def decrypt(self, stored: str) -> str:
        """The plain secret of a stored value (a plain legacy value is returned as it is)."""
        if not is_encrypted(stored):
            return stored
        from cryptography.fernet import InvalidToken

        token = stored[len(PREFIX):].encode()
        try:
            return self._load().decrypt(token).decode()
        except InvalidToken:
            pass
        self.reset()  # another process may have rotated the key file: read it again, once
        try:
            return self._load().decrypt(token).decode()
        except InvalidToken:
            raise SecretsKeyError(f"a webhook secret in alerts.sqlite cannot be decrypted with {self.source.describe()}: "
                                  f"it is not the key the secrets were encrypted with; {LOST_HINT}") from None

    def rotate(self, reencrypt: Any) -> int:
        """A new key (key file only): written first beside the old ones, every stored secret re-encrypted
        with it by `reencrypt(box)` (returns how many), then the old keys dropped. A crash in between leaves
        a file that still reads everything."""
        if not self.source.writable:
            raise SecretsKeyError("the key comes from the setting [alerts] secrets_key: put a new key first in it "
                                  "(new,old), restart, run `tiswatch partners rotate-encryption-key --reencrypt-only`, "
                                  "then remove the old key from the setting")
        old = self.keys()
        new = new_key()
        self.source.write([new, *old])
        self.reset()
        n = int(reencrypt(self))
        self.source.write([new])
        self.reset()
        return n
