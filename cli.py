"""The `tiswatch` command. Global options (--home, --config) come first: `tiswatch --home DIR demo`.

Each package adds its own sub-commands (registry/cli.py, ...); this file holds the ones that tie the
packages together: demo, sandbox, crawl, parse, serve, run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from settings import ConfigError, Settings, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="markdown",
                  help="tiswatch: watches Thai online marketplaces for products sold without a valid TIS (มอก.) licence.")
console = Console()
err = Console(stderr=True)


class State:
    home: str | None = None
    config: str | None = None
    _settings: Settings | None = None

    def settings(self, **overrides: Any) -> Settings:
        if self._settings is None or overrides:
            try:
                s = load_settings(config=self.config, home=self.home, **overrides)
            except ConfigError as e:
                err.print(f"[red]configuration error[/red]\n{e}")
                raise typer.Exit(2) from None
            if overrides:
                return s
            self._settings = s
        return self._settings


state = State()


@app.callback()
def main_options(
    home: Annotated[str | None, typer.Option("--home", envvar="TISWATCH_HOME", help="data directory (default ./tiswatch-home)")] = None,
    config: Annotated[str | None, typer.Option("--config", envvar="TISWATCH_CONFIG", help="TOML configuration file")] = None,
) -> None:
    state.home, state.config = home, config
    state._settings = None  # a new invocation (tests run several in one process) reads them afresh


def _mount() -> None:
    from registry.cli import app as registry_app

    app.add_typer(registry_app, name="registry")
    from review.cli import app as users_app

    app.add_typer(users_app, name="users")
    from alerts.cli import app as partners_app

    app.add_typer(partners_app, name="partners")
    from matching.cli import check, eval_

    app.command("check")(check)
    app.command("eval")(eval_)
    from ops.cli import backup, jobs_app, restore

    app.add_typer(jobs_app, name="jobs")
    app.command("backup")(backup)
    app.command("restore")(restore)
    from listings.cli import history, search, seller, store_app

    app.command("search")(search)
    app.command("history")(history)
    app.command("seller")(seller)
    app.add_typer(store_app, name="store")
    from cluster.cli import app as cluster_app
    from cluster.cli import worker

    app.command("worker")(worker)
    app.add_typer(cluster_app, name="cluster")
    from crawlers.cli import app as evidence_app

    app.add_typer(evidence_app, name="evidence")
    from images.cli import app as images_app

    app.add_typer(images_app, name="images")


# ---- demo ---------------------------------------------------------------------------------------
@app.command()
def demo(
    no_serve: Annotated[bool, typer.Option("--no-serve", help="run the cycle, print the summary and exit")] = False,
    port: Annotated[int | None, typer.Option(help="review app port (default: [review] port, 8000)")] = None,
    sandbox_port: Annotated[int | None, typer.Option(help="sandbox port (default: [sandbox] port, 8800; 0 = any free)")] = None,
    listings: Annotated[int | None, typer.Option(help="listings in the sandbox world")] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the sandbox world")] = None,
) -> None:
    """A whole monitoring cycle against the local sandbox marketplaces, then the review app.

    Starts the sandbox (Shopee-, Lazada- and shop-like sites), imports the sandbox world's licence
    file, crawls each marketplace (Shopee in Chromium), checks and stores every listing, prints a
    summary and serves the review app on http://127.0.0.1:8000."""
    from sandbox.demo import run_demo

    s = state.settings()
    code = run_demo(s, console, serve=not no_serve, review_port=port, sandbox_port=sandbox_port,
                    n_listings=listings, seed=seed)
    raise typer.Exit(code)


@app.command()
def sandbox(
    port: Annotated[int | None, typer.Option(help="port (default [sandbox] port, 8800)")] = None,
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the generated world")] = None,
    listings: Annotated[int | None, typer.Option(help="number of listings")] = None,
    write_registry: Annotated[Path | None, typer.Option(help="also write the world's licence file (CSV) here")] = None,
) -> None:
    """Serve the sandbox marketplaces (offline replicas of Shopee, Lazada and a shop site)."""
    from sandbox.server import serve
    from sandbox.world import build_world

    s = state.settings()
    w = build_world(seed=seed if seed is not None else s.sandbox.seed, n_licences=s.sandbox.licences,
                    n_listings=listings or s.sandbox.listings, image_only_share=s.sandbox.image_only_share)
    if write_registry:
        from registry.licences import write_licence_csv

        write_licence_csv(w.licences, write_registry)
        console.print(f"licence file: {write_registry} ({len(w.licences)} licences)")
    h, p = host or s.sandbox.host, port if port is not None else s.sandbox.port
    serve(w, h, p, announce=lambda url: console.print(
        f"sandbox marketplaces on {url}/  (shopee/, lazada/, shop/, _sandbox/truth.jsonl)"))


