"""`tiswatch jobs ...`, `tiswatch backup`, `tiswatch restore`: the operators' commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

jobs_app = typer.Typer(no_args_is_help=False, invoke_without_command=True,
                       help="The scheduler's jobs: what runs when, how the last runs went; run one now.")
console = Console()
err = Console(stderr=True)


def _state():
    from cli import state

    return state


def _settings():
    s = _state().settings()
    s.ensure_home()
    return s


def _context():
    from ops.jobs import JobContext
    from ops.schedule import JobConfigError

    ctx = JobContext(_settings(), _state().config)
    try:
        ctx.specs()
    except JobConfigError as e:
        err.print(f"[red]configuration error[/red]\n{e}")
        raise typer.Exit(2) from None
    return ctx


def _ago(secs: float) -> str:
    span = abs(secs)
    return (f"{span / 86400:.0f}d" if span >= 86400 * 2 else f"{span / 3600:.0f}h" if span >= 3600 * 2
            else f"{span / 60:.0f}m" if span >= 60 else f"{span:.0f}s")


def _short(dt: datetime, tz: str, now: datetime) -> str:
    """'15:26 in 6h' (today), '11-25 08:00' (another day)."""
    from zoneinfo import ZoneInfo

    local, today = dt.astimezone(ZoneInfo(tz)), now.astimezone(ZoneInfo(tz))
    if local.date() != today.date():
        return local.strftime("%m-%d %H:%M")
    secs = (dt - now).total_seconds()
    return local.strftime("%H:%M") + (f" in {_ago(secs)}" if secs >= 0 else " (due)")


def _last(run: dict[str, Any] | None, now: datetime) -> str:
    """'ok 5m ago, 4.2s' with the status coloured; 'never'."""
    if not run:
        return "[dim]never[/]"
    started = datetime.fromisoformat(run["started_at"])
    took = f", {run['seconds']:.1f}s" if run.get("seconds") is not None else ""
    return f"[{_COLOURS.get(run['status'], 'white')}]{run['status']}[/] {_ago((now - started).total_seconds())} ago{took}"


_COLOURS = {"ok": "green", "failed": "red", "timed_out": "red", "blocked": "yellow", "stopped": "yellow",
            "skipped": "dim", "running": "cyan"}


@jobs_app.callback()
def jobs_list(
    ctx_: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """List the jobs: schedule, next run, last run, how it ended and how long it took.

    Schedules come from the schedule section of the configuration. Next runs are the service's own
    when it runs (`tiswatch run`); otherwise they are estimates from now."""
    if ctx_.invoked_subcommand is not None:
        return
    from ops.locks import is_locked, service_lock_path
    from ops.status import job_rows, summary

    ctx = _context()
    s = ctx.settings
    now = datetime.now(UTC)
    rows = job_rows(s, list(ctx.specs().values()), now)
    if as_json:
        out = []
        for r in rows:
            d = {k: v for k, v in r.items() if k not in ("last", "last_finished")}
            d["next_run"] = r["next_run"].isoformat() if r["next_run"] else None
            d["last"] = r["last"]
            out.append(d)
        console.print_json(json.dumps(out, ensure_ascii=False, default=str))
        return
    svc = is_locked(service_lock_path(s.home))
    console.print(f"service: [green]running[/green] (pid {svc.get('pid')}, since {svc.get('since')})" if svc
                  else "service: [yellow]not running[/yellow] (`tiswatch run` starts it; next runs below are estimates)")
    wide = console.width >= 140
    t = Table()
    for c in ("job", "schedule", "next run", "last run") + (("details",) if wide else ()):
        t.add_column(c, no_wrap=c != "details", overflow="fold")
    notes = []
    for r in rows:
        t.add_row(r["id"], r["schedule"], _short(r["next_run"], s.schedule.timezone, now) if r["next_run"] else "—",
                  _last(r["last"], now), *([summary(r["last"])] if wide else []))
        if not wide and summary(r["last"]):
            notes.append(f"  [bold]{r['id']}[/]: {summary(r['last'])}")
    console.print(t)
    for n in notes:
        console.print(n, highlight=False)


@jobs_app.command("run")
def jobs_run(job: Annotated[str, typer.Argument(help="job id, e.g. crawl:shopee, registry, recheck (see `tiswatch jobs`)")]) -> None:
    """Run one job now, in this process, recorded in the job history like a scheduled run.

    Safe while the service runs: the same job does not run twice at once (it is then skipped), and a
    crawl waits for no one: if its marketplace is being crawled, it is skipped. Exit status: 0 ok or
    skipped, 1 failed or timed out, 3 blocked, 2 no such job."""
    from ops.jobs import UnknownJob, run
    from ops.logs import setup_logging

    ctx = _context()
    setup_logging(ctx.settings, "jobs-run")
    try:
        with console.status(f"running {job} …"):
            out = run(ctx, job, trigger="manual")
    except UnknownJob:
        err.print(f"[red]no job {job!r}[/red]; jobs: {', '.join(ctx.specs())}")
        raise typer.Exit(2) from None
    finally:
        ctx.close()
    colour = _COLOURS.get(out.status, "white")
    console.print(f"{job}: [{colour}]{out.status}[/] in {out.seconds:.1f}s")
    if out.result:
        console.print_json(json.dumps(out.result, ensure_ascii=False, default=str))
    if out.error:
        err.print(out.error)
    raise typer.Exit({"ok": 0, "skipped": 0, "blocked": 3}.get(out.status, 1))


@jobs_app.command("history")
def jobs_history(
    job: Annotated[str | None, typer.Argument(help="only this job")] = None,
    limit: Annotated[int, typer.Option(help="runs to show")] = 30,
) -> None:
    """The latest job runs, newest first."""
    from ops.history import open_history
    from ops.status import summary

    s = _settings()
    h = open_history(s)
    try:
        runs = h.runs(job, limit)
    finally:
        h.close()
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(s.schedule.timezone)
    t = Table()
    for c in ("#", "job", "trigger", "started", "result", "details"):
        t.add_column(c, no_wrap=c != "details", overflow="fold")
    for r in runs:
        took = f" {r['seconds']:.1f}s" if r.get("seconds") is not None else ""
        t.add_row(str(r["id"]), r["job"], r["trigger"],
                  datetime.fromisoformat(r["started_at"]).astimezone(tz).strftime("%m-%d %H:%M:%S"),
                  f"[{_COLOURS.get(r['status'], 'white')}]{r['status']}[/]{took}", summary(r))
    console.print(t)


# ---- backup and restore -------------------------------------------------------------------------------
def backup(
    dest: Annotated[Path, typer.Argument(help="a new directory, or a file ending in .tar.gz")],
    evidence: Annotated[bool, typer.Option(help="include the evidence files (large)")] = True,
) -> None:
    """A consistent snapshot of the data directory while tiswatch runs.

    Every SQLite database is copied with SQLite's online backup API (a consistent view even while
    crawls write), then the evidence files, the crawl reports and the secrets; a manifest lists every
    file with its SHA-256. Restore it with `tiswatch restore`. The Elasticsearch/OpenSearch index is
    backed up with the snapshot API instead (README, Operations)."""
    from ops.backup import BackupError, make_backup

    s = _settings()
    try:
        with console.status(f"backing up {s.home} …"):
            m = make_backup(s.home, dest, evidence=evidence)
    except BackupError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{dest}: {len(m['files'])} files, {m['bytes'] / 1e6:.1f} MB "
                  f"({', '.join(f'{k} {v}' for k, v in m['databases'].items())})")


def restore(
    src: Annotated[Path, typer.Argument(help="a backup directory or .tar.gz made by `tiswatch backup`")],
    force: Annotated[bool, typer.Option(help="replace a data directory that is not empty")] = False,
) -> None:
    """Restore a backup into the data directory (--home). tiswatch must be stopped.

    Every file is checked against the backup's manifest (SHA-256) and every database with SQLite's
    integrity check before anything is replaced; the data directory is then swapped in whole. Without
    --force the data directory must be empty or absent."""
    from ops.backup import BackupError, restore_backup

    st = _state()
    s = st.settings()
    try:
        with console.status(f"restoring {src} into {s.home} …"):
            m = restore_backup(src, s.home, force=force)
    except BackupError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    console.print(f"restored {len(m['files'])} files into {s.home} (backup of {m['created']})")
