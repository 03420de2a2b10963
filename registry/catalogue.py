"""The compulsory-standards catalogue (config/standards.toml): data that officers extend without code.

Loaded once, validated with pydantic; a mistake names the file, the standard and the field.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from matching.normalise import fold
from registry.tisno import TisNo, parse_tis


class CatalogueError(Exception):
    pass


class StandardEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    tis: str
    name_th: str
    name_en: str = ""
    licences: list[int] = Field(default_factory=lambda: [0, 0, 0], min_length=3, max_length=3)
    group: str | None = None
    consumer: bool = False
    compulsory: bool = True
    editions: list[str] = []
    words: list[str] = []
    exclude: list[str] = []
    requires: list[str] = []
    not_form: list[str] = []
    with_: list[str] = Field(default_factory=list, alias="with")

    @field_validator("tis")
    @classmethod
    def _tis(cls, v: str) -> str:
        t = parse_tis(v)
        if t is None or t.year is None:
            raise ValueError(f"{v!r} is not a TIS number with its year, like '2879-2560'")
        return str(t)

    @field_validator("editions", "with_")
    @classmethod
    def _tis_list(cls, v: list[str]) -> list[str]:
        out = []
        for item in v:
            t = parse_tis(item)
            if t is None:
                raise ValueError(f"{item!r} is not a TIS number")
            out.append(str(t))
        return out

    @field_validator("words", "exclude", "requires", "not_form")
    @classmethod
    def _words(cls, v: list[str]) -> list[str]:
        out = []
        for w in v:
            f = fold(w)
            if not f:
                raise ValueError("empty word")
            out.append(f)
        return out


class CatalogueMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: str = ""
    source: str = ""


class Vocabulary(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    accessory: list[str] = []
    for_: list[str] = Field(default_factory=list, alias="for")
    vague_claims: list[str] = []


class CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    catalogue: CatalogueMeta = CatalogueMeta()
    vocabulary: Vocabulary = Vocabulary()
    standard: list[StandardEntry]

    @model_validator(mode="after")
    def _unique_and_linked(self) -> CatalogueFile:
        seen: set[str] = set()
        for s in self.standard:
            if s.tis in seen:
                raise ValueError(f"standard {s.tis} is listed twice")
            seen.add(s.tis)
        for s in self.standard:
            for w in s.with_:
                if w not in seen:
                    raise ValueError(f"standard {s.tis}: 'with' names {w}, which is not in the catalogue")
        return self


@dataclass(frozen=True)
class Standard:
    """A TIS standard: its current edition, older editions, names, and the words for its product."""

    tis: TisNo
    name_th: str
    name_en: str
    licences: tuple[int, int, int]
    group: str | None
    consumer: bool
    compulsory: bool
    editions: tuple[TisNo, ...]
    words: tuple[str, ...]
    exclude: tuple[str, ...]
    requires: tuple[str, ...]
    not_form: tuple[str, ...]
    with_: tuple[str, ...]

    @property
    def base(self) -> str:
        return self.tis.base

    @property
    def tis_no(self) -> str:
        return str(self.tis)

    @property
    def total_licences(self) -> int:
        return sum(self.licences)


@dataclass(eq=False)  # compared and hashed by identity: one loaded catalogue, many lookups
class Catalogue:
    standards: list[Standard]
    accessory_words: tuple[str, ...] = ()
    for_words: tuple[str, ...] = ()
    vague_claims: tuple[str, ...] = ()
    version: str = ""
    path: str = ""
    _by_base: dict[str, Standard] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_base = {s.base: s for s in self.standards}

    def by_base(self, base: str) -> Standard | None:
        return self._by_base.get(base)

    def find(self, tis: TisNo | str | None) -> Standard | None:
        """The standard a TIS number names, by base number (any edition), or None."""
        t = parse_tis(tis) if isinstance(tis, str) else tis
        if t is None:
            return None
        return self._by_base.get(t.base)

    def bases_for_number(self, number: str) -> list[Standard]:
        """Standards whose number is `number`, whatever their part (a claim 'มอก. 685' names no part)."""
        return [s for s in self.standards if s.tis.number == number]

    @cached_property
    def consumer_standards(self) -> list[Standard]:
        return [s for s in self.standards if s.consumer and s.words]


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    from settings import DEFAULT_CATALOGUE

    p = Path(path) if path else DEFAULT_CATALOGUE
    try:
        with p.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise CatalogueError(f"{p}: catalogue file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise CatalogueError(f"{p}: not valid TOML: {e}") from None
    try:
        data = CatalogueFile.model_validate(raw)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            loc = list(err["loc"])
            where = ".".join(str(x) for x in loc)
            if len(loc) >= 2 and loc[0] == "standard" and isinstance(loc[1], int) and loc[1] < len(raw.get("standard", [])):
                where = f"standard {raw['standard'][loc[1]].get('tis', '#' + str(loc[1]))!s} → {'.'.join(str(x) for x in loc[2:])}"
            msgs.append(f"{p}: {where}: {err['msg']}")
        raise CatalogueError("\n".join(msgs)) from None
    standards = []
    for s in data.standard:
        standards.append(Standard(
            tis=parse_tis(s.tis),  # type: ignore[arg-type]
            name_th=s.name_th, name_en=s.name_en, licences=tuple(s.licences),  # type: ignore[arg-type]
            group=s.group, consumer=s.consumer, compulsory=s.compulsory,
            editions=tuple(parse_tis(e) for e in s.editions),  # type: ignore[misc]
            words=tuple(s.words), exclude=tuple(s.exclude), requires=tuple(s.requires),
            not_form=tuple(s.not_form), with_=tuple(s.with_),
        ))
    return Catalogue(
        standards=standards,
        accessory_words=tuple(fold(w) for w in data.vocabulary.accessory),
        for_words=tuple(fold(w) for w in data.vocabulary.for_),
        vague_claims=tuple(fold(w) for w in data.vocabulary.vague_claims),
        version=data.catalogue.version,
        path=str(p),
    )
