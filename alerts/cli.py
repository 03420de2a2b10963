"""`tiswatch partners …`: partner accounts, keys and secrets, webhook delivery, dead letters, removal
checks and digests."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, rich_markup_mode="markdown",
                  help="Partners (ETDA, platforms) and their alert feeds: accounts, API keys, webhooks, deliveries, digests.")
console = Console()
err = Console(stderr=True)

_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str) -> timedelta:
    """'90s', '30m', '24h', '7d', '0' (seconds when no unit)."""
    m = _DUR.match(text)
    if not m:
        raise typer.BadParameter(f"{text!r} is not a duration (e.g. 0, 30m, 24h, 7d)")
    n = float(m[1])
    return timedelta(seconds=n * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]])


def _svc():
    from alerts.service import open_service
    from cli import state

    return open_service(state.settings())


def _fail(msg: str, code: int = 2) -> NoReturn:
    err.print(f"[red]{msg}[/red]")
    raise typer.Exit(code)


@contextmanager
def _service(*refusals: type[Exception]) -> Iterator[Any]:
    """The alerts service for one command, closed when it is done. A refused change (PartnerError, or
    one of `refusals`) ends the command with its message and exit code 2, not a traceback."""
    from alerts.store import PartnerError

    svc = _svc()
    try:
        yield svc
    except (PartnerError, *refusals) as e:
        _fail(str(e))
    finally:
        svc.close()


def _filters(base, marketplace, standard, verdict, min_risk, confirmed_only):
    from alerts.rules import Filters

    def pick(new, old):
        if new is None:
            return old
        return () if new == ["*"] else tuple(x.strip() for x in new if x.strip())

    return Filters(pick(marketplace, base.marketplaces), pick(standard, base.standards), pick(verdict, base.verdicts),
                   base.min_risk if min_risk is None else min_risk,
                   base.confirmed_only if confirmed_only is None else confirmed_only)


MarketOpt = Annotated[list[str] | None, typer.Option("--marketplace", "-m", help="only these marketplaces (repeatable; '*' = all)")]
StdOpt = Annotated[list[str] | None, typer.Option("--standard", "-s", help="only these TIS numbers, any edition (repeatable; '*' = all)")]
VerdictOpt = Annotated[list[str] | None, typer.Option("--verdict", help="only these verdicts: unlicensed, mislabeled, needs_review (repeatable; '*' = all)")]
RiskOpt = Annotated[int | None, typer.Option("--min-risk", min=0, max=100, help="minimum risk of automatic alerts (default: setting alerts.min_risk)")]
ConfOpt = Annotated[bool | None, typer.Option("--confirmed-only/--automatic", help="only officer-confirmed listings, or also automatic high-risk flags")]
ScopeOpt = Annotated[list[str] | None, typer.Option("--scope", help="alerts:read, alerts:feedback, licences:check (repeatable)")]
KindOpt = Annotated[str | None, typer.Option("--kind", help="etda, platform or other: who an officer's escalation reaches "
                                             "(to ETDA: etda partners; to the platform: the platform operating the listing's marketplace)")]
OperatesOpt = Annotated[list[str] | None, typer.Option("--operates", help="for --kind platform: a marketplace it operates (repeatable)")]


@app.command()
def add(
    partner_id: Annotated[str, typer.Argument(help="short id: lower-case letters, digits, '-' (e.g. etda, shopee)")],
    name: Annotated[str, typer.Option(help="display name")] = "",
    webhook: Annotated[str | None, typer.Option(help="webhook URL (https) for pushed alerts")] = None,
    email: Annotated[str | None, typer.Option(help="address for the daily digest")] = None,
    digest: Annotated[bool, typer.Option(help="send the daily digest to --email")] = False,
    marketplace: MarketOpt = None, standard: StdOpt = None, verdict: VerdictOpt = None, min_risk: RiskOpt = None,
    confirmed_only: ConfOpt = None, scope: ScopeOpt = None, kind: KindOpt = None, operates: OperatesOpt = None,
    concurrency: Annotated[int | None, typer.Option(help="webhook requests in flight (default: setting alerts.concurrency)")] = None,
    backfill: Annotated[bool, typer.Option(help="open alerts at once for listings that qualify now")] = True,
) -> None:
    """Add a partner. Prints its API key (and webhook secret) once: they are stored hashed / only here."""
    from alerts.model import DEFAULT_SCOPES
    from alerts.rules import Filters
    with _service() as svc:
        svc.engine.process_all()  # the partner's backfill starts from what is known now
        f = _filters(Filters(min_risk=svc.settings.alerts.min_risk), marketplace, standard, verdict, min_risk, confirmed_only)
        c = svc.store.add_partner(partner_id, name or partner_id, svc.clock.now(), scopes=tuple(scope or DEFAULT_SCOPES),
                                  filters=f, webhook_url=webhook, email=email, digest=digest,
                                  concurrency=concurrency or svc.settings.alerts.concurrency, kind=kind or "other",
                                  operates=tuple(operates or ()))
        n = svc.engine.reconcile(partner_id) if backfill else 0
    console.print(f"partner [bold]{c.partner.id}[/bold] added; {n} alerts opened from the current flags")
    console.print(f"API key (shown once, give it to the partner): [bold]{c.api_key}[/bold]")
    if c.webhook_secret:
        console.print(f"webhook secret (verify our signatures with it): [bold]{c.webhook_secret}[/bold]")


@app.command("list")
def list_() -> None:
    """All partners with their filters and delivery state."""
    with _service() as svc:
        t = Table("id", "name", "kind", "enabled", "scopes", "filters", "webhook", "pending", "dead", "failures")
        for p in svc.store.partners():
            st = svc.store.delivery_stats(p.id)
            f = p.filters
            desc = ", ".join(x for x in (
                "mp=" + "/".join(f.marketplaces) if f.marketplaces else "",
                "tis=" + "/".join(f.standards) if f.standards else "",
                "verdict=" + "/".join(f.verdicts) if f.verdicts else "",
                "confirmed only" if f.confirmed_only else f"risk≥{f.min_risk}") if x)
            kind = p.kind + (f" ({'/'.join(p.operates)})" if p.operates else "")
            t.add_row(p.id, p.name, kind, "yes" if p.enabled else "[red]no[/red]", " ".join(p.scopes), desc,
                      p.webhook_url or "—", str(st["pending"]), str(st["dead"]), str(p.failures))
        console.print(t)


@app.command()
def show(partner_id: str) -> None:
    """One partner: filters, keys (ids only), webhook and delivery figures."""
    with _service() as svc:
        p = svc.store.partner(partner_id)
        if p is None:
            _fail(f"no partner {partner_id!r}")
        console.print_json(json.dumps({
            **p.public(), "keys": svc.store.keys(p.id), "deliveries": svc.store.delivery_stats(p.id),
            "open_alerts": len(svc.store.open_alerts(p.id))}, ensure_ascii=False))


@app.command("set")
def set_(
    partner_id: str,
    name: Annotated[str | None, typer.Option()] = None,
    webhook: Annotated[str | None, typer.Option(help="webhook URL; '' removes it")] = None,
    email: Annotated[str | None, typer.Option(help="digest address; '' removes it")] = None,
    digest: Annotated[bool | None, typer.Option("--digest/--no-digest")] = None,
    marketplace: MarketOpt = None, standard: StdOpt = None, verdict: VerdictOpt = None, min_risk: RiskOpt = None,
    confirmed_only: ConfOpt = None, scope: ScopeOpt = None, kind: KindOpt = None, operates: OperatesOpt = None,
    concurrency: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Change a partner. New filters (or kind) apply at once: alerts that now qualify are opened, those
    that no longer do are retracted."""
    with _service() as svc:
        p = svc.store.partner(partner_id)
        if p is None:
            _fail(f"no partner {partner_id!r}")
        f = _filters(p.filters, marketplace, standard, verdict, min_risk, confirmed_only)
        q, secret = svc.store.update_partner(partner_id, svc.clock.now(), name=name, webhook_url=webhook, email=email,
                                             digest=digest, filters=f, scopes=tuple(scope) if scope else None,
                                             concurrency=concurrency, kind=kind,
                                             operates=tuple(operates) if operates is not None else None)
        changed = f != p.filters or (q.kind, q.operates) != (p.kind, p.operates)
        n = svc.engine.reconcile(partner_id) if changed else 0
    console.print(f"partner {q.id} updated" + (f"; {n} alerts opened or retracted by the new filters" if n else ""))
    if secret:
        console.print(f"webhook secret (shown once): [bold]{secret}[/bold]")


