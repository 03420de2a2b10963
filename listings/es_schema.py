"""Index names, templates, mappings and rollover policies of the Elasticsearch/OpenSearch store. Pure.

The project creates everything it needs (`ElasticStore.setup`, idempotent):
- index templates `<prefix>-<kind>` for each kind of document, so indices created later (by
  rollover) get the same settings and mappings;
- one concrete index per kind behind an alias (`<prefix>-listings` -> `<prefix>-listings-v2`), so a
  mapping change can be rolled out by reindexing into `-v3` and moving the alias;
- observations in **time-based indices** `<prefix>-observations-YYYY.MM.DD-000001` behind the alias
  `<prefix>-observations` (one write index, all indices read), rolled over by a policy: ILM on
  Elasticsearch, ISM on OpenSearch, or by the store itself (`client` rollover: the same conditions,
  checked after bulk writes and by `tiswatch store rollover`) where the cluster has neither (osmem).

Listing text is indexed pre-tokenised (listings/query.py): `words` (pythainlp's cut) and `grams` (every
trigram of the folded text, computed in Python and left out of `_source`), both with a whitespace
analyzer, so no cluster plugin (no `thai` analyzer, no ICU, no n-gram tokenizer) is needed and the
phrase queries mean the same on every cluster.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

KINDS = ("listings", "observations", "changes", "verdicts", "evidence", "crawl", "meta", "images")
INDEX_VERSION = "v2"

ANALYSIS = {
    "analyzer": {
        "tw_words": {"type": "custom", "tokenizer": "whitespace"},
    },
}

_KW = {"type": "keyword"}
_DATE = {"type": "date"}
_OFF = {"type": "object", "enabled": False}
_STORED_TEXT = {"type": "text", "index": False}
_LONG_KW = {"type": "keyword", "ignore_above": 512}

MAPPINGS: dict[str, dict[str, Any]] = {
    "listings": {
        "key": _KW, "marketplace": _KW, "item_id": _KW, "shop_id": _KW, "url": _LONG_KW, "title": _STORED_TEXT,
        "description": _STORED_TEXT, "brand": _LONG_KW, "seller": _LONG_KW, "seller_id": _KW, "price": {"type": "double"},
        "currency": _KW, "sold": {"type": "long"}, "location": _LONG_KW, "category": _LONG_KW, "attributes": _OFF,
        "images": {"type": "keyword", "index": False, "doc_values": False},
        "first_seen": _DATE, "last_seen": _DATE, "status": _KW, "delisted_at": _DATE, "content_hash": _KW,
        "verdict": _KW, "risk": {"type": "integer"}, "tis_no": _KW, "licence_no": _KW, "reasons": _LONG_KW,
        "detail": _OFF, "checked_at": _DATE, "registry_version": _KW, "review_status": _KW, "flagged_at": _DATE,
        "tis_base": _KW, "seller_norm": _LONG_KW, "seller_key": _KW,
        "std_bases": _KW, "claimed_licences": _KW,  # from detail (standards, licence claims): re-checks find them
        "words": {"type": "text", "analyzer": "tw_words"}, "grams": {"type": "text", "analyzer": "tw_words"},
        "obs": _OFF,  # the latest observation run: {index, id, content_hash, first_seen, last_seen, times}
    },
    "observations": {"key": _KW, "content_hash": _KW, "first_seen": _DATE, "last_seen": _DATE, "times": {"type": "integer"},
                     "seq": {"type": "long"}, "data": _OFF},
    "changes": {"key": _KW, "at": _DATE, "field": _KW, "old": {"type": "keyword", "index": False, "doc_values": False},
                "new": {"type": "keyword", "index": False, "doc_values": False}, "seq": {"type": "long"}},
    "verdicts": {"key": _KW, "at": _DATE, "verdict": _KW, "risk": {"type": "integer"}, "tis_no": _KW, "licence_no": _KW,
                 "reasons": _LONG_KW, "registry_version": _KW, "seq": {"type": "long"}},
    "evidence": {"key": _KW, "kind": _KW, "path": _LONG_KW, "sha256": _KW, "size": {"type": "long"}, "created_at": _DATE,
                 "pruned_at": _DATE, "seq": {"type": "long"}},
    "crawl": {"marketplace": _KW, "ref": _LONG_KW, "key": _KW, "keys": _KW, "card_hash": _KW, "fetched_at": _DATE},
    "meta": {"schema_version": {"type": "integer"}, "created_at": _DATE, "rollover": _KW},
    # the listings' pictures (images/): the perceptual hash whole and in four 16-bit parts (near-duplicates)
    "images": {"key": _KW, "idx": {"type": "integer"}, "url": {"type": "keyword", "index": False, "doc_values": False},
               "sha256": _KW, "phash": _KW, "p0": {"type": "integer"}, "p1": {"type": "integer"}, "p2": {"type": "integer"},
               "p3": {"type": "integer"}, "width": {"type": "integer"}, "height": {"type": "integer"}, "first_seen": _DATE,
               "last_seen": _DATE},
}


def alias(prefix: str, kind: str) -> str:
    return f"{prefix}-{kind}"


def concrete(prefix: str, kind: str) -> str:
    """The index behind a kind's alias (observations: the pattern of its time-based indices)."""
    return f"{prefix}-{kind}-{INDEX_VERSION}" if kind != "observations" else f"{prefix}-observations-*"


