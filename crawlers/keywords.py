"""Search keywords from the standards catalogue: every Thai and English product word of the consumer
standards, so a crawl asks the marketplace for exactly what the matcher can recognise."""

from __future__ import annotations

from registry.catalogue import Catalogue


def catalogue_keywords(catalogue: Catalogue, groups: set[str] | None = None) -> list[str]:
    seen: dict[str, None] = {}
    for s in catalogue.consumer_standards:
        if groups and s.group not in groups:
            continue
        for w in s.words:
            if len(w) >= 3 and not w.isdigit():
                seen.setdefault(w, None)
    return list(seen)
