"""Resident memory of a process and all its descendants (the crawl child, Playwright's driver and every
Chromium process), read from /proc: what a long crawl costs the machine. Linux only; 0 elsewhere."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in PROC.iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces: the fields after the last ")" are fixed
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1:
            kids.setdefault(int(fields[1]), []).append(int(d.name))
    return kids


def _field_kb(path: Path, name: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _tree(root: int, kids: dict[int, list[int]] | None = None) -> list[int]:
    """`root` and its descendants, each after its parent (`kids`: _children(), read here if not given)."""
    kids = _children() if kids is None else kids
    out, todo, seen = [], [root], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_memory_mb(pid: int | None = None) -> tuple[float, float]:
    """(RSS, PSS) in MiB of `pid` (default: this process) and its descendants. RSS counts pages shared
    between processes (Chromium's) in each, as `ps` does; PSS divides them among their sharers, so
    it is what the crawl really costs the machine."""
    if not PROC.exists():
        return 0.0, 0.0
    rss = pss = 0
    for p in _tree(os.getpid() if pid is None else pid):
        rss += _field_kb(PROC / str(p) / "status", "VmRSS:")
        pss += _field_kb(PROC / str(p) / "smaps_rollup", "Pss:")
    return round(rss / 1024, 1), round(pss / 1024, 1)


def tree_rss_mb(pid: int | None = None) -> float:
    return tree_memory_mb(pid)[0]


def tree_memory(pid: int | None = None) -> dict[str, float]:
    """tree_memory_mb() with where it is: `rss`/`pss` of the tree, `self_rss`/`self_pss` of `pid`
    alone (the Python side), `processes` in the tree. A tree's RSS rises and falls with how many
    Chromium renderers are alive at that instant (each counts the pages it shares again); its PSS
    and the Python side's own figures are the ones that show a leak."""
    if not PROC.exists():
        return {"rss": 0.0, "pss": 0.0, "self_rss": 0.0, "self_pss": 0.0, "processes": 0}
    root = os.getpid() if pid is None else pid
    rss = pss = 0
    pids = _tree(root)
    for p in pids:
        rss += _field_kb(PROC / str(p) / "status", "VmRSS:")
        pss += _field_kb(PROC / str(p) / "smaps_rollup", "Pss:")
    return {"rss": round(rss / 1024, 1), "pss": round(pss / 1024, 1),
            "self_rss": round(_field_kb(PROC / str(root) / "status", "VmRSS:") / 1024, 1),
            "self_pss": round(_field_kb(PROC / str(root) / "smaps_rollup", "Pss:") / 1024, 1),
            "processes": len(pids)}


# ---- where the memory is: the tree by role ------------------------------------------------------------
ROLES = ("crawl", "store_worker", "python_other", "driver", "browser", "renderers", "gpu", "utility",
         "zygote", "other")


def role_of(argv: list[str], is_root: bool = False) -> str:
    """What a process of a crawl's tree is, from its command line (`/proc/PID/cmdline` split at NULs):
    the crawl process itself (the root), its store worker (a multiprocessing "spawn" child,
    crawlers/storeworker.py), another Python helper (multiprocessing's resource tracker), Playwright's
    node driver, Chromium's browser process, its renderers (one per site a page is open on), its GPU
    process, its utility processes (the network service, storage) and its zygotes. Pure."""
    if is_root:
        return "crawl"
    if not argv:
        return "other"
    if len(argv) == 1 and " " in argv[0]:  # Chromium rewrites its children's titles into one string
        argv = argv[0].split()
    exe = argv[0].rsplit("/", 1)[-1]
    joined = " ".join(argv)
    if exe.startswith("python") or "python" in exe:
        return "store_worker" if "spawn_main" in joined else "python_other"
    if exe == "node" or exe.startswith("node") or "run-driver" in joined or "playwright/driver" in joined:
        return "driver"
    if "chrom" in exe or "headless_shell" in exe or "chrome" in joined.split(" ", 1)[0]:
        kind = next((a.split("=", 1)[1] for a in argv if a.startswith("--type=")), None)
        if kind is None:
            return "browser"
        return {"renderer": "renderers", "gpu-process": "gpu", "utility": "utility", "zygote": "zygote"}.get(kind, "other")
    return "other"


def _argv(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def tree_by_role(pid: int | None = None) -> dict[str, dict[str, float]]:
    """The tree of `pid` (default: this process) by role (role_of): for each role present,
    {"rss": MiB, "pss": MiB, "anon": MiB, "n": processes}; `anon` is the resident memory that is the
    processes' own (heaps, not files mapped such as SQLite's through mmap or the shared libraries). Which process grows during a long crawl: the tree's
    total says that it grows, this says where."""
    if not PROC.exists():
        return {}
    root = os.getpid() if pid is None else pid
    out: dict[str, dict[str, float]] = {}
    for p in _tree(root):
        r = role_of(_argv(p), p == root)
        rss = _field_kb(PROC / str(p) / "status", "VmRSS:")
        pss = _field_kb(PROC / str(p) / "smaps_rollup", "Pss:")
        if not rss and not pss:
            continue  # gone while we looked
        d = out.setdefault(r, {"rss": 0.0, "pss": 0.0, "anon": 0.0, "n": 0})
        d["rss"] += rss / 1024
        d["pss"] += pss / 1024
        d["anon"] += _field_kb(PROC / str(p) / "status", "RssAnon:") / 1024
        d["n"] += 1
    for d in out.values():
        d["rss"], d["pss"], d["anon"] = round(d["rss"], 1), round(d["pss"], 1), round(d["anon"], 1)
    return out


def window_medians(readings: list[tuple[int, float, float, dict]], after: int) -> dict[str, Any]:
    """Medians of the memory readings taken after `after` pages: `readings` are (pages, tree RSS, tree
    PSS, tree_by_role()) as a crawl takes them. Returns {} when none is that late, else "rss", "pss",
    "roles" ({role: {"rss", "pss", "anon", "n": median}}), "readings", and the same "rss"/"pss" over
    the readings with one Chromium alive ("one_browser": {"rss", "pss", "readings"}, empty when there
    were none). Why the second figure: when Chromium is replaced ([crawl] browser_retire_pages), the
    old browser finishes the pages it has open beside the new one, and readings taken then count two
    browsers; the one-browser median leaves them out. (In the benchmark runs of 24-25 Nov that was 1
    reading of 20 per window, and the two medians were within 25 MB.) Pure."""
    import statistics

    last = [m for m in readings if m[0] > after]
    if not last:
        return {}
    names = sorted({r for m in last for r in m[3]})
    out: dict[str, Any] = {
        "rss": statistics.median(m[1] for m in last), "pss": statistics.median(m[2] for m in last),
        "readings": len(last),
        "roles": {r: {k: statistics.median(m[3].get(r, {}).get(k, 0) for m in last) for k in ("rss", "pss", "anon", "n")}
                  for r in names}}
    one = [m for m in last if m[3].get("browser", {}).get("n", 0) == 1]
    out["one_browser"] = ({"rss": statistics.median(m[1] for m in one), "pss": statistics.median(m[2] for m in one),
                           "readings": len(one)} if one else {})
    return out


# ---- giving freed memory back ---------------------------------------------------------------------------
_trim: Any = None


def release_free_heap() -> bool:
    """Give the memory malloc holds free back to the system (glibc's malloc_trim(0)); False where there
    is no glibc. Why: a crawl frees most of what it allocates (pages, pictures, screenshots), but glibc
    returns freed memory only from the top of each heap, and every thread that allocates gets a heap
    (arena) of its own: the image stage decodes pictures in asyncio.to_thread threads, whose arenas
    keep the freed memory between the chunks still in use. Over a crawl with pictures on, the crawl
    process's RSS grew 46 MB from 200 to 1,000 pages (a Lazada crawl, OCR off) with its Python
    objects flat; with a malloc_trim(0) every 50 pages, 6 MB (README "Benchmarks"). A call took under
    a millisecond in a crawl without pictures, ~20 ms with them."""
    global _trim
    if _trim is None:
        try:
            import ctypes

            _trim = ctypes.CDLL("libc.so.6").malloc_trim
            _trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _trim = False
    if not _trim:
        return False
    _trim(0)
    return True


def freeze_start_up(young_threshold: int | None = None) -> int:
    """What start-up made (modules, settings, the crawler; in the store worker also the registry, the
    Thai dictionary and the matcher's indexes: 100,000-150,000 objects that live as long as the
    process) is left out of the garbage collector's full passes from now on (gc.freeze), which would
    otherwise walk all of it again and again while each page or listing makes short-lived objects.
    Garbage made so far is collected first. `young_threshold`: collect the young generation every that
    many new objects instead of Python's 700 (crawlers/run.py: crawls without a browser). Returns how
    many objects were frozen."""
    import gc

    gc.collect()
    gc.freeze()
    if young_threshold is not None:
        gc.set_threshold(young_threshold, *gc.get_threshold()[1:])
    return gc.get_freeze_count()


# ---- the crawl's Chromium processes ---------------------------------------------------------------------
CHROMIUM_ROLES = ("browser", "renderers", "gpu", "utility", "zygote", "helper")


def browser_processes(pid: int | None = None) -> dict[int, str]:
    """{pid: role} of the Chromium processes under `pid` (default: this process): the crawl's browsers
    and their children (role_of). A browser is a Chromium process without --type whose parent is not
    Chromium (Playwright's driver); such a process under another Chromium process (a short-lived fork
    while the browser starts) is a "helper". Empty where there is no /proc."""
    if not PROC.exists():
        return {}
    root = os.getpid() if pid is None else pid
    kids = _children()
    parent = {k: p for p, ks in kids.items() for k in ks}
    out: dict[int, str] = {}
    for p in _tree(root, kids)[1:]:  # parents before their children
        r = role_of(_argv(p))
        if r in CHROMIUM_ROLES:
            out[p] = "helper" if r == "browser" and parent.get(p) in out else r
    return out


def driver_environ(pid: int | None = None) -> dict[str, str] | None:
    """The environment of the Playwright driver under `pid` (default: this process), None when there
    is none (or no /proc)."""
    if not PROC.exists():
        return None
    root = os.getpid() if pid is None else pid
    for p in _tree(root)[1:]:
        if role_of(_argv(p)) == "driver":
            try:
                raw = (PROC / str(p) / "environ").read_bytes()
            except OSError:
                continue
            return dict(kv.decode("utf-8", "replace").split("=", 1) for kv in raw.split(b"\0") if b"=" in kv)
    return None


def descendants(pid: int) -> list[int]:
    """`pid` and every process under it (empty when it is gone)."""
    if not PROC.exists() or not (PROC / str(pid)).exists():
        return []
    return _tree(pid)


def alive_chromium(pids: list[int]) -> list[int]:
    """Those of `pids` that are still Chromium processes (a pid reused by another program is not)."""
    return [p for p in pids if role_of(_argv(p)) in CHROMIUM_ROLES]
