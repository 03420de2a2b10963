"""Evidence files: what a court would ask for, kept in the data directory by listing.

evidence/<marketplace>/<item_id>/<UTC stamp>/ holds the raw response, the rendered HTML, a full-page
screenshot (PNG) when a browser saw the page, and manifest.json with the URL, the time in UTC and in
Asia/Bangkok, and the SHA-256 of every file. Files are written first, the manifest last, each through
a temporary name, so an interrupted write never leaves a manifest that lies.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
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
        folder.mkdir(parents=True, exist_ok=True)
        written: list[EvidenceFile] = []
        for kind, (name, data) in files.items():
            p = folder / _safe(name)
            tmp = p.with_name(p.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, p)
            written.append(EvidenceFile(kind, p, hashlib.sha256(data).hexdigest(), len(data)))
        manifest = {
            "marketplace": marketplace, "item_id": item_id, "url": url,
            "captured_utc": at.astimezone(UTC).isoformat(timespec="seconds"),
            "captured_bangkok": at.astimezone(BANGKOK).isoformat(timespec="seconds"),
            "files": [{"kind": f.kind, "name": f.path.name, "sha256": f.sha256, "size": f.size} for f in written],
            **(extra or {}),
        }
        mp = folder / "manifest.json"
        tmp = mp.with_name("manifest.json.part")
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")
        os.replace(tmp, mp)
        data = mp.read_bytes()
        written.append(EvidenceFile("manifest", mp, hashlib.sha256(data).hexdigest(), len(data)))
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
