"""`tiswatch search`, `tiswatch history`, `tiswatch seller` and `tiswatch store ...`: the listing store
from the command line. Listing text is printed as data (rich markup in it is escaped)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from listings import timeline as T

if TYPE_CHECKING:
    from listings.store import ListingStore

console = Console()
err = Console(stderr=True)
store_app = typer.Typer(no_args_is_help=True, help="The listing store: info, schema migration, copying between "
                                                   "SQLite and Elasticsearch/OpenSearch, export/import, evidence retention.")


def _settings():
    from cli import state

    return state.settings()


def _open(**kw: Any) -> ListingStore:
    from listings.store import StoreError, open_store

    try:
        return open_store(_settings(), **kw)
    except StoreError as e:
        err.print(f"[red]{escape(str(e))}[/red]")
        raise typer.Exit(2) from None


def _fail(msg: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]{escape(msg)}[/red]")
    return typer.Exit(code)


def _dump(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=1, default=str) + "\n")


# ---- search -----------------------------------------------------------------------------------------
def search(
    query: Annotated[str, typer.Argument(help="words to find (Thai or English); empty: every listing")] = "",
    seller: Annotated[str | None, typer.Option(help="a seller id, or part of a seller's name")] = None,
    marketplace: Annotated[str | None, typer.Option(help="shopee, lazada, shop, ...")] = None,
    verdict: Annotated[str | None, typer.Option(help="not_controlled, licensed, unlicensed, mislabeled, needs_review")] = None,
    tis: Annotated[str | None, typer.Option(help="a TIS standard, any edition: 2432 or 2432-2555")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="seen on or after this day (YYYY-MM-DD, Bangkok) or time")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="seen on or before this day or time")] = None,
    price_min: Annotated[float | None, typer.Option(help="lowest price")] = None,
    price_max: Annotated[float | None, typer.Option(help="highest price")] = None,
    flagged: Annotated[bool, typer.Option("--flagged", help="only flagged listings (unlicensed, mislabeled, needs_review)")] = False,
    status: Annotated[str | None, typer.Option(help="active or delisted")] = None,
    order: Annotated[str, typer.Option(help="relevance (whole words first, then risk), risk, recent, price")] = "relevance",
    limit: Annotated[int, typer.Option(min=0, max=1000, help="listings to show")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="skip this many first")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON: total, terms, facets, hits with why they matched")] = False,
) -> None:
    """Search the listings: Thai words and substrings, with filters; shows why each one matched.

    Every word of QUERY must be found, as a whole word or (three letters or more) inside a longer
    one: `ปลั๊กพ่วง` finds `ปลั๊กพ่วงมอก.2432`, and so does `ปลั๊ก พ่วง`. No query syntax: quotes,
    AND/OR, * and the like are text to look for.

    Examples: tiswatch search "ปลั๊กพ่วง" --verdict unlicensed --marketplace shopee;
    tiswatch search --seller 12345 --from 2026-03-01 --to 2026-03-31 --json"""
    from listings.model import VERDICTS
    from listings.store import SEARCH_ORDERS, SearchQuery

    if verdict and verdict not in VERDICTS:
        raise _fail(f"--verdict {verdict!r}: one of {', '.join(VERDICTS)}")
    if order not in SEARCH_ORDERS:
        raise _fail(f"--order {order!r}: one of {', '.join(SEARCH_ORDERS)}")
    if status and status not in ("active", "delisted"):
        raise _fail(f"--status {status!r}: active or delisted")
    try:
        q = SearchQuery(text=query, seller=seller, marketplace=marketplace, verdict=verdict, tis=tis,
                        date_from=T.parse_when(date_from), date_to=T.parse_when(date_to, end=True), price_min=price_min,
                        price_max=price_max, flagged_only=flagged, status=status, order=order, limit=limit, offset=offset)
    except ValueError as e:
        raise _fail(str(e)) from None
    st = _open()
    try:
        r = st.search(q)
    finally:
        st.close()
    if as_json:
        _dump({"total": r.total, "terms": r.terms, "offset": offset, "facets": {k: [list(x) for x in v] for k, v in r.facets.items()},
               "hits": r.hits})
        return
    if query.strip() and not r.terms:
        err.print("[yellow]nothing to search for in the query (only punctuation or symbols)[/yellow]")
    t = Table(title=f"{r.total:,} listings" + (f" for {escape(' '.join(r.terms))}" if r.terms else ""), title_justify="left")
    for c, kw in (("risk", {"justify": "right"}), ("verdict", {}), ("listing", {"overflow": "fold"}), ("price", {"justify": "right"}),
                  ("seller", {}), ("title", {"overflow": "fold"}), ("why", {})):
        t.add_column(c, **kw)
    for h in r.hits:
        why = "; ".join(f"{w['term']}: {w['how']} in {w['field']}" for w in h.get("why", []))
        t.add_row("" if h["risk"] is None else str(h["risk"]), h["verdict"] or "—", escape(h["key"]),
                  "" if h["price"] is None else f"{h['price']:,.2f}", escape(h.get("seller") or ""),
                  escape((h.get("title") or "")[:90]), escape(why))
    console.print(t)
    for name in ("marketplace", "verdict", "tis_no", "seller"):
        vals = r.facets.get(name) or []
        if vals:
            console.print(f"[dim]{name}:[/dim] " + ", ".join(f"{escape(str(v))} {n}" for v, n in vals[:8]))
    if r.total > offset + len(r.hits):
        console.print(f"[dim]showing {offset + 1}–{offset + len(r.hits)}; next: --offset {offset + len(r.hits)}[/dim]")


# ---- history ----------------------------------------------------------------------------------------
def _resolve(st: ListingStore, ref: str) -> str:
    keys = st.resolve(ref)
    if not keys:
        raise _fail(f"no listing {ref!r} (give marketplace:item_id, the listing's URL or its item id)", 1)
    if len(keys) > 1:
        raise _fail(f"{ref!r} is more than one listing: {', '.join(keys[:10])}; give marketplace:item_id", 1)
    return keys[0]


def history(
    listing: Annotated[str, typer.Argument(help="marketplace:item_id, the listing's URL, or its item id")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON: the listing, its timeline and the raw history")] = False,
) -> None:
    """A listing's timeline: views, changes, verdicts, evidence, in time order.

    When it was first seen, every view (price, sold count), every change (price, title, claim,
    seller, brand, stock, delisted, relisted), every verdict with the registry version it used,
    evidence captured, and when it was last seen. Times in Asia/Bangkok."""
    st = _open()
    try:
        key = _resolve(st, listing)
        d = st.get(key)
        h = st.history(key)
        ev = st.evidence(key)
    finally:
        st.close()
    assert d is not None
    tl = T.listing_timeline(d, h, ev)
    if as_json:
        _dump({"listing": d, "timeline": tl, "history": h, "evidence": ev})
        return
    console.print(f"[bold]{escape(d.get('title') or '')}[/bold]")
    console.print(f"{escape(key)} · {escape(d.get('url') or '—')}")
    console.print(f"seller {escape(d.get('seller') or '—')} ({escape(d.get('seller_id') or '—')}) · "
                  f"now: {d['verdict'] or 'not checked'} (risk {d['risk']}) · {d['status']} · review {d['review_status']}")
    t = Table(show_header=True, header_style="bold")
    t.add_column("when (Bangkok)")
    t.add_column("what", overflow="fold")
    for e in tl:
        style = {"verdict": "magenta", "change": "cyan", "evidence": "green"}.get(e["kind"], "")
        text = escape(T.describe(e))
        t.add_row(T.local(e["at"]), f"[{style}]{text}[/{style}]" if style else text)
    console.print(t)


# ---- seller -----------------------------------------------------------------------------------------
def seller(
    who: Annotated[str, typer.Argument(metavar="SELLER", help="marketplace:seller_id, a seller or shop id, or part of a shop name")],
    limit: Annotated[int, typer.Option(min=1, max=5000, help="timeline entries to show")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """A seller's profile across marketplaces and the timeline of their listings.

    Listings, flagged share, first and last seen, per account and in all. Several matching accounts
    are listed; give marketplace:seller_id to see one with its listings' timeline."""
    st = _open()
    try:
        found = st.sellers(who, limit=50)
        if not found:
            raise _fail(f"no seller matches {who!r}", 1)
        exact = [p for p in found if who in (p["seller_id"], f"{p['marketplace']}:{p['seller_id']}", p.get("shop_id"))]
        one = exact[0] if len(exact) == 1 else (found[0] if len(found) == 1 else None)
        profile = st.seller(one["marketplace"], one["seller_id"]) if one else None
        events = st.seller_history(one["marketplace"], one["seller_id"], limit) if one else []
    finally:
        st.close()
    if as_json:
        _dump({"accounts": found, "summary": T.seller_summary(found), "profile": profile, "timeline": events})
        return
    s = T.seller_summary(found)
    t = Table(title=f"{len(found)} seller account(s) matching {escape(who)}: {s['listings']:,} listings, "
                    f"{s['flagged_share'] * 100:.0f}% flagged", title_justify="left")
    for c in ("account", "name", "listings", "flagged", "active", "first seen", "last seen"):
        t.add_column(c, overflow="fold")
    for p in found:
        t.add_row(escape(f"{p['marketplace']}:{p['seller_id']}"), escape(p.get("name") or ""), str(p["listings"]),
                  f"{p['flagged']} ({p['flagged_share'] * 100:.0f}%)", str(p["active"]), T.local(p["first_seen"]), T.local(p["last_seen"]))
    console.print(t)
    if profile is None:
        console.print("[dim]give one account as marketplace:seller_id for its listings and timeline[/dim]")
        return
    names = profile.get("names") or []
    if len(names) > 1:
        console.print("names used: " + ", ".join(escape(n) for n in names))
    console.print("verdicts: " + ", ".join(f"{k} {v}" for k, v in profile.get("by_verdict", {}).items()))
    t = Table(title="timeline of the seller's listings", title_justify="left")
    t.add_column("when (Bangkok)")
    t.add_column("listing")
    t.add_column("what", overflow="fold")
    for e in events:
        what = "first seen" if e["kind"] == "listed" else \
            T.describe({"kind": "change", "field": e["kind"], "label": T.CHANGE_LABELS.get(e["kind"], e["kind"]),
                        "old": e.get("old"), "new": e.get("new")}) if e["kind"] != "verdict" else f"verdict {e['new']}"
        t.add_row(T.local(e["at"]), escape(f"{e['key']} {(e.get('title') or '')[:40]}"), escape(what))
    console.print(t)


