"""`tiswatch registry ...`: import licence files, query the registry and its history, check a claim,
validate the standards catalogue, generate realistic licence files."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="The licence registry: import, query, check, catalogue, generate.")
catalogue_app = typer.Typer(no_args_is_help=True, help="The compulsory-standards catalogue (config/standards.toml): "
                                                       "list it, validate your edits, compare it with TISI's list.")
app.add_typer(catalogue_app, name="catalogue")
console = Console()
err = Console(stderr=True)


def _settings():
    from cli import state

    s = state.settings()
    s.ensure_home()
    return s


def _store():
    from registry.store import RegistryStore

    return RegistryStore(_settings().registry_db)


def _day(value: str | None, option: str) -> date | None:
    from registry.licences import parse_date

    if not value:
        return None
    try:
        return parse_date(value)
    except ValueError as e:
        err.print(f"[red]{option}: {escape(str(e))}[/red]")
        raise typer.Exit(2) from None


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


# ---- import ---------------------------------------------------------------------------------------
@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="licence file: CSV (UTF-8 with or without BOM, or cp874) or XLSX, "
                                              "Thai or English headers (DOMAIN.md §4.1)")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="the day the file describes (15/03/2568 or "
                                              "2025-03-15); changes take effect then. Default: today")] = None,
    force: Annotated[bool, typer.Option(help="import a file dated before the newest import (rolls licences back)")] = False,
    rejected: Annotated[Path | None, typer.Option(help="also write the rejected rows (file, line, column, why) "
                                                       "to this CSV")] = None,
    show_errors: Annotated[int, typer.Option(help="rejected rows to print")] = 20,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Import a licence file. Licences are updated in place by licence number and every change (status,
    trademarks, models, ...) is recorded with its date, so `show NO --on DATE` can tell what held then.
    Importing the same file again changes nothing. Bad rows are reported (file, line, column, why) and
    skipped; the good rows are kept. A file that is not a licence file is refused and nothing changes.

    Exit status: 0 imported (even with rejected rows), 2 refused."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from registry.licences import LicenceFileError

    day = _day(as_of, "--as-of")
    store = _store()
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, disable=quiet or not err.is_terminal, transient=True) as bar:
            reading = bar.add_task(f"reading {path.name}", total=None)
            storing = bar.add_task("storing", total=None, visible=False)

            def read_progress(done: int, total: int) -> None:
                bar.update(reading, completed=done, total=total or None)

            def store_progress(done: int, total: int) -> None:
                bar.update(reading, visible=False)
                bar.update(storing, completed=done, total=total, visible=True)

            rep = store.import_file(path, as_of=day, progress=read_progress, store_progress=store_progress, force=force)
    except LicenceFileError as e:
        err.print(f"[red]refused[/red]: {escape(str(e))}", soft_wrap=True)
        err.print("nothing in the registry changed")
        raise typer.Exit(2) from None
    finally:
        store.close()
    console.print(f"{escape(str(path))}: {rep.rows} rows ({rep.encoding}, {'Thai' if rep.header_language == 'th' else 'English'} "
                  f"headers); [green]{rep.added} added[/green], [yellow]{rep.updated} updated[/yellow], "
                  f"{rep.unchanged} unchanged, [red]{rep.rejected} rejected[/red]"
                  + (f", {rep.merged} repeated rows merged" if rep.merged else "")
                  + f"; as of {rep.as_of}, import #{rep.import_id}")
    if rep.missing:
        console.print(f"{rep.missing} licences of the registry are not in this file; they are kept as they are")
    if rep.ignored_columns:
        console.print(f"ignored columns: {escape(', '.join(rep.ignored_columns))}")
    for e in rep.errors[:show_errors]:
        err.print(f"[yellow]rejected[/yellow] {escape(str(e))}", soft_wrap=True)  # FILE:LINE kept whole
    if rep.rejected > show_errors:
        err.print(f"… and {rep.rejected - show_errors} more rejected rows" + ("" if rejected else " (--rejected FILE lists all)"))
    if rejected:
        import csv

        with rejected.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "line", "column", "letter", "why"])
            for e in rep.errors:
                w.writerow([e.file, e.line, e.column, e.letter, e.message])
        console.print(f"rejected rows written to {escape(str(rejected))}", soft_wrap=True)


# ---- queries --------------------------------------------------------------------------------------
@app.command()
def stats(
    top: Annotated[int, typer.Option(help="standards to list (0: all)")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Licences per standard, type and status."""
    from registry.catalogue import load_catalogue

    store = _store()
    st = store.stats()
    n, version = store.count(), store.version()
    store.close()
    if as_json:
        _print_json({"licences": n, "version": version, **{k: [list(r) for r in v] for k, v in st.items()}})
        return
    cat = load_catalogue(_settings().catalogue_path)
    console.print(f"{n} licences, registry version {version}")
    t = Table(title="by status")
    t.add_column("status")
    t.add_column("licences", justify="right")
    for status, count in st["by_status"]:
        t.add_row(status, str(count))
    console.print(t)
    t = Table(title="by type")
    for c in ("type", "licences", "active"):
        t.add_column(c, justify="right" if c != "type" else "left")
    for row in st["by_type"]:
        t.add_row(*[str(x) for x in row])
    console.print(t)
    rows = st["by_standard"] if top == 0 else st["by_standard"][:top]
    t = Table(title=f"by standard ({'all' if top == 0 else f'top {top}'} of {len(st['by_standard'])})")
    named = console.width >= 110  # the standard's (English) name only where it fits beside the numbers
    t.add_column("มอก.", no_wrap=True)
    if named:
        t.add_column("standard", overflow="ellipsis", no_wrap=True, max_width=console.width - 85)
    for c in ("licences", "active", "suspended", "cancelled", "revoked"):
        t.add_column(c, justify="right", no_wrap=True)
    for tis, *counts in rows:
        s = cat.find(tis)
        name = [escape((s.name_en or s.name_th) if s else "— not in the catalogue")] if named else []
        t.add_row(tis, *name, *[str(x or 0) for x in counts])
    console.print(t)


