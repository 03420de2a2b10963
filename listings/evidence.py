"""Evidence files: what a court would ask for, kept in the data directory by listing.

evidence/<marketplace>/<item_id>/<UTC stamp>/ holds the raw response, the rendered HTML, a full-page
screenshot (PNG) when a browser saw the page, and manifest.json with the URL, the time in UTC and in
Asia/Bangkok, and the SHA-256 of every file. Files are written first, the manifest last, each through
a temporary name, so an interrupted write never leaves a manifest that lies. (A folder this call
created is new to everyone: its files are written under their own names at once, the manifest still
through a temporary one, which saves a rename per file; a crawl writes thousands of these folders, and
creating and renaming files is most of their cost.)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

BANGKOK = ZoneInfo("Asia/Bangkok")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class EvidenceFile:
    kind: str
    path: Path
    sha256: str
    size: int


def _safe(part: str) -> str:
    s = _SAFE.sub("_", part)[:80]
    return s or "_"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Plain(Exception):
    """A value dumps_indented leaves to the json module."""


def _indented(o: Any, level: int, out: list[str]) -> None:
    t = type(o)
    if t is str:
        out.append(encode_basestring(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif t is int:
        out.append(int.__repr__(o))
    elif t is float and o == o and o not in (_INF, -_INF):
        out.append(float.__repr__(o))
    elif t is dict or t is list or t is tuple:
        if not o:
            out.append("{}" if t is dict else "[]")
            return
        inner = "\n" + " " * (level + 1)
        sep = "," + inner
        out.append("{" if t is dict else "[")
        first = True
        if t is dict:
            for k, v in o.items():
                if type(k) is not str:
                    raise _Plain
                out.append(inner if first else sep)
                first = False
                out.append(encode_basestring(k))
                out.append(": ")
                _indented(v, level + 1, out)
        else:
            for v in o:
                out.append(inner if first else sep)
                first = False
                _indented(v, level + 1, out)
        out.append("\n" + " " * level + ("}" if t is dict else "]"))
    else:
        raise _Plain


_INF = float("inf")


def dumps_indented(obj: Any) -> str:
    """`json.dumps(obj, ensure_ascii=False, indent=1)`, the same text, about twice as fast: with an
    indent the json module encodes in pure Python, and evidence files (the verdict, the listing, the
    manifest) are written for every flagged listing. Anything but plain JSON types (str keys, exact
    int and float, NaN and infinities, subclasses, deep nesting) goes to json.dumps itself."""
    out: list[str] = []
    try:
        _indented(obj, 0, out)
    except (_Plain, RecursionError):
        return json.dumps(obj, ensure_ascii=False, indent=1)
    return "".join(out)


def _write(path: str, data: bytes) -> None:
    """open(path, "wb").write(data) without the file objects (the same flags and mode): a third less
    CPU per file, and a flagged listing writes five."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


class EvidenceWriter:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def folder(self, marketplace: str, item_id: str, at: datetime) -> Path:
        return self.root / _safe(marketplace) / _safe(item_id) / at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    def save(self, marketplace: str, item_id: str, url: str | None, files: dict[str, tuple[str, bytes]],
             at: datetime | None = None, extra: dict | None = None) -> tuple[Path, list[EvidenceFile]]:
        """files: kind -> (file name, content). Returns the folder and what was written, manifest last."""
        at = at or datetime.now(UTC)
        folder = self.folder(marketplace, item_id, at)
        try:
            os.mkdir(folder)
            new = True
        except FileNotFoundError:
            os.makedirs(folder.parent, exist_ok=True)
            try:
                os.mkdir(folder)
                new = True
            except FileExistsError:
                new = False
        except FileExistsError:
            new = False
        base = str(folder) + os.sep
        written: list[EvidenceFile] = []
        for kind, (name, data) in files.items():
            p = base + _safe(name)
            if new:  # nobody has a manifest here to contradict
                _write(p, data)
            else:
                _write(p + ".part", data)
                os.replace(p + ".part", p)
            written.append(EvidenceFile(kind, Path(p), hashlib.sha256(data).hexdigest(), len(data)))
        manifest = {
            "marketplace": marketplace, "item_id": item_id, "url": url,
            "captured_utc": at.astimezone(UTC).isoformat(timespec="seconds"),
            "captured_bangkok": at.astimezone(BANGKOK).isoformat(timespec="seconds"),
            "files": [{"kind": f.kind, "name": f.path.name, "sha256": f.sha256, "size": f.size} for f in written],
            **(extra or {}),
        }
        mp = base + "manifest.json"
        data = dumps_indented(manifest).encode("utf-8")
        _write(mp + ".part", data)
        os.replace(mp + ".part", mp)
        written.append(EvidenceFile("manifest", Path(mp), hashlib.sha256(data).hexdigest(), len(data)))
        return folder, written


def verify_manifest(folder: str | Path) -> list[str]:
    """Problems with an evidence folder: files whose SHA-256 no longer matches the manifest, files
    missing, files added next to them, or a manifest that cannot be read. [] when all is intact."""
    folder = Path(folder)
    mp = folder / "manifest.json"
    try:
        m = json.loads(mp.read_text("utf-8"))
        files = m["files"]
        names = {f["name"] for f in files}
    except FileNotFoundError:
        return [f"{mp}: missing"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [f"{mp}: not a readable manifest ({type(e).__name__}: {e})"]
    bad = []
    for f in files:
        p = folder / f["name"]
        if not p.exists():
            bad.append(f"{p}: missing")
        elif sha256_file(p) != f.get("sha256"):
            bad.append(f"{p}: SHA-256 differs from the manifest")
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name != "manifest.json" and p.name not in names and not p.name.endswith(".part"):
            bad.append(f"{p}: not in the manifest")
    return bad


def manifests_under(path: str | Path) -> list[Path]:
    """Evidence folders at or below `path` (a folder, a manifest.json, or a tree such as evidence/)."""
    p = Path(path)
    if p.is_file():
        return [p.parent] if p.name == "manifest.json" else []
    if (p / "manifest.json").exists():
        return [p]
    return sorted(m.parent for m in p.rglob("manifest.json"))