# ---- store operations -------------------------------------------------------------------------------
@store_app.command("info")
def info(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Where the listings are kept, the schema version, how many of each and how big."""
    st = _open()
    try:
        i = st.info()
    finally:
        st.close()
    if as_json:
        _dump(i)
        return
    console.print(f"{escape(i['backend'])} at {escape(i['location'])}, schema v{i['schema_version']}, {i['bytes'] / 1e6:,.1f} MB")
    console.print(", ".join(f"{k} {v:,}" for k, v in i["counts"].items()))
    for o in i.get("observation_indices", []):
        console.print(f"  {o['index']}: {o['docs']:,} observations{' (write index)' if o['write'] else ''}")
    if i.get("rollover"):
        console.print(f"observation rollover: {i['rollover']}")


@store_app.command("migrate")
def migrate_cmd(no_backup: Annotated[bool, typer.Option("--no-backup", help="do not copy the database first")] = False) -> None:
    """Bring the SQLite listing store (listings.sqlite) to this tiswatch's schema, in place.

    Each step runs in one transaction (a failed step changes nothing), after a consistent copy of
    the database next to it (listings.sqlite.v1-<time>.bak) unless --no-backup."""
    from listings.sqlite_migrate import migrate
    from listings.store import StoreError

    s = _settings()
    if s.store.backend != "sqlite":
        console.print("the Elasticsearch/OpenSearch store sets itself up (templates, aliases) when opened; nothing to migrate")
        _open().close()
        return
    try:
        rep = migrate(s.listings_db, make_backup=not no_backup, say=lambda m: console.print(escape(m)))
    except StoreError as e:
        raise _fail(str(e)) from None
    if not rep["steps"]:
        console.print(f"{s.listings_db}: " + ("no database yet" if rep["from"] is None else f"already at schema v{rep['to']}"))
    else:
        console.print(f"{s.listings_db}: schema v{rep['from']} -> v{rep['to']}" + (f"; backup {rep['backup']}" if rep["backup"] else ""))


def _other(to: str, es_url: str | None, prefix: str | None, sqlite: Path | None) -> Any:
    from listings.store import StoreError

    s = _settings()
    try:
        if to == "es":
            from listings.es_store import ElasticStore

            st = s.store.model_copy(update={k: v for k, v in (("es_url", es_url), ("es_prefix", prefix)) if v})
            return ElasticStore.from_settings(st)
        from listings.sqlite_store import SqliteStore

        s.ensure_home()
        return SqliteStore(sqlite or s.listings_db)
    except StoreError as e:
        raise _fail(str(e)) from None


def _local(sqlite: Path | None) -> Any:
    from listings.sqlite_store import SqliteStore
    from listings.store import StoreError

    s = _settings()
    s.ensure_home()
    try:
        return SqliteStore(sqlite or s.listings_db)
    except StoreError as e:
        raise _fail(str(e)) from None


@store_app.command("reindex")
def reindex(
    to: Annotated[str, typer.Option("--to", help="es: copy SQLite to the cluster; sqlite: copy the cluster to SQLite")],
    es_url: Annotated[str | None, typer.Option(help="cluster URL (default [store] es_url)")] = None,
    prefix: Annotated[str | None, typer.Option(help="index prefix (default [store] es_prefix)")] = None,
    sqlite: Annotated[Path | None, typer.Option(help="SQLite file (default listings.sqlite in the data directory)")] = None,
    merge: Annotated[bool, typer.Option(help="write into a store that holds listings already (the copied ones replace theirs)")] = False,
) -> None:
    """Copy everything (listings, observations, changes, verdicts, evidence references, crawl state)
    from the SQLite store to an Elasticsearch/OpenSearch cluster, or back. The target is set up as
    needed; a target that already holds listings is refused unless --merge. Then set [store] backend."""
    from listings.copy import copy_store

    if to not in ("es", "sqlite"):
        raise _fail("--to es or --to sqlite")
    src = _local(sqlite) if to == "es" else _other("es", es_url, prefix, None)
    dst = _other(to, es_url, prefix, sqlite)
    try:
        n = dst.counts()["listings"]
        if n and not merge:
            raise _fail(f"{dst.info()['location']} holds {n:,} listings already; --merge to copy into it anyway")
        total = src.counts()["listings"]
        with console.status("copying …") as status:
            rep = copy_store(src, dst, lambda k: status.update(f"copying … {k:,} of {total:,} listings"))
    finally:
        src.close()
        dst.close()
    console.print(f"copied {rep['listings']:,} listings ({rep['observations']:,} observations) and {rep['crawl_state']:,} crawl "
                  f"states to {escape(rep['to'])} in {rep['seconds']:.1f}s")


@store_app.command("export")
def export(
    out: Annotated[Path | None, typer.Option(help="write here instead of standard output")] = None,
) -> None:
    """Everything in the store as JSON Lines: a meta line, then one line per listing (its current
    state with its whole history and evidence references), then the crawl state. `tiswatch store
    import` reads it back (into either backend)."""
    st = _open()
    n = 0
    sink = out.open("w", encoding="utf-8") if out else sys.stdout
    try:
        for rec in st.dump():
            sink.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
            n += 1
    finally:
        st.close()
        if out:
            sink.close()
    err.print(f"{n - 1:,} records" + (f" written to {out}" if out else ""))


@store_app.command("import")
def import_(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON Lines from `tiswatch store export`")]) -> None:
    """Load an export into the store. A listing already stored is replaced by the file's copy; a line
    that is not a valid record is reported (file:line) and skipped."""
    from listings.store import StoreError

    st = _open()
    bad = 0

    def records():
        nonlocal bad
        with path.open(encoding="utf-8-sig") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    if not isinstance(rec, dict) or rec.get("type", "listing") not in ("meta", "listing", "crawl_state", "listing_images"):
                        raise ValueError("not a store record")
                    if rec.get("type", "listing") == "listing":
                        for k in ("key", "marketplace", "item_id", "first_seen", "last_seen"):
                            if not rec.get(k):
                                raise ValueError(f"no {k}")
                    elif rec["type"] == "listing_images" and not (rec.get("key") and isinstance(rec.get("images"), list)):
                        raise ValueError("listing pictures without key or images")  # images/ (re-used photos)
                except ValueError as e:
                    err.print(f"[yellow]{escape(str(path))}:{n}: {escape(str(e))}[/yellow]")
                    bad += 1
                    continue
                yield rec

    try:
        n = st.load(records())
    except StoreError as e:
        raise _fail(str(e)) from None
    finally:
        st.close()
    console.print(f"{n:,} records loaded" + (f", {bad} bad lines skipped" if bad else ""))
    if bad and not n:
        raise typer.Exit(1)


@store_app.command("prune-evidence")
def prune_evidence(
    days: Annotated[int | None, typer.Option(min=0, help="retention in days (default [store] evidence_retention_days; 0 keeps all)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be pruned, delete nothing")] = False,
) -> None:
    """Delete evidence files older than the retention period, except evidence of listings an officer
    has acted on (any review status but new, or a decision in the event log) and the newest capture
    of a listing flagged now. The store keeps the record of pruned files (path, SHA-256, size)."""
    from listings.events import open_events
    from listings.retention import Policy, decided_keys, prune

    s = _settings()
    policy = Policy(s.store.evidence_retention_days if days is None else days, s.store.evidence_keep_latest_flagged)
    if policy.days <= 0:
        console.print("evidence retention is off ([store] evidence_retention_days = 0): nothing pruned")
        return
    ev = open_events(s)
    try:
        decided = decided_keys(ev)
    finally:
        ev.close()
    st = _open()
    try:
        rep = prune(st, s.home, policy, decided, datetime.now(UTC), dry_run=dry_run)
    finally:
        st.close()
    verb = "would prune" if dry_run else "pruned"
    console.print(f"{rep.examined:,} captures older than {policy.days} days; {verb} {rep.pruned:,} "
                  f"({rep.files:,} files, {rep.bytes / 1e6:,.1f} MB)")
    for why, n in sorted(rep.kept.items()):
        console.print(f"  kept {n:,}: {why}")
    for p in rep.problems[:20]:
        err.print(f"[yellow]{escape(p)}[/yellow]")


@store_app.command("prune-observations")
def prune_observations_cmd(
    days: Annotated[int | None, typer.Option(min=0, help="retention in days (default [store] observation_retention_days; 0 keeps all)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count what would be pruned, delete nothing")] = False,
) -> None:
    """Delete observations (stored views of a listing) last seen more than DAYS ago, except the newest
    view of each listing and every view of a listing an officer has acted on (any review status but
    new, or a decision in the event log). Changes and verdicts are kept: timelines stay complete."""
    from listings.events import open_events
    from listings.retention import decided_keys, prune_observations

    s = _settings()
    n_days = s.store.observation_retention_days if days is None else days
    if n_days <= 0:
        console.print("observation retention is off ([store] observation_retention_days = 0): every observation kept")
        return
    ev = open_events(s)
    try:
        decided = decided_keys(ev)
    finally:
        ev.close()
    st = _open()
    try:
        n = prune_observations(st, n_days, decided, datetime.now(UTC), dry_run=dry_run) or 0
    finally:
        st.close()
    console.print(f"{'would prune' if dry_run else 'pruned'} {n:,} observations last seen more than {n_days} days ago")


@store_app.command("rebuild-words")
def rebuild_words() -> None:
    """Cut every listing's search text into words again, with this tiswatch's cut (after an upgrade
    that changed it: listings/query.py WORDS_VERSION; without it, a word search can miss listings
    stored before). The SQLite store does this by itself when it first opens after such an upgrade;
    run it on an Elasticsearch/OpenSearch store. Safe while crawls run (a listing rewritten meanwhile
    keeps its new words)."""
    st = _open()
    try:
        with console.status("cutting words …") as status:
            r = st.rebuild_words(lambda k: status.update(f"cutting words … {k:,} listings"))
    finally:
        st.close()
    console.print(f"{r['listings']:,} listings read, {r['changed']:,} with new words")


@store_app.command("rollover")
def rollover(force: Annotated[bool, typer.Option("--force", help="roll over now, whatever the conditions")] = False) -> None:
    """Roll the observation write index over when its age, size or document count passes the
    [store] es_rollover_* limits (clusters without ILM/ISM: the store does it itself)."""
    st = _open()
    try:
        if getattr(st, "backend", "") != "elasticsearch":
            raise _fail("rollover is for the Elasticsearch/OpenSearch store ([store] backend = \"elasticsearch\")")
        r = st.rollover(force=force)  # type: ignore[attr-defined]
        mode = st.rollover_mode  # type: ignore[attr-defined]
    finally:
        st.close()
    if r is None:
        console.print(f"no rollover needed (rollover: {mode})")
    else:
        console.print(f"rolled over from {r['from']} to {r['to']}: {r['why']}")