def _licence_dict(lic) -> dict:
    return lic.row() | {"trademarks": list(lic.trademarks), "models": list(lic.models)}


@app.command()
def show(
    licence_no: Annotated[str, typer.Argument(help="licence number, e.g. ท5137-2/10 (spaces and Thai digits are fine)")],
    on: Annotated[str | None, typer.Option(help="the licence as it stood on this day (2025-06-01 or 01/06/2568): "
                                                "was it active then?")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """One licence with its history of changes; with --on, as it stood on that day."""
    from registry.licences import STATUS_TH
    from registry.tisno import parse_licence_no

    day = _day(on, "--on")
    store = _store()
    try:
        no = parse_licence_no(licence_no) or licence_no
        lic = store.get(no)
        if lic is None:
            err.print(f"[red]no licence {escape(licence_no)} in the registry[/red]")
            raise typer.Exit(1)
        then = store.licence_on(no, day) if day else None
        changes = store.changes(no)
        history = store.status_history(no).get(no, [])
    finally:
        store.close()
    if as_json:
        out = {"licence": _licence_dict(lic), "changes": changes, "status_history": [
            {"since": s, "status": st} for s, st in history]}
        if day:
            out["on"] = day.isoformat()
            out["on_day"] = _licence_dict(then) if then else None
            out["active_on_day"] = bool(then and then.active)
        _print_json(out)
        return
    shown = then or lic
    if day:
        if then is None:
            console.print(f"[red]{no} was not in force on {day}[/red] (issued {lic.issued or 'on an unknown day'}; "
                          f"the registry knows it from {history[0][0] if history else '—'})")
        else:
            colour = "green" if then.active else "red"
            console.print(f"[{colour}]on {day}, {no} was {then.status} ({STATUS_TH[then.status]})[/{colour}]")
    for k, v in shown.row().items():
        console.print(f"[bold]{k}[/bold]: {escape(str(v))}")
    if day and then is not None and then.row() != lic.row():
        console.print(f"[dim]today: {lic.status}; fields changed since {day}: "
                      f"{', '.join(k for k in lic.row() if lic.row()[k] != then.row()[k])}[/dim]")
    if history:
        console.print("[bold]status history[/bold]: " + "  →  ".join(f"{st} since {s}" for s, st in history))
    for c in changes:
        console.print(f"  {c['effective']}  {c['field']}: {escape(str(c['old']))} → {escape(str(c['new']))}  "
                      f"[dim](import #{c['import_id']})[/dim]")


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="brand, licensee, product, model or licence number; Thai or Latin; "
                                             "any part of 3 or more characters")],
    tis: Annotated[str | None, typer.Option(help="only licences under this standard (any edition)")] = None,
    status: Annotated[str | None, typer.Option(help="only licences in this status: active, suspended, cancelled, revoked")] = None,
    limit: Annotated[int, typer.Option(help="results")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Find licences by brand, licensee, product, model or number (PB2001 finds PB-2001)."""
    from registry.licences import STATUSES, parse_status
    from registry.tisno import parse_tis

    base = None
    if tis:
        t = parse_tis(tis)
        if t is None:
            err.print(f"[red]--tis: {escape(tis)!r} is not a TIS number[/red]")
            raise typer.Exit(2)
        from registry.catalogue import load_catalogue

        s = load_catalogue(_settings().catalogue_path).find(t)
        base = s.base if s else t.base
    if status:
        try:
            status = parse_status(status)
        except ValueError:
            err.print(f"[red]--status: one of {', '.join(STATUSES)}[/red]")
            raise typer.Exit(2) from None
    store = _store()
    try:
        found = store.search(text, limit, tis_base=base, status=status)
    finally:
        store.close()
    if as_json:
        _print_json([_licence_dict(lic) for lic in found])
        return
    t = Table(title=f"{len(found)} licences" + (" (more with --limit)" if len(found) == limit else ""))
    for c in ("licence", "มอก.", "status", "trademarks", "licensee", "models"):
        t.add_column(c, overflow="fold")
    for lic in found:
        models = "; ".join(lic.models[:4]) + (f" … +{len(lic.models) - 4}" if len(lic.models) > 4 else "")
        t.add_row(lic.licence_no, lic.tis_no, lic.status, escape(" / ".join(lic.trademarks)), escape(lic.licensee),
                  escape(models))
    console.print(t)


@app.command()
def imports(limit: Annotated[int, typer.Option(help="imports to list")] = 20) -> None:
    """The imports so far, newest first: file, day it describes, what it changed."""
    store = _store()
    rows = store.imports(limit)
    store.close()
    if not rows:
        console.print("no imports yet: tiswatch registry import PATH")
    for r in rows:
        n = {k: r.get(k) or 0 for k in ("rows", "added", "updated", "unchanged", "rejected", "missing")}
        console.print(f"#{r['id']}  as of {r.get('as_of') or (r.get('at') or '')[:10]}  "
                      f"{escape(Path(r.get('path') or '').name)}: {n['rows']} rows; {n['added']} added, {n['updated']} "
                      f"updated, {n['unchanged']} unchanged, {n['rejected']} rejected"
                      + (f"; {n['missing']} registry licences not in the file" if n["missing"] else ""))


@app.command()
def changes(
    since: Annotated[int, typer.Option(help="list the changes made by imports after this import number")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON Lines")] = False,
) -> None:
    """What imports after --since changed (new licences, status, trademarks, models, ...): what a
    re-check of listings needs. `imports` shows the import numbers."""
    store = _store()
    rows = store.changes_since(since)
    last = store.last_import_id()
    store.close()
    if as_json:
        for c in rows:
            sys.stdout.write(json.dumps(c.__dict__, ensure_ascii=False) + "\n")
        return
    t = Table(title=f"{len(rows)} changes after import #{since} (newest import: #{last})")
    for c in ("import", "effective", "licence", "มอก.", "field", "old", "new"):
        t.add_column(c, overflow="fold")
    for c in rows[:500]:
        t.add_row(str(c.import_id), c.effective, c.licence_no, c.tis_no, c.field, escape(str(c.old or "")),
                  escape(str(c.new or "")))
    console.print(t)
    if len(rows) > 500:
        console.print(f"… {len(rows) - 500} more (--json lists all)")


# ---- the licence check ----------------------------------------------------------------------------
@app.command()
def check(
    tis: Annotated[str | None, typer.Option("--tis", help="the TIS number the listing claims, e.g. 2879-2560")] = None,
    licence: Annotated[str | None, typer.Option("--licence", help="the licence number it shows, e.g. ท5137-2/10")] = None,
    brand: Annotated[str | None, typer.Option(help="the brand (Latin or Thai)")] = None,
    model: Annotated[str | None, typer.Option(help="the model code")] = None,
    on: Annotated[str | None, typer.Option(help="check as of this day instead of today's registry")] = None,
    registry: Annotated[Path | None, typer.Option("--registry", help="use this licence file instead of the stored registry")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as the API gives it")] = False,
) -> None:
    """Is a claim backed by the registry? The same answer as GET /api/v1/licences/check: the licence,
    its status and dates, whether brand and model are covered, the standard, and why not when not.

    Exit status: 0 backed, 1 not backed, 2 nothing to check or a bad argument."""
    from cli import _registry
    from registry.check import NothingToCheck, check_licence

    day = _day(on, "--on")
    if not (tis or licence):
        err.print("[red]give --tis, --licence or both[/red] (and --brand to find the brand's licence)")
        raise typer.Exit(2)
    reg = _registry(_settings(), registry)
    try:
        res = check_licence(reg, tis, licence, brand, model, day)
    except NothingToCheck as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        sys.stdout.write(res.model_dump_json(indent=2) + "\n")
        raise typer.Exit(0 if res.backed else 1)
    head = "[green]backed[/green]" if res.backed else "[red]not backed[/red]"
    console.print(f"{head}{f' on {day}' if day else ''} (registry {res.registry_version})")
    if res.standard:
        console.print(f"standard: มอก. {res.standard.tis_no} {escape(res.standard.name_th)} / {escape(res.standard.name_en)}"
                      + (f" [dim](claimed {res.standard.claimed}: {res.standard.edition} edition)[/dim]"
                         if res.standard.claimed and res.standard.edition not in ("current", "any") else ""))
    if res.licence:
        li = res.licence
        console.print(f"licence: {li.licence_no} ({li.licence_type} {li.licence_type_en}) under มอก. {li.tis_no}, "
                      f"{li.status} ({li.status_th}), issued {li.issued or '—'}"
                      + (f", status since {li.status_date}" if li.status_date else ""))
        console.print(f"  licensee: {escape(li.licensee)}; trademarks: {escape(' / '.join(li.trademarks))}")
        console.print(f"  models: {escape('; '.join(li.models[:10]))}" + (" …" if len(li.models) > 10 else ""))
    cov = {True: "yes", False: "no", None: "—"}
    console.print(f"brand covered: {cov[res.brand_covered]}; model covered: {cov[res.model_covered]}")
    for th, en in zip(res.messages_th, res.messages_en, strict=True):
        console.print(f"  • {escape(en)}  [dim]{escape(th)}[/dim]")
    if res.other_licences:
        console.print(f"[dim]other licences of the brand under the standard: {', '.join(res.other_licences[:10])}[/dim]")
    raise typer.Exit(0 if res.backed else 1)


# ---- generate -------------------------------------------------------------------------------------
@app.command()
def generate(
    out: Annotated[Path, typer.Argument(help="licence file to write: .csv or .xlsx")],
    licences: Annotated[int, typer.Option(help="how many licences (29183 = the real registry of November 2025)")] = 29183,
    seed: Annotated[int, typer.Option(help="random seed: the same seed writes the same file")] = 7,
    thai_headers: Annotated[bool, typer.Option(help="Thai column headers and statuses")] = False,
    encoding: Annotated[str, typer.Option(help="CSV encoding: utf-8-sig (BOM, what Excel wants), utf-8, or cp874")] = "utf-8-sig",
) -> None:
    """Write a realistic licence file (§4.1): licences per standard follow the real November-2025 counts,
    with licensees, Latin and Thai trademarks, model lists, types ท/น/ส/นค and a share of suspended,
    cancelled and revoked licences. For tests, benchmarks and trying tiswatch out."""
    from registry.catalogue import load_catalogue
    from registry.licences import write_licence_csv, write_licence_xlsx
    from sandbox.world import generate_licences

    if licences < 1:
        err.print("[red]--licences must be at least 1[/red]")
        raise typer.Exit(2)
    if encoding not in ("utf-8-sig", "utf-8", "cp874"):
        err.print("[red]--encoding: utf-8-sig, utf-8 or cp874[/red]")
        raise typer.Exit(2)
    lics, _ = generate_licences(licences, seed, load_catalogue(_settings().catalogue_path))
    if out.suffix.lower() == ".xlsx":
        n = write_licence_xlsx(lics, out, thai_headers=thai_headers)
    else:
        n = write_licence_csv(lics, out, thai_headers=thai_headers, encoding=encoding)
    console.print(f"{escape(str(out))}: {n} licences (seed {seed})")


# ---- the catalogue --------------------------------------------------------------------------------
def _load_catalogue(path: Path | None):
    from registry.catalogue import CatalogueError, load_catalogue

    try:
        return load_catalogue(path or _settings().catalogue_path)
    except CatalogueError as e:
        err.print(f"[red]the catalogue has errors; nothing was loaded[/red]\n{escape(str(e))}")
        raise typer.Exit(2) from None


@catalogue_app.command("list")
def catalogue_list(
    consumer: Annotated[bool, typer.Option(help="only standards for consumer goods sold online")] = False,
    group: Annotated[str | None, typer.Option(help="only this group (appliance, lighting, toys, ...)")] = None,
    file: Annotated[Path | None, typer.Option(help="a catalogue file other than the configured one")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The standards: number, names, group, licence counts, product words."""
    cat = _load_catalogue(file)
    rows = [s for s in cat.standards if (not consumer or s.consumer) and (not group or s.group == group)]
    if as_json:
        _print_json([{"tis_no": s.tis_no, "name_th": s.name_th, "name_en": s.name_en, "group": s.group,
                      "consumer": s.consumer, "editions": [str(e) for e in s.editions], "licences": list(s.licences),
                      "words": list(s.words), "exclude": list(s.exclude), "with": list(s.with_)} for s in rows])
        return
    t = Table(title=f"{len(rows)} of {len(cat.standards)} standards (catalogue {cat.version})")
    for c in ("มอก.", "name", "group", "licences", "words", "older editions"):
        t.add_column(c, overflow="fold", justify="right" if c in ("licences", "words") else "left")
    for s in rows:
        t.add_row(s.tis_no, escape(f"{s.name_th}\n{s.name_en}"), s.group or "", str(s.total_licences),
                  str(len(s.words)), ", ".join(str(e) for e in s.editions))
    console.print(t)


@catalogue_app.command("show")
def catalogue_show(
    tis: Annotated[str, typer.Argument(help="a TIS number, any edition: 2879-2560, 685-2540, มอก. 166")],
    file: Annotated[Path | None, typer.Option(help="a catalogue file other than the configured one")] = None,
) -> None:
    """One standard with its editions and every word list."""
    cat = _load_catalogue(file)
    s = cat.find(tis) or next(iter(cat.bases_for_number(tis.split("-")[0].strip())), None)
    if s is None:
        err.print(f"[red]no standard {escape(tis)} in the catalogue[/red]")
        raise typer.Exit(1)
    console.print(f"[bold]มอก. {s.tis_no}[/bold]  {escape(s.name_th)}\n{escape(s.name_en)}")
    console.print(f"group: {s.group or '—'}; consumer goods: {'yes' if s.consumer else 'no'}; licences (ท/น/ส): "
                  f"{'/'.join(str(n) for n in s.licences)}")
    for label, items in (("older editions", [str(e) for e in s.editions]), ("words", s.words), ("exclude", s.exclude),
                         ("requires", s.requires), ("not_form", s.not_form), ("with", s.with_)):
        if items:
            console.print(f"[bold]{label}[/bold]: {escape(', '.join(items))}")


@catalogue_app.command("check")
def catalogue_check(
    file: Annotated[Path | None, typer.Option(help="the catalogue file to check (default: the configured one)")] = None,
    against: Annotated[Path | None, typer.Option(help="TISI's list of standards with licence counts (CSV, as in "
                                                      "tisi_standards_compulsory_2025_11.csv): report what is missing")] = None,
    strict: Annotated[bool, typer.Option(help="exit 1 on warnings too")] = False,
) -> None:
    """Validate the catalogue after an edit: errors (nothing loads until they are fixed) name the file,
    line, standard and field; warnings point at probable slips. With --against, compare with TISI's list.

    Exit status: 0 fine, 1 warnings with --strict or standards missing from the catalogue, 2 errors."""
    from registry.catalogue import CatalogueError, compare_with_tisi_list, read_tisi_list

    cat = _load_catalogue(file)
    consumer = [s for s in cat.standards if s.consumer and s.words]
    console.print(f"[green]{escape(cat.path)}: valid[/green] — {len(cat.standards)} standards, {len(consumer)} for "
                  f"consumer goods with product words ({sum(len(s.words) for s in consumer)} words), "
                  f"{sum(len(s.editions) for s in cat.standards)} older editions")
    warnings = cat.warnings()
    for w in warnings:
        console.print(f"[yellow]warning[/yellow] {escape(w)}")
    failed = bool(warnings) and strict
    if against:
        try:
            rep = compare_with_tisi_list(cat, read_tisi_list(against))
        except CatalogueError as e:
            err.print(f"[red]{escape(str(e))}[/red]")
            raise typer.Exit(2) from None
        console.print(f"{escape(str(against))}: {rep.listed} compulsory standards; "
                      + ("[green]all in the catalogue[/green]" if rep.complete else f"[red]{len(rep.missing)} missing[/red]"))
        for m in rep.missing:
            console.print(f"  [red]missing[/red] {m.tis} {escape(m.name_th)} / {escape(m.name_en)}")
        for row, s in rep.other_edition:
            console.print(f"  [yellow]edition[/yellow] the list has {row.tis}, the catalogue {s.tis_no}")
        for row, s in rep.name_differs:
            console.print(f"  [yellow]name[/yellow] {s.tis_no}: the list says {escape(row.name_th)!r} / {escape(row.name_en)!r}")
        for row, s in rep.counts_differ:
            console.print(f"  [dim]counts[/dim] {s.tis_no}: list {list(row.licences)}, catalogue {list(s.licences)}")
        for s in rep.not_listed:
            console.print(f"  [dim]not in the list[/dim] {s.tis_no} {escape(s.name_th)}")
        failed = failed or not rep.complete
    raise typer.Exit(1 if failed else 0)
