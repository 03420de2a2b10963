"""Retention: which evidence files may be deleted, and deleting them (`tiswatch store prune-evidence`);
which observations may be deleted (`tiswatch store prune-observations`, at the end of this file).

What is pruned (the policy, `[store] evidence_retention_days` and `evidence_keep_latest_flagged`):
an evidence capture (the files of one listing taken at one time, `evidence/<mp>/<item>/<time>/`) older
than the retention period, unless
- an officer has acted on the listing: its review status is anything but `new` (confirmed,
  dismissed, escalated, taken down), or the event log holds a `decision` event for it (an open case
  or a decision rests on that evidence, so it is never pruned), or
- it is the newest capture of a listing that is flagged now (the queue shows it), when
  `evidence_keep_latest_flagged` (the default).
A retention period of 0 keeps everything.

Pruning deletes the files and the capture's folder, and marks the evidence rows `pruned_at`: the
record that the files existed, their SHA-256 and sizes stay in the store. The decision is pure
(`decide`); `prune` does the I/O and never follows a path outside the evidence folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from listings.model import FLAGGED


@dataclass(frozen=True)
class Policy:
    days: int
    keep_latest_flagged: bool = True


@dataclass
class Report:
    examined: int = 0
    pruned: int = 0
    files: int = 0
    bytes: int = 0
    kept: dict[str, int] = field(default_factory=dict)  # why -> captures kept
    problems: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)  # what was (or, dry run, would be) pruned


def cutoff(policy: Policy, now: datetime) -> datetime | None:
    return None if policy.days <= 0 else now - timedelta(days=policy.days)


def decide(capture: dict[str, Any], decided: set[str], policy: Policy, now: datetime) -> tuple[bool, str]:
    """(prune?, why) for one capture as `ListingStore.evidence_captures` gives it."""
    c = cutoff(policy, now)
    if c is None:
        return False, "retention off"
    if datetime.fromisoformat(capture["created_at"]) >= c:
        return False, "within the retention period"
    if capture["key"] in decided or (capture.get("review_status") or "new") != "new":
        return False, "an officer acted on the listing"
    if policy.keep_latest_flagged and capture.get("newest") and capture.get("verdict") in FLAGGED:
        return False, "newest capture of a flagged listing"
    return True, "older than the retention period"


def prune(store: Any, root: Path, policy: Policy, decided: Iterable[str], now: datetime, dry_run: bool = False) -> Report:
    """Apply the policy to every capture older than the cutoff. `root` is the data directory (the
    evidence paths in the store are relative to it)."""
    rep = Report()
    c = cutoff(policy, now)
    if c is None:
        return rep
    keys = set(decided)
    root = root.resolve()
    ev_root = (root / "evidence").resolve()
    for cap in list(store.evidence_captures(c)):
        rep.examined += 1
        ok, why = decide(cap, keys, policy, now)
        if not ok:
            rep.kept[why] = rep.kept.get(why, 0) + 1
            continue
        size = sum(int(f.get("size") or 0) for f in cap["files"])
        rep.items.append({"key": cap["key"], "created_at": cap["created_at"], "files": len(cap["files"]), "bytes": size})
        rep.pruned += 1
        rep.files += len(cap["files"])
        rep.bytes += size
        if dry_run:
            continue
        folders = set()
        for f in cap["files"]:
            p = (root / f["path"]).resolve()
            if not p.is_relative_to(ev_root):
                rep.problems.append(f"{f['path']}: outside {ev_root}, left alone")
                continue
            try:
                p.unlink(missing_ok=True)
            except OSError as e:
                rep.problems.append(f"{p}: {e}")
                continue
            folders.add(p.parent)
        for d in folders:
            if d != ev_root and d.is_relative_to(ev_root):
                leftovers = [x for x in d.iterdir()] if d.exists() else []
                if all(x.name.endswith(".part") for x in leftovers):
                    shutil.rmtree(d, ignore_errors=True)
        store.mark_evidence_pruned(cap["key"], cap["created_at"], now)
    return rep


def observation_cutoff(days: int, now: datetime) -> datetime | None:
    """Observations last seen before this may be pruned; None when the policy keeps them all (days 0)."""
    return None if days <= 0 else now - timedelta(days=days)


def prune_observations(store: Any, days: int, decided: Iterable[str], now: datetime, dry_run: bool = False) -> int | None:
    """The observation retention policy ([store] observation_retention_days): observations (distinct
    views) last seen more than `days` ago are deleted, except the newest view of each listing (its
    current state), and every view of a listing an officer has acted on (review status other than
    new, or a decision in the event log: a case may rest on what it showed). Changes and verdicts stay,
    so a listing's timeline still says what changed and when. None when the policy is off."""
    c = observation_cutoff(days, now)
    if c is None:
        return None
    return store.prune_observations(c, set(decided), dry_run=dry_run)


def run_observation_retention(settings: Any, now: datetime) -> dict[str, Any]:
    """For the scheduler's retention job (ops/jobs.py): apply [store] observation_retention_days."""
    days = settings.store.observation_retention_days
    if days <= 0:
        return {"observations": "retention off ([store] observation_retention_days = 0)"}
    from listings.events import open_events
    from listings.store import open_store

    events = open_events(settings)
    try:
        decided = decided_keys(events)
    finally:
        events.close()
    store = open_store(settings)
    try:
        return {"observations_pruned": prune_observations(store, days, decided, now)}
    finally:
        store.close()


def decided_keys(events: Any) -> set[str]:
    """Listings with any `decision` event in the event log (read forward to the end)."""
    out: set[str] = set()
    after = 0
    while True:
        batch = events.read(after=after, limit=5000, kinds=["decision"])
        if not batch:
            return out
        out |= {e.key for e in batch}
        after = batch[-1].id
