"""`tiswatch demo`: one whole monitoring cycle against the sandbox marketplaces, on the embedded store.

1. build the sandbox world and serve it (Shopee-, Lazada- and shop-like sites on one local port);
2. write the world's licence file and import it like any TISI file;
3. crawl the three marketplaces at once, each in its own child process (Shopee in Chromium);
4. print what was seen per marketplace, the verdict counts next to what the sandbox generated, and the
   top flagged listings with their reasons; then serve the review app.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from settings import Settings, load_settings

VERDICT_ORDER = ("unlicensed", "mislabeled", "needs_review", "licensed", "not_controlled")


def _free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def demo_config(home: Path, sandbox_url: str, seeds: dict, base: Settings) -> Path:
    """A configuration for crawling the local sandbox: its URLs and seeds, no politeness delays."""
    lines = [
        "# written by `tiswatch demo`: crawl the local sandbox marketplaces",
        "[crawl]", "download_delay = 0.0", "autothrottle = false", "concurrency = 16", "concurrency_per_domain = 16",
        f"browser_pages = {max(4, base.crawl.browser_pages)}", f"browser_executable = {json.dumps(base.crawl.browser_executable)}",
        "time_limit = 900", "",
        "[marketplaces.shopee]", f'base_url = "{sandbox_url}/shopee"', f"categories = {json.dumps(seeds['shopee']['categories'])}",
        "catalogue_keywords = false", "seed_categories = false", "",
        "[marketplaces.lazada]", f'base_url = "{sandbox_url}/lazada"', f"categories = {json.dumps(seeds['lazada']['categories'])}",
        "catalogue_keywords = false", "seed_categories = false", "",
        "[marketplaces.shop]", f'base_url = "{sandbox_url}/shop"', "",
    ]
    p = home / "demo.toml"
    p.write_text("\n".join(lines), "utf-8")
    return p


def run_demo(settings: Settings, console: Console, serve: bool = True, review_port: int | None = None,
             sandbox_port: int | None = None, n_listings: int | None = None, seed: int | None = None,
             rounds: int = 1) -> int:
    from crawlers.runner import run_crawl
    from listings.store import SearchQuery, open_store
    from matching.reasons import sentence
    from registry.licences import write_licence_csv
    from registry.store import RegistryStore
    from sandbox.server import SandboxServer
    from sandbox.world import build_world

    s = settings
    s.ensure_home()
    t0 = time.monotonic()
    world = build_world(seed=seed if seed is not None else s.sandbox.seed, n_licences=s.sandbox.licences,
                        n_listings=n_listings or s.sandbox.listings, image_only_share=s.sandbox.image_only_share)
    port = s.sandbox.port if sandbox_port is None else sandbox_port
    if port and not _free(s.sandbox.host, port):
        console.print(f"[yellow]port {port} is busy; the sandbox takes a free port instead[/yellow]")
        port = 0
    server = SandboxServer(world, s.sandbox.host, port).start()
    console.print(f"[bold]sandbox marketplaces[/bold] on {server.url}/ — {len(world.listings)} listings, "
                  f"{len(world.licences)} licences (seed {world.seed})")

    lic_path = s.home / "sandbox-licences.csv"
    write_licence_csv(world.licences, lic_path, thai_headers=True)
    rs = RegistryStore(s.registry_db)
    rep = rs.import_file(lic_path)
    rs.close()
    console.print(f"registry: imported {lic_path.name}: {rep.added} added, {rep.updated} updated, {rep.unchanged} unchanged")

    seeds = json.load(urllib.request.urlopen(server.url + "/_sandbox/seeds.json", timeout=10))
    cfg = demo_config(s.home, server.url, seeds, s)
    cs = load_settings(config=cfg, home=s.home)
    results = {}
    for round_no in range(1, rounds + 1):
        if round_no > 1:
            req = urllib.request.Request(server.url + "/_sandbox/round", data=json.dumps({"round": round_no}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
            urllib.request.urlopen(req, timeout=10).read()
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as prog:
            tasks = {mp: prog.add_task(f"round {round_no}: crawling {mp} …", total=1) for mp in ("shopee", "lazada", "shop")}

            def one(mp: str, tasks=tasks, round_no=round_no):
                r = run_crawl(cs, mp, config=str(cfg), time_limit=900)
                prog.update(tasks[mp], completed=1, description=f"round {round_no}: {mp}: {r.reason}, {r.listings} listings")
                return mp, r

            with ThreadPoolExecutor(3) as ex:
                results = dict(ex.map(one, ("shopee", "lazada", "shop")))

    store = open_store(s)
    counts = store.counts()
    truth = world.expected_counts(rounds)
    t = Table(title="listings seen per marketplace")
    t.add_column("marketplace")
    t.add_column("in the sandbox", justify="right")
    t.add_column("stored", justify="right")
    t.add_column("crawl")
    for mp in ("shopee", "lazada", "shop"):
        r = results[mp]
        t.add_row(mp, str(len(world.for_marketplace(mp, rounds))), str(counts["by_marketplace"].get(mp, 0)),
                  f"{r.reason} in {r.seconds:.0f}s" + (f" (blocked: {r.report['blocked']['why']})" if r.report.get("blocked") else ""))
    console.print(t)
    t = Table(title="verdicts")
    t.add_column("verdict")
    t.add_column("sandbox truth", justify="right")
    t.add_column("tiswatch", justify="right")
    t.add_column("")
    active = {v: 0 for v in VERDICT_ORDER}
    stored = {}
    for h in store.search(SearchQuery(limit=100_000)).hits:
        if h["status"] == "active" and h["verdict"]:
            active[h["verdict"]] += 1
            stored[(h["marketplace"], h["item_id"])] = h
    match = True
    for v in VERDICT_ORDER:
        ok = truth.get(v, 0) == active.get(v, 0)
        match &= ok
        t.add_row(v, str(truth.get(v, 0)), str(active.get(v, 0)), "✓" if ok else "≠")
    console.print(t)
    lang = s.review.language
    wrong = truth_mismatches(world, stored, rounds)
    if wrong:
        t = Table(title=f"listings whose verdict differs from the sandbox truth ({len(wrong)})")
        for col in ("listing", "truth", "tiswatch", "why"):
            t.add_column(col)
        for w, h in wrong[:20]:
            why = "; ".join(sentence(r, lang) for r in h["reasons"] if not r.startswith(("product:", "claims_"))) if h else ""
            t.add_row(f"{w.marketplace} {w.item_id}: {w.listing['title'][:60]}", w.expected["verdict"],
                      h["verdict"] if h else "(not stored)", why[:160])
        console.print(t)

    top = store.search(SearchQuery(flagged_only=True, order="risk", limit=10)).hits
    t = Table(title="top flagged listings")
    t.add_column("risk", justify="right")
    t.add_column("verdict")
    t.add_column("listing")
    t.add_column("why")
    for h in top:
        why = "; ".join(sentence(r, lang) for r in h["reasons"] if not r.startswith(("product:", "claims_")))
        t.add_row(str(h["risk"]), h["verdict"], f"{h['marketplace']}: {h['title'][:70]}", why[:160])
    console.print(t)
    ok_crawls = all(r.ok for r in results.values())
    console.print(f"cycle done in {time.monotonic() - t0:.0f}s; data in {s.home.resolve()}"
                  + ("" if match else " — [yellow]verdict counts differ from the sandbox truth[/yellow]"))
    store.close()
    if not serve:
        server.stop()
        return 0 if ok_crawls else 1
    import uvicorn

    from review.app import create_app

    p = review_port or s.review.port
    from review.cli import ensure_demo_user

    console.print(f"[bold]review app[/bold] on http://{s.review.host}:{p}/  (Ctrl-C to stop)\n"
                  f"log in as [bold]demo[/bold] with the password [bold]{ensure_demo_user(s)}[/bold] (a demo officer; "
                  "a new password each run; `tiswatch users add NAME --role admin` makes an administrator)")
    try:
        uvicorn.run(create_app(s), host=s.review.host, port=p, log_level="warning")
    finally:
        server.stop()
    return 0


def truth_mismatches(world, stored: dict, round_no: int = 1) -> list:
    """(world listing, stored hit or None) for every listing the sandbox shows whose stored verdict is not
    the one the world was built to have: what a user (or CI) needs to see when the counts differ."""
    out = []
    for w in world.listings:
        if not w.visible(round_no):
            continue
        h = stored.get((w.marketplace, w.item_id))
        if h is None or h["verdict"] != w.expected["verdict"]:
            out.append((w, h))
    return out
