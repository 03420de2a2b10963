"""`tiswatch check` and `tiswatch eval`: the matching engine from the command line.

Both read listings as JSON Lines (DOMAIN.md §4.2) and check them against the stored registry, or
against a licence file given with --registry. A line that is not a valid listing is reported as
file:line and why, and skipped; the other lines go on.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from listings.model import Listing
    from registry.index import Registry
    from settings import Settings

console = Console()
err = Console(stderr=True)


def load_registry(s: Settings, registry_path: Path | None) -> Registry:
    """The registry to check against: a licence file (--registry) or the stored one."""
    from registry.catalogue import CatalogueError, load_catalogue
    from registry.index import Registry
    from registry.licences import LicenceFileError
    from registry.store import RegistryStore

    try:
        cat = load_catalogue(s.catalogue_path)
        if registry_path:
            if not registry_path.is_file():
                err.print(f"[red]{escape(str(registry_path))}: licence file not found[/red]")
                raise typer.Exit(2)
            reg = Registry.from_file(registry_path, cat)
            errors = getattr(reg, "load_errors", [])
            for e in errors[:5]:
                err.print(f"[yellow]skipped licence row[/yellow] {escape(str(e))}")
            if len(errors) > 5:
                err.print(f"[yellow]… {len(errors) - 5} more licence rows skipped[/yellow]")
            return reg
        s.ensure_home()
        rs = RegistryStore(s.registry_db)
        try:
            if rs.count() == 0:
                err.print("[yellow]the stored registry is empty[/yellow]: import a licence file with "
                          "`tiswatch registry import PATH`, or pass --registry PATH")
            return Registry.from_store(rs, cat)
        finally:
            rs.close()
    except (CatalogueError, LicenceFileError) as e:
        err.print(f"[red]{escape(str(e))}[/red]")
        raise typer.Exit(2) from None


def read_listings(path: Path) -> Iterator[tuple[int, Listing | str]]:
    """(line number, Listing) for each listing of a JSON Lines file, or (line number, 'file:line: why')."""
    from pydantic import ValidationError

    from listings.model import Listing

    with path.open(encoding="utf-8-sig", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield n, Listing.model_validate_json(line)
            except ValidationError as e:
                first = e.errors()[0]
                where = ".".join(str(x) for x in first["loc"])
                yield n, f"{path}:{n}: {where + ': ' if where else ''}{first['msg']}"


def _settings() -> Settings:
    from cli import state

    return state.settings()


def _open_input(path: Path) -> None:
    if not path.is_file():
        err.print(f"[red]{escape(str(path))}: no such file[/red]")
        raise typer.Exit(2)


# ---- check --------------------------------------------------------------------------------------
def check(
    path: Annotated[Path | None, typer.Argument(help="listings as JSON Lines (DOMAIN.md §4.2)")] = None,
    out: Annotated[Path | None, typer.Option(help="write verdicts (§4.3) here instead of standard output")] = None,
    registry: Annotated[Path | None, typer.Option("--registry", help="use this licence file (CSV/XLSX) instead of the stored registry")] = None,
    title: Annotated[str | None, typer.Option(help="check one listing given by its title, and explain the verdict")] = None,
    brand: Annotated[str | None, typer.Option(help="with --title: its brand")] = None,
    description: Annotated[str | None, typer.Option(help="with --title: its description")] = None,
    category: Annotated[list[str] | None, typer.Option(help="with --title: a marketplace category (repeatable, top first)")] = None,
    lang: Annotated[str, typer.Option(help="with --title: language of the reasons: th, en or both")] = "both",
    detail: Annotated[bool, typer.Option(help="write the claims, standards and licence candidates too")] = False,
) -> None:
    """Check listings against the licence registry: listings in, verdicts out, in the same order.

    Each output line is a verdict (DOMAIN.md §4.3): verdict, risk 0–100, the standard, the licence and reason codes. A line that is not a valid listing is reported on standard error as file:line and gets no verdict line; the others go on.

    With --title (and --brand, --description, --category) one listing is checked and explained in words, e.g. tiswatch check --title "พาวเวอร์แบงค์ 20000mAh มอก. 2879-2560" --brand Eloop
    """  # paragraphs on one line each: Typer's rich help keeps a docstring's line breaks
    from listings.model import Listing
    from matching.engine import check as check_listing

    s = _settings()
    if title is None and path is None:
        err.print("give a JSON Lines file of listings, or --title")
        raise typer.Exit(2)
    if lang not in ("th", "en", "both"):
        err.print(f"--lang must be th, en or both, not {lang!r}")
        raise typer.Exit(2)
    if path is not None:
        _open_input(path)
    reg = load_registry(s, registry)
    if title is not None:
        listing = Listing(marketplace="cli", item_id="1", title=title, brand=brand, description=description,
                          category=category or [])
        explain(check_listing(listing, reg), reg, lang)
        return
    assert path is not None
    bad = n = 0
    sink = out.open("w", encoding="utf-8") if out else sys.stdout
    try:
        for _, item in read_listings(path):
            if isinstance(item, str):
                err.print(f"[yellow]{escape(item)}[/yellow]")
                bad += 1
                continue
            v = check_listing(item, reg)
            sink.write(json.dumps(v.detail() if detail else v.record(), ensure_ascii=False) + "\n")
            n += 1
    finally:
        if out:
            sink.close()
    err.print(f"{n} verdicts" + (f", {bad} invalid lines skipped" if bad else ""))
    raise typer.Exit(1 if bad and not n else 0)


_STYLE = {"not_controlled": "green", "licensed": "green", "unlicensed": "red", "mislabeled": "red",
          "needs_review": "yellow"}


def explain(v, reg: Registry, lang: str = "both") -> None:
    """Print one verdict so that an officer can check it in seconds (listing text escaped)."""
    from matching.reasons import sentence

    style = _STYLE.get(v.verdict, "white")
    console.print(f"[bold {style}]{v.verdict}[/bold {style}]  risk {v.risk}" + ("  [bold]flagged[/bold]" if v.flagged else ""))
    std = reg.catalogue.find(v.tis_no) if v.tis_no else None
    if v.tis_no:
        console.print(f"  standard  มอก. {escape(v.tis_no)}" + (f"  {escape(std.name_th)}" if std else ""))
        for other in v.standards[1:]:
            o = reg.catalogue.find(other)
            console.print(f"            มอก. {escape(other)}" + (f"  {escape(o.name_th)}" if o else ""))
    else:
        console.print("  standard  —")
    lic = reg.licence(v.licence_no) if v.licence_no else None
    if lic:
        console.print(f"  licence   {escape(lic.licence_no)}  {escape(' / '.join(lic.trademarks))}  ({lic.status})  "
                      f"{escape(lic.licensee)}")
    else:
        console.print(f"  licence   {escape(v.licence_no or '—')}")
    for c in v.claims:
        console.print(f"  claim     {c['kind']} {escape(str(c['value']))}  [dim]in {escape(str(c['where']))}[/dim]")
    console.print("  because")
    for r in v.reasons:
        if lang in ("th", "both"):
            console.print(f"   • {escape(sentence(r, 'th'))}")
        if lang in ("en", "both"):
            console.print(f"   {'  ' if lang == 'both' else '• '}{escape(sentence(r, 'en'))}  [dim]{escape(r)}[/dim]")


# ---- eval ---------------------------------------------------------------------------------------
def eval_(
    paths: Annotated[list[Path], typer.Argument(help="evaluation files: listings (JSON Lines) with `expected`")],
    registry: Annotated[Path | None, typer.Option("--registry", help="use this licence file (CSV/XLSX) instead of the stored registry")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON")] = False,
    worst: Annotated[int, typer.Option(help="how many of the worst mistakes to list")] = 20,
    lang: Annotated[str, typer.Option(help="language of the reasons of the mistakes: th or en")] = "en",
) -> None:
    """Measure the engine on labeled listings (each line a listing with "expected": {"verdict", "tis_no", "licence_no"}).

    Prints flag precision and recall (flagged = unlicensed, mislabeled, needs_review), precision, recall and F1 per verdict and their macro average, the accuracy of the standard and of the licence, the confusion matrix and the worst mistakes with their reasons. Several files are measured one by one. Exit status 1 when a file holds no labeled listing.

    The labeled set of the repository (tests/data/README.md), held-out parts first: tiswatch eval tests/data/heldout.jsonl --registry tests/data/dev_registry.csv and tiswatch eval tests/data/real_heldout.jsonl --registry tests/data/real_registry.csv
    """
    from matching.engine import check as check_listing
    from matching.evaluate import Case, evaluate

    s = _settings()
    for p in paths:
        _open_input(p)
    reg = load_registry(s, registry)
    results = {}
    status = 0
    for p in paths:
        cases: list[Case] = []
        skipped = 0
        for n, item in read_listings(p):
            if isinstance(item, str):
                err.print(f"[yellow]{escape(item)}[/yellow]")
                skipped += 1
                continue
            if item.expected is None:
                err.print(f"[yellow]{escape(str(p))}:{n}: no `expected` verdict; skipped[/yellow]")
                skipped += 1
                continue
            v = check_listing(item, reg)
            cases.append(Case(f"{item.marketplace}:{item.item_id}", item.title, item.expected.model_dump(), v.record(), n))
        if not cases:
            err.print(f"[red]{escape(str(p))}: no labeled listing[/red]")
            status = 1
            continue
        rep = evaluate(cases)
        results[str(p)] = (rep, skipped)
        if not as_json:
            print_report(str(p), rep, skipped, worst, lang)
    if as_json:
        sys.stdout.write(json.dumps({k: {**r.as_dict(worst), "skipped": sk} for k, (r, sk) in results.items()},
                                    ensure_ascii=False, indent=2) + "\n")
    raise typer.Exit(status)


def print_report(name: str, rep, skipped: int, worst: int = 20, lang: str = "en") -> None:
    from matching.evaluate import VERDICTS, fmt
    from matching.reasons import sentence

    console.rule(f"[bold]{escape(name)}[/bold]: {rep.n} listings" + (f", {skipped} lines skipped" if skipped else ""))
    t = Table(title="flags and verdicts", title_justify="left")
    for col in ("", "support", "predicted", "correct", "precision", "recall", "F1"):
        t.add_column(col, justify="left" if not col else "right", no_wrap=not col)
    f = rep.flag
    t.add_row("[bold]flagged[/bold]", str(f.support), str(f.predicted), str(f.correct), fmt(f.precision), fmt(f.recall), fmt(f.f1))
    for v in VERDICTS:
        p = rep.per_verdict[v]
        t.add_row(v, str(p.support), str(p.predicted), str(p.correct), fmt(p.precision), fmt(p.recall), fmt(p.f1))
    console.print(t)
    console.print(f"macro F1 {fmt(rep.macro_f1)}   verdict accuracy {fmt(rep.verdict_accuracy)}   "
                  f"standard accuracy {fmt(rep.standard_accuracy)} (of {rep.standard[1]})   "
                  f"licence accuracy {fmt(rep.licence_accuracy)} (of {rep.licence[1]})"
                  + (f"   [red]{rep.no_reason} verdicts without a reason[/red]" if rep.no_reason else ""))
    c = Table(title="confusion matrix (rows: expected, columns: engine)", title_justify="left")
    c.add_column("expected \\ got", no_wrap=True)
    for v in VERDICTS:
        c.add_column(v.replace("_", " "), justify="right")
    for e in VERDICTS:
        row = rep.confusion.get(e, {})
        c.add_row(e, *[(f"[bold]{row.get(g, 0)}[/bold]" if e == g else str(row.get(g, 0) or "·")) for g in VERDICTS])
    console.print(c)
    ms = rep.worst(worst)
    if not ms:
        console.print("no mistakes")
        return
    console.print(f"[bold]{len(rep.mistakes)} mistakes[/bold]; the worst {len(ms)}:")
    for i, m in enumerate(ms, 1):
        e, g = m.case.expected, m.case.got
        console.print(f"{i:>2}. [bold]{m.kind}[/bold] line {m.case.line} {escape(m.case.key)}: {escape(m.case.title[:110])}")
        console.print(f"    expected {e['verdict']} {escape(str(e.get('tis_no') or '—'))} {escape(str(e.get('licence_no') or '—'))}"
                      f"   got {g['verdict']} {escape(str(g.get('tis_no') or '—'))} {escape(str(g.get('licence_no') or '—'))} risk {g.get('risk')}")
        for r in g.get("reasons", []):
            console.print(f"      · {escape(sentence(r, lang))}  [dim]{escape(r)}[/dim]")
