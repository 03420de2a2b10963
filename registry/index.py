"""The in-memory Registry that matching.check() reads: licences indexed by standard, number and brand.

Built once per crawl or check run (from the registry store or straight from a licence file) and then
only read, so checking a listing does no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from matching.normalise import brand_key, model_key
from registry.catalogue import Catalogue, Standard, load_catalogue
from registry.licences import Licence, read_licence_file


class Registry:
    def __init__(self, licences: Iterable[Licence], catalogue: Catalogue, version: str = ""):
        self.catalogue = catalogue
        self.version = version
        self.by_no: dict[str, Licence] = {}
        self.by_base: dict[str, list[Licence]] = defaultdict(list)
        # base -> brand key -> licences under that base carrying the brand
        self.brands: dict[str, dict[str, list[Licence]]] = defaultdict(lambda: defaultdict(list))
        self.all_brands: dict[str, set[str]] = defaultdict(set)  # brand key -> bases
        self.model_keys: dict[str, frozenset[str]] = {}
        for lic in licences:
            self.add(lic)

    def add(self, lic: Licence) -> None:
        self.by_no[lic.licence_no] = lic
        base = lic.base
        self.by_base[base].append(lic)
        for tm in lic.trademarks:
            k = brand_key(tm)
            if k:
                self.brands[base][k].append(lic)
                self.all_brands[k].add(base)
        self.model_keys[lic.licence_no] = frozenset(model_key(m) for m in lic.models if model_key(m))

    def __len__(self) -> int:
        return len(self.by_no)

    def licence(self, licence_no: str | None) -> Licence | None:
        return self.by_no.get(licence_no) if licence_no else None

    def licences_for(self, base: str) -> list[Licence]:
        return self.by_base.get(base, [])

    def standard(self, base: str) -> Standard | None:
        return self.catalogue.by_base(base)

    @classmethod
    def from_file(cls, path: str | Path, catalogue: Catalogue | None = None) -> Registry:
        """A registry straight from a licence file (`--registry PATH`); bad rows are skipped."""
        parsed = read_licence_file(path)
        reg = cls(parsed.licences, catalogue or load_catalogue(), version=f"file:{Path(path).name}")
        reg.load_errors = parsed.errors  # type: ignore[attr-defined]
        return reg

    @classmethod
    def from_store(cls, store, catalogue: Catalogue | None = None) -> Registry:
        return cls(store.licences(), catalogue or load_catalogue(), version=store.version())
