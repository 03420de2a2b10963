"""The matching vocabulary (config/matching.toml): gift and negation words, categories that rule a
product out, brand aliases. Data that officers extend without code; validated when loaded.

Loaded once per process (like the standards catalogue) so that `check()` stays free of I/O.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from matching.normalise import brand_key, fold

DEFAULT_VOCABULARY = Path(__file__).resolve().parents[1] / "config" / "matching.toml"


class VocabularyError(Exception):
    pass


def _fold_all(v: list[str]) -> list[str]:
    out = []
    for w in v:
        f = fold(w)
        if not f:
            raise ValueError("empty word")
        out.append(f)
    return out


class _Words(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gift: list[str] = []
    negation: list[str] = []
    no_tis: list[str] = []
    title: list[str] = []
    other_products: list[str] = []
    common: list[str] = []

    _f = field_validator("gift", "negation", "no_tis", "title", "other_products", "common")(_fold_all)


class _Categories(BaseModel):
    model_config = ConfigDict(extra="forbid")
    not_controlled: list[str] = []

    _f = field_validator("not_controlled")(_fold_all)


class _Brand(BaseModel):
    model_config = ConfigDict(extra="forbid")
    names: list[str]

    @field_validator("names")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        if len(v) < 2:
            raise ValueError("a brand alias group needs at least two names")
        for n in v:
            if not brand_key(n):
                raise ValueError(f"{n!r} has no letters")
        return v


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    words: _Words = _Words()
    categories: _Categories = _Categories()
    brand: list[_Brand] = []


@dataclass(frozen=True)
class Vocabulary:
    gift: tuple[str, ...] = ()
    negation: tuple[str, ...] = ()
    no_tis: tuple[str, ...] = ()
    title: tuple[str, ...] = ()
    other_products: tuple[str, ...] = ()
    common: frozenset[str] = frozenset()
    not_controlled_categories: tuple[str, ...] = ()
    # brand key -> the keys of every spelling of that brand (itself included)
    aliases: dict[str, frozenset[str]] | None = None

    def brand_group(self, key: str) -> frozenset[str]:
        return (self.aliases or {}).get(key, frozenset((key,)))


def parse_vocabulary(raw: dict, source: str = "matching.toml") -> Vocabulary:
    try:
        data = _File.model_validate(raw)
    except ValidationError as e:
        msgs = [f"{source}: {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise VocabularyError("\n".join(msgs)) from None
    aliases: dict[str, set[str]] = {}
    for b in data.brand:
        keys = {brand_key(n) for n in b.names}
        merged = set(keys)
        for k in keys:
            merged |= aliases.get(k, set())
        for k in merged:
            aliases[k] = merged
    return Vocabulary(tuple(data.words.gift), tuple(data.words.negation), tuple(data.words.no_tis),
                      tuple(data.words.title), tuple(data.words.other_products),
                      frozenset(brand_key(w) for w in data.words.common), tuple(data.categories.not_controlled),
                      {k: frozenset(v) for k, v in aliases.items()})


@lru_cache(maxsize=4)
def load_vocabulary(path: str | None = None) -> Vocabulary:
    p = Path(path) if path else DEFAULT_VOCABULARY
    try:
        with p.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise VocabularyError(f"{p}: matching vocabulary not found") from None
    except tomllib.TOMLDecodeError as e:
        raise VocabularyError(f"{p}: not valid TOML: {e}") from None
    return parse_vocabulary(raw, str(p))
