"""Backup and restore of the data directory (`tiswatch backup`, `tiswatch restore`).

A backup is consistent while tiswatch runs: each SQLite database is copied with SQLite's online
backup API (a snapshot of one moment, WAL included), the databases first and the files after them, so
that every evidence file a database row names is in the backup (evidence files are written before the
row that names them and never change). A manifest lists every file with its size and SHA-256.

A restore checks everything before it touches the data directory (manifest hashes, SQLite integrity
check of every database), refuses while the service or a crawl holds the data directory, and swaps the
restored directory in whole; a data directory it replaces (--force) is kept beside it, renamed, not
deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMAT = "tiswatch-backup"
MANIFEST = "manifest.json"
# not data: locks, logs, SQLite side files, interrupted crawl state, partial downloads
SKIP_DIRS = {"locks", "logs"}
SKIP_SUFFIXES = (".sqlite-wal", ".sqlite-shm", ".sqlite-journal", ".tmp", ".part", ".lock")


class BackupError(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _skip(rel: Path) -> bool:
    parts = rel.parts
    if parts and parts[0] in SKIP_DIRS:
        return True
    if len(parts) >= 3 and parts[0] == "crawl" and parts[2] in ("job", "revisit-job"):
        return True
    return rel.name.endswith(SKIP_SUFFIXES)


def snapshot_db(src: Path, dest: Path) -> None:
    """Copy one SQLite database with the online backup API (consistent while others write)."""
    s = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=60)
    d = sqlite3.connect(dest)
    try:
        # one step: in WAL mode a reader never blocks the writers, and stepping would sleep between steps
        s.backup(d, pages=-1)
        d.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
    finally:
        d.close()
        s.close()


def integrity(db: Path) -> str:
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return c.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as e:
        return str(e)
    finally:
        c.close()


def make_backup(home: str | Path, dest: str | Path, *, evidence: bool = True, now: datetime | None = None) -> dict[str, Any]:
    home, dest = Path(home), Path(dest)
    if not home.is_dir():
        raise BackupError(f"{home}: no data directory there")
    archive = dest.name.endswith((".tar.gz", ".tgz"))
    if dest.exists() and (archive or any(dest.iterdir())):
        raise BackupError(f"{dest}: already exists; give a new directory or archive name")
    work = Path(tempfile.mkdtemp(prefix=".tiswatch-backup-", dir=dest.parent if archive else None)) if archive else dest
    work.mkdir(parents=True, exist_ok=True)
    try:
        manifest: dict[str, Any] = {"format": FORMAT, "version": 1,
                                    "created": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
                                    "home": str(home.resolve()), "files": {}, "databases": {}, "bytes": 0}
        # 1. the databases, each a consistent snapshot
        for db in sorted(home.glob("*.sqlite")):
            out = work / db.name
            snapshot_db(db, out)
            check = integrity(out)
            if check != "ok":
                raise BackupError(f"{db}: the copy fails SQLite's integrity check ({check}); the database may be damaged")
            c = sqlite3.connect(out)
            try:
                manifest["databases"][db.name] = c.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
            finally:
                c.close()
        # 2. every other file (evidence after the databases that name it)
        for path in sorted(home.rglob("*")):
            rel = path.relative_to(home)
            if not path.is_file() or (path.suffix == ".sqlite" and len(rel.parts) == 1) or _skip(rel):
                continue
            if not evidence and rel.parts[0] == "evidence":
                continue
            target = work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(path, target)
            except FileNotFoundError:
                continue  # removed meanwhile (retention): not in the snapshot
        for path in sorted(work.rglob("*")):
            if path.is_file() and path.name != MANIFEST:
                rel = path.relative_to(work).as_posix()
                size = path.stat().st_size
                manifest["files"][rel] = {"size": size, "sha256": _sha256(path)}
                manifest["bytes"] += size
        (work / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")
        if archive:
            tmp = dest.with_name(dest.name + ".part")
            with tarfile.open(tmp, "w:gz") as tar:
                for path in sorted(work.rglob("*")):
                    tar.add(path, arcname=path.relative_to(work).as_posix(), recursive=False)
            os.replace(tmp, dest)
        return manifest
    except BaseException:
        if archive or not any(dest.glob(MANIFEST)):
            shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        if archive:
            shutil.rmtree(work, ignore_errors=True)


def _extract(src: Path, into: Path) -> None:
    with tarfile.open(src, "r:*") as tar:
        for m in tar.getmembers():
            p = Path(m.name)
            if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):
                raise BackupError(f"{src}: unsafe member {m.name!r}; not a tiswatch backup")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # pragma: no cover - Python < 3.11.4; members were checked above
            tar.extractall(into)


def verify(tree: Path) -> dict[str, Any]:
    """Check a backup tree against its manifest and SQLite's integrity check; returns the manifest."""
    mpath = tree / MANIFEST
    try:
        manifest = json.loads(mpath.read_text("utf-8"))
    except (OSError, ValueError):
        raise BackupError(f"{tree}: no readable {MANIFEST}; not a tiswatch backup") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{mpath}: not a tiswatch backup manifest")
    listed = set(manifest.get("files", {}))
    present = {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file() and p.name != MANIFEST}
    if listed - present:
        raise BackupError(f"{tree}: {len(listed - present)} files of the manifest are missing, e.g. {sorted(listed - present)[0]}")
    for rel, meta in manifest["files"].items():
        p = tree / rel
        if p.stat().st_size != meta["size"] or _sha256(p) != meta["sha256"]:
            raise BackupError(f"{p}: does not match the manifest (size or SHA-256); the backup is damaged")
    for name in manifest.get("databases", {}):
        check = integrity(tree / name)
        if check != "ok":
            raise BackupError(f"{tree / name}: fails SQLite's integrity check ({check})")
    return manifest


def restore_backup(src: str | Path, home: str | Path, *, force: bool = False, now: datetime | None = None) -> dict[str, Any]:
    from ops.locks import is_locked, lock_dir, service_lock_path

    src, home = Path(src), Path(home)
    if not src.exists():
        raise BackupError(f"{src}: no such backup")
    if home.exists():
        holder = is_locked(service_lock_path(home))
        if holder:
            raise BackupError(f"{home}: `tiswatch run` is using it (pid {holder.get('pid')}); stop the service first")
        busy = [p for p in lock_dir(home).glob("crawl-*.lock") if is_locked(p)]
        if busy:
            raise BackupError(f"{home}: a crawl is running ({busy[0].name}); wait for it or stop it first")
        if any(home.iterdir()) and not force:
            raise BackupError(f"{home}: not empty; restore into a new directory, or pass --force (the current "
                              "data directory is then kept beside it, renamed)")
    home.parent.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}.restore-", dir=home.parent))
    try:
        if src.is_dir():
            shutil.copytree(src, staging, dirs_exist_ok=True)
        else:
            try:
                _extract(src, staging)
            except tarfile.TarError as e:
                raise BackupError(f"{src}: not a readable backup archive ({e})") from None
        manifest = verify(staging)
        (staging / MANIFEST).unlink()
        for d in ("evidence", "crawl", "logs", "locks"):
            (staging / d).mkdir(exist_ok=True)
        if home.exists():
            kept = home.with_name(f"{home.name}.replaced-{stamp}")
            if any(home.iterdir()):
                os.replace(home, kept)
                manifest["replaced"] = str(kept)
            else:
                home.rmdir()
        os.replace(staging, home)
        return manifest
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