@app.command("rotate-key")
def rotate_key(partner_id: str,
               grace: Annotated[str, typer.Option(help="how long the old key keeps working (0, 30m, 24h, 7d)")] = "24h") -> None:
    """A new API key for a partner (shown once); the old one stops after the grace period."""
    with _service() as svc:
        key = svc.store.rotate_key(partner_id, svc.clock.now(), parse_duration(grace))
    console.print(f"new API key (shown once): [bold]{key}[/bold]\nthe previous key works for {grace} more")


@app.command("rotate-secret")
def rotate_secret(partner_id: str,
                  grace: Annotated[str, typer.Option(help="how long webhooks are signed with the old secret too")] = "24h") -> None:
    """A new webhook secret (shown once). During the grace period every webhook carries two signatures,
    one per secret, so the partner can switch without losing a delivery."""
    with _service() as svc:
        s = svc.store.rotate_secret(partner_id, svc.clock.now(), parse_duration(grace))
    console.print(f"new webhook secret (shown once): [bold]{s}[/bold]\nwebhooks are signed with both for {grace}")


@app.command("rotate-encryption-key")
def rotate_encryption_key(
    reencrypt_only: Annotated[bool, typer.Option("--reencrypt-only", help="only encrypt every secret again with the "
                                                 "first key of the setting alerts.secrets_key (after putting a new key first in it)")] = False,
    lost: Annotated[bool, typer.Option("--lost", help="the key is lost: make a new one and give every webhook partner "
                                       "a new secret (printed once; their old secret stops working)")] = False,
) -> None:
    """A new key for the webhook secrets stored in alerts.sqlite (the key file of the setting
    alerts.secrets_key_file): every secret is encrypted again with it, then the old key is dropped.
    Running delivery workers pick the new key up by themselves. Back up the key file afterwards."""
    from alerts.secretbox import SecretsKeyError

    with _service(SecretsKeyError) as svc:
        if lost:
            fresh = svc.store.replace_lost_key(svc.clock.now())
            console.print(f"{svc.store.box.source.describe()}: ready; {len(fresh)} partners need their new secret:")
            for pid, secret in fresh.items():
                console.print(f"  {pid}: [bold]{secret}[/bold]")
            return
        n = svc.store.reencrypt_secrets() if reencrypt_only else svc.store.rotate_encryption_key()
    console.print(f"{n} webhook secrets encrypted again" + ("" if reencrypt_only else
                                                            f"; new key in {svc.store.box.source.describe()}"))


