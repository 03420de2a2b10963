"""`tiswatch registry ...`: import licence files, query the registry, generate realistic ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="The licence registry: import, query, generate, check.")
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


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="licence file: CSV (UTF-8, BOM or cp874) or XLSX, Thai or English headers")],
    show_errors: Annotated[int, typer.Option(help="rejected rows to print")] = 50,
) -> None:
    """Import a licence file (DOMAIN.md §4.1). Licences are updated in place by licence number and every
    change is recorded with its date. Bad rows are reported (file, line, column, why) and skipped; a
    file that is not a licence file is refused and nothing stored changes."""
    from registry.licences import LicenceFileError

    store = _store()
    try:
        with console.status(f"importing {path} …"):
            rep = store.import_file(path)
    except LicenceFileError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    finally:
        store.close()
    console.print(f"{path}: {rep.rows} rows; {rep.added} added, {rep.updated} updated, {rep.unchanged} unchanged, "
                  f"{rep.rejected} rejected")
    for e in rep.errors[:show_errors]:
        err.print(f"[yellow]rejected[/yellow] {e}")
    if rep.rejected > show_errors:
        err.print(f"… and {rep.rejected - show_errors} more rejected rows")


@app.command()
def stats() -> None:
    """Licences per standard, type and status."""
    store = _store()
    st = store.stats()
    console.print(f"{store.count()} licences, registry version {store.version()}")
    for title, rows, cols in (("by status", st["by_status"], ("status", "licences")),
                              ("by type", st["by_type"], ("type", "licences")),
                              ("by standard (top 30)", st["by_standard"][:30], ("มอก.", "licences", "active"))):
        t = Table(title=title)
        for c in cols:
            t.add_column(c)
        for r in rows:
            t.add_row(*[str(x) for x in r])
        console.print(t)
    store.close()


@app.command()
def show(licence_no: Annotated[str, typer.Argument(help="licence number, e.g. ท5137-2/10")]) -> None:
    """One licence with its history of changes."""
    from registry.tisno import parse_licence_no

    store = _store()
    no = parse_licence_no(licence_no) or licence_no
    lic = store.get(no)
    if lic is None:
        err.print(f"[red]no licence {licence_no}[/red]")
        raise typer.Exit(1)
    for k, v in lic.row().items():
        console.print(f"[bold]{k}[/bold]: {v}")
    for c in store.changes(no):
        console.print(f"  {c['effective']}  {c['field']}: {c['old']} → {c['new']}")
    store.close()


@app.command()
def search(text: Annotated[str, typer.Argument(help="brand, licensee, model or licence number; Thai or Latin")],
           limit: Annotated[int, typer.Option(help="results")] = 30) -> None:
    """Find licences by brand, licensee, model or number."""
    store = _store()
    t = Table()
    for c in ("licence", "มอก.", "status", "trademarks", "licensee", "models"):
        t.add_column(c)
    for lic in store.search(text, limit):
        t.add_row(lic.licence_no, lic.tis_no, lic.status, " / ".join(lic.trademarks), lic.licensee, "; ".join(lic.models[:4]))
    console.print(t)
    store.close()


@app.command()
def generate(
    out: Annotated[Path, typer.Argument(help="licence file to write (CSV)")],
    licences: Annotated[int, typer.Option(help="how many licences")] = 29183,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
    thai_headers: Annotated[bool, typer.Option(help="Thai column headers and statuses")] = False,
) -> None:
    """Write a realistic licence file (§4.1) whose licences per standard follow the real Nov-2025 counts."""
    from registry.catalogue import load_catalogue
    from registry.licences import write_licence_csv
    from sandbox.world import generate_licences

    lics, _ = generate_licences(licences, seed, load_catalogue(_settings().catalogue_path))
    n = write_licence_csv(lics, out, thai_headers=thai_headers)
    console.print(f"{out}: {n} licences")