# ---- crawl --------------------------------------------------------------------------------------
@app.command()
def crawl(
    marketplace: Annotated[str, typer.Argument(help="shopee, lazada or shop")],
    base_url: Annotated[str, typer.Option(help="override the marketplace's base URL (e.g. a sandbox)")] = "",
    category: Annotated[list[str] | None, typer.Option(help="category URL or path to crawl (repeatable)")] = None,
    keyword: Annotated[list[str] | None, typer.Option(help="search keyword (repeatable); default: from the catalogue")] = None,
    start_url: Annotated[list[str] | None, typer.Option(help="shop: product page URL (repeatable)")] = None,
    sitemap: Annotated[str, typer.Option(help="shop: sitemap URL")] = "",
    max_search_pages: Annotated[int | None, typer.Option(help="result pages per keyword or category")] = None,
    fresh: Annotated[bool, typer.Option(help="forget an interrupted crawl instead of resuming it")] = False,
    force: Annotated[bool, typer.Option(help="crawl even while the marketplace is paused after a block")] = False,
    time_limit: Annotated[float | None, typer.Option(help="seconds; default \\[crawl] time_limit")] = None,
    distributed: Annotated[bool | None, typer.Option("--distributed/--local", help="work on the marketplace's shared run in "
                                                     "Redis with other crawler processes (default: \\[distributed] enabled)")] = None,
    follow: Annotated[bool, typer.Option(help="with --distributed: keep running, join each run of the marketplace "
                                               "started elsewhere (the scheduler) until it is finished; stop with SIGTERM")] = False,
) -> None:
    """Crawl one marketplace now (in a child process), check and store what it finds.

    What to crawl comes from \\[marketplaces.NAME] in the configuration (its keywords and categories, the
    catalogue's product words, config/category_seeds.toml) unless --keyword/--category/--start-url/
    --sitemap say otherwise. A crawl that was stopped or killed resumes where it stopped, unless --fresh.
    After a block or captcha page the marketplace is paused (\\[crawl] block_pause_minutes) unless --force.
    A cap on the pages a crawl fetches: \\[crawl] max_pages (pages only: the listings' pictures and
    robots.txt do not count). Exit status 0 finished, 3 blocked or paused, 4 already running, 1 failed
    or stopped early (the time limit, the page cap).

    With --distributed any number of these processes, on any machines, split one crawl run of the
    marketplace (the first creates and seeds it, the others join; README "Scaling out"); the listings
    go to `tiswatch worker`s. --fresh then abandons the open run."""
    from crawlers.runner import run_crawl

    s = state.settings()
    if marketplace not in ("shopee", "lazada", "shop"):
        err.print(f"[red]unknown marketplace {marketplace!r}[/red] (shopee, lazada, shop)")
        raise typer.Exit(2)
    if distributed is None:
        distributed = s.distributed.enabled
    kw = dict(base_url=base_url, categories=category, keywords=keyword, start_urls=start_url, sitemap=sitemap,
              max_search_pages=max_search_pages, force=force, time_limit=time_limit)
    if follow:
        if not distributed:
            err.print("[red]--follow needs --distributed (or \\[distributed] enabled = true)[/red]")
            raise typer.Exit(2)
        from cluster.cli import _stop_on_signals
        from cluster.cli import follow as follow_runs

        n = follow_runs(s, marketplace, state.config, _stop_on_signals(), **kw)
        console.print(f"{marketplace}: stopped after {n} runs")
        raise typer.Exit(0)
    with console.status(f"crawling {marketplace} …"):
        r = run_crawl(s, marketplace, fresh=fresh, config=state.config, distributed=distributed, **kw)
    if not r.report:
        from crawlers.context import read_status

        why = {"paused": "paused after a block: " + json.dumps(read_status(s.home).get(marketplace, {}), ensure_ascii=False),
               "busy": "another crawl of this marketplace is running"}.get(r.reason, f"failed; see {r.log_path}")
        err.print(f"[red]{marketplace}: {why}[/red]")
        raise typer.Exit(r.returncode or 1)
    st = r.report.get("stats", {})
    console.print(f"{marketplace}: {r.reason} in {r.seconds:.1f}s; {r.listings} listings "
                  f"({st.get('tiswatch/skipped_unchanged', 0)} unchanged, not fetched), "
                  f"{st.get('downloader/request_count', 0)} requests, {r.report.get('delisted', 0)} delisted"
                  + (", resumed an interrupted crawl" if r.report.get("resumed") else "") + f"; log {r.log_path}")
    if r.report.get("blocked"):
        err.print(f"[red]blocked[/red] at {r.report['blocked'].get('url')}: {r.report['blocked'].get('why')}; "
                  f"paused until {r.report.get('paused_until')}")
    raise typer.Exit(0 if r.ok else (3 if r.reason == "blocked" else 1))