@app.command()
def disable(partner_id: str) -> None:
    """Stop a partner at once: its keys are refused, no alerts are made or delivered for it."""
    _enable(partner_id, False)


@app.command()
def enable(partner_id: str) -> None:
    """Enable a partner again; its alerts are brought up to date with what qualifies now."""
    _enable(partner_id, True)


def _enable(partner_id: str, on: bool) -> None:
    with _service() as svc:
        svc.store.update_partner(partner_id, svc.clock.now(), enabled=on)
        n = svc.engine.reconcile(partner_id) if on else 0
    console.print(f"partner {partner_id} {'enabled' if on else 'disabled'}" + (f"; {n} alerts brought up to date" if n else ""))


@app.command()
def deliver(loop: Annotated[bool, typer.Option("--loop", help="keep running (Ctrl-C stops)")] = False) -> None:
    """Turn new listing events into alerts and deliver the webhooks that are due (once, or --loop)."""
    import threading

    from alerts.delivery import deliver as run
    from cli import state

    s = state.settings()
    stop = threading.Event()
    try:
        st = run(s, loop=loop, stop=stop)
    except KeyboardInterrupt:
        stop.set()
        return
    console.print(f"{st.events} events, {st.messages} alert messages; {st.attempts} webhook attempts: "
                  f"{st.delivered} delivered, {st.failed} to retry, {st.dead} dead-lettered")