def observation_index(prefix: str, at: datetime, n: int) -> str:
    """The name of the n-th observation index, created at `at`: <prefix>-observations-2026.11.24-000001."""
    return f"{prefix}-observations-{at.astimezone(UTC):%Y.%m.%d}-{n:06d}"


_OBS_NAME = re.compile(r"-observations-(\d{4}\.\d{2}\.\d{2})-(\d{6})$")


def observation_number(index: str) -> int:
    m = _OBS_NAME.search(index)
    return int(m.group(2)) if m else 0


def index_settings(kind: str, shards: int, replicas: int) -> dict[str, Any]:
    s: dict[str, Any] = {"number_of_shards": shards, "number_of_replicas": replicas, "analysis": ANALYSIS}
    if kind == "listings":
        s["max_result_window"] = 100_000  # deep pages of a search (SearchQuery.offset) up to 100,000
    if kind in ("meta", "crawl"):
        s["number_of_shards"] = 1
    return s


def template(prefix: str, kind: str, shards: int, replicas: int, flavor: str, rollover: str,
             policy: str | None = None) -> dict[str, Any]:
    """The composable index template of one kind. Observation indices get the rollover policy's
    settings on clusters that manage rollover (ILM: Elasticsearch; ISM attaches by its own
    ism_template, so only the rollover alias is set)."""
    settings = {"index": index_settings(kind, shards, replicas)}
    if kind == "observations":
        if rollover == "ilm" and flavor == "elasticsearch":
            settings["index"]["lifecycle"] = {"name": policy or f"{prefix}-observations", "rollover_alias": alias(prefix, kind)}
        elif rollover == "ism" and flavor == "opensearch":
            settings["index"]["plugins.index_state_management.rollover_alias"] = alias(prefix, kind)
    pattern = f"{prefix}-{kind}-*"
    return {"index_patterns": [pattern], "priority": 200,
            "template": {"settings": settings, "mappings": _mapping(kind)},
            "_meta": {"managed_by": "tiswatch", "schema": INDEX_VERSION}}


def _mapping(kind: str) -> dict[str, Any]:
    m: dict[str, Any] = {"dynamic": "strict", "properties": MAPPINGS[kind]}
    if kind == "listings":
        m["_source"] = {"excludes": ["grams"]}  # recomputed on every write; four times the text
    return m


def ilm_policy(max_age: str, max_docs: int, max_size: str) -> dict[str, Any]:
    """Elasticsearch ILM: roll the observation write index over; never delete (investigations go
    back years; evidence retention is a separate, file-level policy)."""
    rollover = {"max_age": max_age, "max_docs": max_docs, "max_primary_shard_size": max_size}
    return {"policy": {"phases": {"hot": {"min_age": "0ms", "actions": {"rollover": rollover}}},
                       "_meta": {"managed_by": "tiswatch"}}}


def ism_policy(prefix: str, max_age: str, max_docs: int, max_size: str) -> dict[str, Any]:
    """OpenSearch ISM: the same rollover, attached to new observation indices by ism_template."""
    return {"policy": {
        "description": "tiswatch: roll observation indices over (never deleted)",
        "default_state": "hot",
        "states": [{"name": "hot", "actions": [{"rollover": {"min_index_age": max_age, "min_doc_count": max_docs,
                                                             "min_primary_shard_size": max_size}}],
                    "transitions": []}],
        "ism_template": [{"index_patterns": [f"{prefix}-observations-*"], "priority": 200}],
    }}


_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_SIZE = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}


def parse_age(text: str) -> float:
    """'30d' -> seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*([dhms])\s*", text or "")
    if not m:
        raise ValueError(f"{text!r} is not an age like 30d, 12h, 90m")
    return int(m.group(1)) * _UNITS[m.group(2)]


def parse_size(text: str) -> int:
    """'50gb' -> bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*(b|kb|mb|gb|tb)\s*", (text or "").lower())
    if not m:
        raise ValueError(f"{text!r} is not a size like 50gb, 500mb")
    return int(m.group(1)) * _SIZE[m.group(2)]


def rollover_due(docs: int, size_bytes: int, created: datetime, now: datetime, max_docs: int, max_size: int,
                 max_age_s: float) -> str | None:
    """Why the write index should roll over now (the first condition met), or None. The same OR of
    conditions as an ILM/ISM rollover action."""
    if max_docs and docs >= max_docs:
        return f"{docs:,} documents >= {max_docs:,}"
    if max_size and size_bytes >= max_size:
        return f"{size_bytes:,} bytes >= {max_size:,}"
    age = (now - created).total_seconds()
    if max_age_s and age >= max_age_s and docs > 0:
        return f"{age / 86400:.1f} days old"
    return None