@app.command()
def parse(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="saved response: JSON, HTML, HAR or CSV")],
    url: Annotated[str, typer.Option(help="the URL the response came from (helps detection)")] = "",
    out: Annotated[Path | None, typer.Option(help="write JSON Lines here instead of standard output")] = None,
) -> None:
    """Turn a saved marketplace response into listings (DOMAIN.md §4.2 JSON Lines), detecting its kind."""
    from crawlers.parsers.common import Blocked, ParseError
    from crawlers.parsers.detect import parse_file

    try:
        kind, items = parse_file(path, url)
    except (ParseError, Blocked) as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    lines = "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items)
    if out:
        out.write_text(lines, "utf-8")
    else:
        sys.stdout.write(lines)
    err.print(f"{path}: {kind}, {len(items)} listings")


def _registry(s: Settings, registry_path: Path | None):
    """The registry to check against: a licence file or the stored one (matching/cli.py)."""
    from matching.cli import load_registry

    return load_registry(s, registry_path)


# ---- serve and run ------------------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address (default [review] host)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default [review] port, 8000)")] = None,
) -> None:
    """Serve the review app (officers, investigators, partners) on http://HOST:PORT/."""
    import uvicorn

    from review.app import create_app

    s = state.settings()
    s.ensure_home()
    h, p = host or s.review.host, port or s.review.port
    console.print(f"review app on http://{h}:{p}/")
    _no_users_hint(s)
    uvicorn.run(create_app(s), host=h, port=p, log_level="warning")


def _no_users_hint(s: Settings) -> None:
    from review.db import open_appdb

    db = open_appdb(s)
    if db.count_users() == 0:
        err.print("[yellow]no users yet[/yellow]: make the first administrator with `tiswatch users add NAME --role admin`")
    db.close()


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="review app address")] = None,
    port: Annotated[int | None, typer.Option(help="review app port")] = None,
    now: Annotated[list[str] | None, typer.Option("--now", help="also run this job at once (repeatable), e.g. crawl:shopee")] = None,
    no_app: Annotated[bool, typer.Option("--no-app", help="run the scheduler only, without the review app")] = False,
) -> None:
    """The service: the scheduler (crawls and the other scheduled jobs), the review app and the webhook
    delivery worker ([alerts] delivery_worker) together.

    Runs until SIGTERM or Ctrl-C, then stops gracefully: running crawls finish the pages in flight (or
    are killed after the schedule's shutdown_grace seconds) and nothing is left half-written. Runs missed
    while it was stopped are made up once each at start. `tiswatch jobs` shows what runs when."""
    from ops.schedule import JobConfigError
    from ops.service import ServiceError, run_service

    s = state.settings()
    s.ensure_home()
    h, p = host or s.review.host, port if port is not None else s.review.port
    if not no_app:
        _no_users_hint(s)

    def ready(svc) -> None:
        n = len(svc.sched.get_jobs()) if svc.sched is not None else 0
        where = "no review app" if no_app else f"review app on http://{h}:{p}/"
        console.print(f"scheduler {'started (' + str(n) + ' jobs)' if svc.sched is not None else 'disabled'}; {where}")

    try:
        code = run_service(s, state.config, h, p, app=not no_app, now_jobs=now or [], on_ready=ready)
    except (ServiceError, JobConfigError) as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    raise typer.Exit(code)


_mount()


def main() -> None:
    app()


if __name__ == "__main__":
    # `python -m cli` runs this file as __main__; the sub-commands import `cli` for its state, which
    # would be a second, unconfigured copy. Run the one importable module instead.
    import cli as _cli

    _cli.main()