@app.command()
def deliveries(
    partner_id: Annotated[str | None, typer.Argument(help="only this partner")] = None,
    state_: Annotated[str | None, typer.Option("--state", help="pending, delivered or dead")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 30,
) -> None:
    """Recent webhook deliveries: attempts, last status, error."""
    with _service() as svc:
        t = Table("message", "partner", "seq", "type", "state", "attempts", "last status", "last error", "next / done")
        for r in svc.store.deliveries(partner_id, state_, limit):
            t.add_row(r["msg_id"], r["partner_id"], str(r["seq"]), r["type"], r["state"], str(r["attempts"]),
                      str(r["last_status"] or "—"), (r["last_error"] or "")[:60],
                      r["delivered_at"] or r["dead_at"] or r["next_at"])
        console.print(t)
        console.print(svc.store.delivery_stats(partner_id))


@app.command()
def replay(
    partner_id: Annotated[str | None, typer.Argument(help="only this partner's dead letters")] = None,
    message: Annotated[list[str] | None, typer.Option("--message", help="only these webhook ids (repeatable)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every partner's dead letters")] = False,
) -> None:
    """Put dead-lettered webhooks back in the queue (same webhook-id; the next `deliver` sends them)."""
    if not (partner_id or message or all_):
        _fail("name a partner, --message ID, or --all")
    with _service() as svc:
        n = svc.store.replay(partner_id, svc.clock.now(), message)
    console.print(f"{n} deliveries queued again")


@app.command()
def verify(list_only: Annotated[bool, typer.Option("--list", help="only print the listings awaiting a check (JSON Lines)")] = False,
           crawl: Annotated[bool, typer.Option("--crawl", help="first revisit them with the crawler (one revisit crawl per marketplace)")] = False) -> None:
    """Check listings that partners reported "removed": crawl evidence (with --crawl, a revisit of just
    those pages first), then an HTTP check where the marketplace allows one (setting
    alerts.verify_http_marketplaces)."""
    from alerts.verify import revisit_removed, verify_removals
    from cli import state

    with _service() as svc:
        svc.engine.process_all()
        if crawl and not list_only:
            for mp, r in revisit_removed(svc.settings, svc.store, svc.listings, config=state.config).items():
                console.print(f"revisit of {mp}: {getattr(r, 'reason', r)}")
            svc.engine.process_all()  # the crawl's delisted events settle reports
        if list_only:
            for fb in svc.store.awaiting_verification():
                d = svc.listings.get(fb["key"]) or {}
                sys.stdout.write(json.dumps({"key": fb["key"], "url": d.get("url"), "partner": fb["partner_id"],
                                             "alert_id": fb["alert_id"], "reported_at": fb["at"]}, ensure_ascii=False) + "\n")
            return
        a = svc.settings.alerts
        r = verify_removals(svc.store, svc.listings, svc.clock, http_marketplaces=tuple(a.verify_http_marketplaces),
                            give_up=timedelta(days=a.verify_days), user_agent=svc.settings.crawl.user_agent)
    console.print(f"{r.checked} checked: {r.gone} gone, {r.still_listed} still listed, {r.unverified} unverified, "
                  f"{r.undecided} still pending")


@app.command()
def digest(
    day: Annotated[str | None, typer.Option(help="YYYY-MM-DD (Bangkok); default yesterday")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the digests instead of sending them")] = False,
) -> None:
    """Send the daily digests (partners with --digest and an e-mail; officer groups of the alerts.groups setting)."""
    from alerts.digest import send_digests

    try:
        d = date.fromisoformat(day) if day else None
    except ValueError:
        _fail(f"--day {day!r}: not a date YYYY-MM-DD")
        return
    with _service() as svc:
        svc.engine.process_all()
        out = send_digests(svc, d, dry_run=dry_run)
    failed = 0
    for o in out:
        if o.status == "dry-run":
            console.print(f"[bold]to {o.recipient}[/bold]\n{o.detail}")
        else:
            console.print(f"{o.recipient or '-'} ({o.name}): {o.status} {o.detail}")
            failed += o.status == "failed"
    if not out:
        console.print("no digest to send (no partner with --digest and an e-mail, no alerts.groups in the configuration)")
    raise typer.Exit(1 if failed else 0)
