"""The in-memory Registry that matching.check() and the licence check read: licences indexed by
standard, number and brand, with each licence's status history.

Built once per crawl, check run or web app (from the registry store or straight from a licence file)
and then only read, so checking a listing does no I/O. Licences are filed under the standard the
catalogue knows them by: a licence issued under an older edition with another number (a hair dryer
under 1985-2549, now 60335 เล่ม 2(23)-2564) is found under the current one.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from functools import lru_cache
from pathlib import Path

from matching.normalise import brand_key, model_key
from registry.catalogue import Catalogue, Standard, load_catalogue
from registry.licences import Licence, read_licence_file

_brand_key = lru_cache(maxsize=1 << 16)(brand_key)  # trademarks repeat across a brand's licences

# licence_no -> [(since ISO date, status), ...] in time order
StatusHistory = Mapping[str, Sequence[tuple[str, str]]]
# licence_no -> [(effective ISO date, field, old value as stored), ...] in the order the changes happened
FieldHistory = Mapping[str, Sequence[tuple[str, str, str | None]]]


class Registry:
    def __init__(self, licences: Iterable[Licence], catalogue: Catalogue, version: str = "",
                 status_history: StatusHistory | None = None, field_history: FieldHistory | None = None):
        self.catalogue = catalogue
        self.version = version
        self.by_no: dict[str, Licence] = {}
        self.by_base: dict[str, list[Licence]] = defaultdict(list)
        # base -> brand key -> licences under that base carrying the brand
        self.brands: dict[str, dict[str, list[Licence]]] = defaultdict(lambda: defaultdict(list))
        self.all_brands: dict[str, set[str]] = defaultdict(set)  # brand key -> bases
        self.model_keys: dict[str, frozenset[str]] = {}
        self.brand_keys: dict[str, frozenset[str]] = {}  # licence_no -> keys of its trademarks
        self.base_of: dict[str, str] = {}  # licence_no -> the catalogue base it is filed under
        self.history: dict[str, list[tuple[str, str]]] = {k: list(v) for k, v in (status_history or {}).items()}
        self.field_history: dict[str, list[tuple[str, str, str | None]]] = {
            k: list(v) for k, v in (field_history or {}).items()}
        self.load_errors: list = []
        for lic in licences:
            self.add(lic)

    def add(self, lic: Licence) -> None:
        self.by_no[lic.licence_no] = lic
        std = self.catalogue.find(lic.tis)
        base = std.base if std is not None else lic.base
        self.base_of[lic.licence_no] = base
        self.by_base[base].append(lic)
        keys = []
        for tm in lic.trademarks:
            k = _brand_key(tm)
            if k:
                keys.append(k)
                self.brands[base][k].append(lic)
                self.all_brands[k].add(base)
        self.brand_keys[lic.licence_no] = frozenset(keys)
        self.model_keys[lic.licence_no] = frozenset(k for k in (model_key(m) for m in lic.models) if k)

    def __len__(self) -> int:
        return len(self.by_no)

    def licence(self, licence_no: str | None) -> Licence | None:
        return self.by_no.get(licence_no) if licence_no else None

    def licences_for(self, base: str) -> list[Licence]:
        return self.by_base.get(base, [])

    def standard(self, base: str) -> Standard | None:
        return self.catalogue.by_base(base)

    def status_on(self, licence_no: str, day: date) -> str | None:
        """The licence's status on `day` from its history; None when it was not yet issued (or, with no
        issue date in the file, not yet known). Without a history, its current status from its issue date."""
        lic = self.by_no.get(licence_no)
        if lic is None:
            return None
        hist = self.history.get(licence_no)
        if not hist:
            if lic.issued and day < lic.issued:
                return None
            if lic.status != "active" and lic.status_date and day < lic.status_date:
                return "active"
            return lic.status
        i = bisect.bisect_right([since for since, _ in hist], day.isoformat())
        return hist[i - 1][1] if i else None

    def licence_on(self, licence_no: str, day: date) -> Licence | None:
        """The licence as it stood on `day` (status, trademarks, models and the rest); None when it did
        not exist yet. Changes that took effect after `day` are undone."""
        lic = self.by_no.get(licence_no)
        status = self.status_on(licence_no, day)
        if lic is None or status is None:
            return None
        changes: dict[str, object] = {}
        for effective, f, old in reversed(self.field_history.get(licence_no, ())):
            if effective > day.isoformat() and f != "status" and f in _FIELDS:
                changes[f] = _uncell(f, old)
        out = replace(lic, **changes, status=status)  # type: ignore[arg-type]
        if status == "active" and out.status_date and out.status_date > day:
            out.status_date = None
        return out

    @classmethod
    def from_file(cls, path: str | Path, catalogue: Catalogue | None = None) -> Registry:
        """A registry straight from a licence file (`--registry PATH`); bad rows are skipped and kept
        in `load_errors`."""
        parsed = read_licence_file(path)
        reg = cls(parsed.licences, catalogue or load_catalogue(), version=f"file:{Path(path).name}")
        reg.load_errors = parsed.errors
        return reg

    @classmethod
    def from_store(cls, store, catalogue: Catalogue | None = None) -> Registry:
        """The stored registry with the history of every licence (status, and the fields that changed)."""
        fields: dict[str, list[tuple[str, str, str | None]]] = {}
        for no, effective, f, old in store.db.execute(
                "SELECT licence_no, effective, field, old FROM licence_changes ORDER BY id"):
            fields.setdefault(no, []).append((effective, f, old))
        return cls(store.licences(), catalogue or load_catalogue(), version=store.version(),
                   status_history=store.status_history(), field_history=fields)


_FIELDS = {"licence_type", "tis_no", "licensee", "tax_id", "trademarks", "product", "models", "factory", "origin",
           "issued", "status_date"}


def _uncell(key: str, v: str | None) -> object:
    if key in ("trademarks", "models"):
        return tuple(json.loads(v or "[]"))
    if key in ("issued", "status_date"):
        return date.fromisoformat(v) if v else None
    return v or ""
