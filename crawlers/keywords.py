"""What a crawl asks a marketplace for: search keywords and category start points.

Keywords come from the standards catalogue (every Thai and English product word of the consumer
standards, so a crawl asks for exactly what the matcher recognises) plus the marketplace's configured
ones; categories from config/category_seeds.toml (real category URLs where controlled products are
sold) plus the configured ones. Keywords or categories given for one crawl (`tiswatch crawl --keyword`,
`scrapy crawl -a keywords=...`) replace all of that.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.catalogue import Catalogue

SEEDS_FILE = Path(__file__).resolve().parents[1] / "config" / "category_seeds.toml"


def catalogue_keywords(catalogue: Catalogue, groups: set[str] | None = None) -> list[str]:
    seen: dict[str, None] = {}
    for s in catalogue.consumer_standards:
        if groups and s.group not in groups:
            continue
        for w in s.words:
            if len(w) >= 3 and not w.isdigit():
                seen.setdefault(w, None)
    return list(seen)


def load_seeds(path: str | Path = SEEDS_FILE) -> dict[str, list[str]]:
    """{marketplace: [category path or URL]} from a seeds file; a bad file names itself and why."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{p}: cannot read category seeds: {e}") from None
    out: dict[str, list[str]] = {}
    for mp, section in data.items():
        cats = section.get("categories") if isinstance(section, dict) else None
        if not isinstance(cats, list) or not all(isinstance(c, str) and c.strip() for c in cats):
            raise ValueError(f"{p}: [{mp}] categories must be a list of non-empty strings")
        out[mp] = [c.strip() for c in cats]
    return out


@dataclass(frozen=True)
class StartPoints:
    keywords: list[str]
    categories: list[str]
    explicit: bool  # given for this crawl, not from configuration


def _dedupe(xs: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(x for x in xs if x))


def start_points(marketplace: str, mp: Any | None, keywords: list[str], categories: list[str],
                 catalogue_words: list[str], seeds: dict[str, list[str]]) -> StartPoints:
    """`mp` is the marketplace's settings (MarketplaceSettings or None); `keywords`/`categories` were
    given for this crawl. Pure."""
    if keywords or categories:
        return StartPoints(_dedupe(keywords), _dedupe(categories), True)
    use_catalogue = True if mp is None else mp.catalogue_keywords
    use_seeds = True if mp is None else mp.seed_categories
    kw = list(mp.keywords if mp is not None else []) + (catalogue_words if use_catalogue else [])
    cats = list(mp.categories if mp is not None else []) + (seeds.get(marketplace, []) if use_seeds else [])
    return StartPoints(_dedupe(kw), _dedupe(cats), False)
