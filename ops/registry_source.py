"""Registry refresh: is there a new version of the licence file at `[registry] source`?

The source is a file path or an http(s) URL. A file is new when its size or modification time moved
and its SHA-256 differs from the one last imported; a URL is asked with the ETag and Last-Modified it
gave last time (a 304 costs nothing), and a 200 is new when its SHA-256 differs. A new version is
imported like `tiswatch registry import` (in one transaction: a bad file changes nothing and the error
names the file or URL), and the re-check of affected listings follows in the same job.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

STATE = "registry_source"


class SourceError(RuntimeError):
    """The source cannot be read (missing file, HTTP error, not a licence file); names it and why."""


@dataclass(frozen=True)
class Seen:
    """What the source looked like: for a file size and mtime, for a URL ETag and Last-Modified; the
    content hash once read."""

    source: str
    size: int | None = None
    mtime: float | None = None
    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Seen | None:
        if not d or "source" not in d:
            return None
        return cls(**{k: d.get(k) for k in ("source", "size", "mtime", "etag", "last_modified", "sha256")})


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def file_may_have_changed(prev: Seen | None, now: Seen) -> bool:
    """Worth hashing? Pure. A different source, or a file whose size or mtime moved."""
    return prev is None or prev.source != now.source or prev.size != now.size or prev.mtime != now.mtime


def is_new_content(prev: Seen | None, sha256: str) -> bool:
    """Import it? Pure. Not when the content is what was imported last time (a file touched or copied
    again, a server without ETag). Importing the same content again would change nothing anyway."""
    return prev is None or prev.sha256 != sha256


def conditional_headers(prev: Seen | None, source: str) -> dict[str, str]:
    """If-None-Match / If-Modified-Since from what the URL said last time. Pure."""
    if prev is None or prev.source != source:
        return {}
    h = {}
    if prev.etag:
        h["If-None-Match"] = prev.etag
    if prev.last_modified:
        h["If-Modified-Since"] = prev.last_modified
    return h


def download_name(url: str, content_type: str = "", disposition: str = "") -> str:
    """A local file name for a downloaded licence file, keeping its kind (.xlsx or .csv). Pure."""
    m = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', disposition or "", re.IGNORECASE)
    name = unquote(m.group(1)) if m else unquote(Path(urlparse(url).path).name)
    name = re.sub(r"_+", "_", "".join(c if c in ".-" or unicodedata.category(c)[0] in "LNM" else "_" for c in name))
    name = name.strip("._")[-100:] or "licences"
    if not name.lower().endswith((".csv", ".xlsx", ".xlsm")):
        name += ".xlsx" if "spreadsheetml" in (content_type or "") else ".csv"
    return name


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(source: str, prev: Seen | None, dest_dir: Path, timeout: float = 60.0) -> tuple[Seen, Path | None]:
    """Look at the source: (what it looks like now, the local file to import or None when unchanged)."""
    if not is_url(source):
        p = Path(source)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise SourceError(f"{source}: registry source file not found") from None
        except OSError as e:
            raise SourceError(f"{source}: cannot read the registry source ({e.strerror})") from None
        now = Seen(source, size=st.st_size, mtime=st.st_mtime)
        if not file_may_have_changed(prev, now):
            return Seen(**{**now.__dict__, "sha256": prev.sha256 if prev else None}), None
        return Seen(**{**now.__dict__, "sha256": _sha256(p)}), p
    import httpx

    headers = {"User-Agent": "tiswatch registry refresh", **conditional_headers(prev, source)}
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        with httpx.stream("GET", source, headers=headers, timeout=timeout, follow_redirects=True) as r:
            if r.status_code == 304 and prev is not None:
                return prev, None
            if r.status_code != 200:
                raise SourceError(f"{source}: HTTP {r.status_code} {r.reason_phrase}")
            name = download_name(str(r.url), r.headers.get("content-type", ""), r.headers.get("content-disposition", ""))
            tmp = dest_dir / (name + ".part")
            h = hashlib.sha256()
            with tmp.open("wb") as f:
                for chunk in r.iter_bytes():
                    h.update(chunk)
                    f.write(chunk)
            path = dest_dir / name
            os.replace(tmp, path)
            return Seen(source, etag=r.headers.get("etag"), last_modified=r.headers.get("last-modified"),
                        sha256=h.hexdigest()), path
    except httpx.HTTPError as e:
        raise SourceError(f"{source}: {type(e).__name__}: {e}") from None


def refresh(settings: Any, history: Any, *, force: bool = False) -> dict[str, Any]:
    """Check `[registry] source` and import it when it has a new version. Returns what happened:
    {"changed": bool, "version_before", "version", "added", "updated", ...}. Raises SourceError."""
    from registry.licences import LicenceFileError, read_licence_file
    from registry.store import RegistryStore

    source = settings.registry.source
    if not source:
        return {"changed": False, "skipped": "no [registry] source configured"}
    prev = Seen.from_dict(history.get(STATE))
    now, path = fetch(source, None if force else prev, settings.home / "registry-source")
    rs = RegistryStore(settings.registry_db)
    try:
        before = rs.version()
        out: dict[str, Any] = {"source": source, "version_before": before, "version": before, "changed": False}
        if path is None or (not force and not is_new_content(prev, now.sha256 or "")):
            history.put(STATE, now.as_dict())
            out["unchanged"] = "not modified" if path is None else "same content as an earlier import"
            return out
        try:
            parsed = read_licence_file(path)
        except LicenceFileError as e:
            where = f"{source} (downloaded to {path})" if is_url(source) else source
            raise SourceError(f"{where}: {e}") from None
        parsed.path = source
        rep = rs.import_licences(parsed, now.sha256 or "", today=datetime.now(UTC).date())
        history.put(STATE, now.as_dict())
        after = rs.version()
        out.update(version=after, changed=after != before, rows=rep.rows, added=rep.added, updated=rep.updated,
                   unchanged_rows=rep.unchanged, rejected=rep.rejected,
                   errors=[str(e) for e in rep.errors[:10]])
        return out
    finally:
        rs.close()
