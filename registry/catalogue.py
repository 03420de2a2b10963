"""The compulsory-standards catalogue (config/standards.toml): data that officers extend without code.

Loaded once, validated with pydantic; a mistake names the file, the line of the standard, the standard
and the field, and nothing is loaded. `Catalogue.warnings()` lists what is legal but probably a slip
(a consumer standard without product words, a word that is also an exclusion), and
`compare_with_tisi_list()` checks the catalogue against TISI's list of compulsory standards
(`tiswatch registry catalogue check --against FILE`).

Editions: `tis` is the current edition; `editions` lists older ones that a listing or a licence may
still name. An older edition usually shares the base number (`369-2539` of `369-2557`) but may not
(`1985-2549`, the hair-dryer standard `60335 เล่ม 2(23)-2564` replaced): `find()` resolves both.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Iterable
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
            if str(t) in out:
                raise ValueError(f"{item!r} is listed twice")
            out.append(str(t))
        return out

    @field_validator("licences")
    @classmethod
    def _counts(cls, v: list[int]) -> list[int]:
        if any(n < 0 for n in v):
            raise ValueError("licence counts cannot be negative")
        return v

    @model_validator(mode="after")
    def _editions_older(self) -> StandardEntry:
        cur = parse_tis(self.tis)
        assert cur is not None
        for e in self.editions:
            t = parse_tis(e)
            assert t is not None
            if t.year is None:
                raise ValueError(f"edition {e!r} needs its year, like '{t.base}-2540'")
            if str(t) == self.tis:
                raise ValueError(f"edition {e} is the current edition itself (tis); list only older ones")
            if t.base == cur.base and t.year > (cur.year or 0):
                raise ValueError(f"edition {e} is newer than the current edition {self.tis}: make it `tis` instead")
        if self.tis in self.with_:
            raise ValueError(f"'with' names the standard itself ({self.tis})")
        return self

    @field_validator("words", "exclude", "requires", "not_form")
    @classmethod
    def _words(cls, v: list[str]) -> list[str]:
        out = []
        for i, w in enumerate(v, 1):
            f = fold(w)
            if not f:
                raise ValueError(f"word #{i} is empty")
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
        bases: dict[str, str] = {}  # base -> the standard that owns it (current edition or older one)
        for s in self.standard:
            b = parse_tis(s.tis).base  # type: ignore[union-attr]
            if b in bases:
                raise ValueError(f"standard {s.tis} is listed twice (base {b} is already {bases[b]})")
            bases[b] = s.tis
        for s in self.standard:
            own = parse_tis(s.tis).base  # type: ignore[union-attr]
            for e in s.editions:
                b = parse_tis(e).base  # type: ignore[union-attr]
                if b != own and bases.get(b, s.tis) != s.tis:
                    raise ValueError(f"standard {s.tis}: edition {e} has the base number of {bases[b]}; "
                                     "an edition must name one standard only")
                bases.setdefault(b, s.tis)
        for s in self.standard:
            for w in s.with_:
                if parse_tis(w).base not in bases:  # type: ignore[union-attr]
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

    _by_edition: dict[str, Standard] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_base = {s.base: s for s in self.standards}
        self._by_edition = {e.base: s for s in self.standards for e in s.editions if e.base not in self._by_base}

    def by_base(self, base: str) -> Standard | None:
        return self._by_base.get(base)

    def find(self, tis: TisNo | str | None) -> Standard | None:
        """The standard a TIS number names, by base number (any year), or through an older edition
        with another number; None when the catalogue has no such standard."""
        t = parse_tis(tis) if isinstance(tis, str) else tis
        if t is None:
            return None
        return self._by_base.get(t.base) or self._by_edition.get(t.base)

    def bases_for_number(self, number: str) -> list[Standard]:
        """Standards whose number is `number`, whatever their part (a claim 'มอก. 685' names no part),
        the current editions first, then those with an older edition of that number."""
        out = [s for s in self.standards if s.tis.number == number]
        out += [s for s in self.standards if s not in out and any(e.number == number for e in s.editions)]
        return out

    def edition(self, tis: TisNo | str) -> str:
        """How a TIS number names its standard: 'current', 'older' (a listed older edition, or an older
        year of the base), 'newer' (a year after the catalogue's: the catalogue may be out of date),
        'any' (no year given), or 'unknown' (no such standard)."""
        t = parse_tis(tis) if isinstance(tis, str) else tis
        s = self.find(t)
        if t is None or s is None:
            return "unknown"
        if t.year is None:
            return "any"
        if t.base == s.base and t.year == s.tis.year:
            return "current"
        if t.base == s.base and t.year > (s.tis.year or 0):
            return "newer"
        return "older"

    def warnings(self) -> list[str]:
        """What is legal but probably a slip, one sentence each, naming the standard."""
        out: list[str] = []
        owners: dict[str, list[str]] = {}
        companions = {w for s in self.standards for w in s.with_}  # reached through another's 'with'
        for s in self.standards:
            for w in dict.fromkeys(s.words):
                owners.setdefault(w, []).append(s.tis_no)
            twice = sorted({w for w in s.words if s.words.count(w) > 1})
            if twice:
                out.append(f"standard {s.tis_no}: product word(s) listed twice: {', '.join(twice)}")
            if s.consumer and not s.words and s.tis_no not in companions:
                out.append(f"standard {s.tis_no}: consumer = true but no product words and no standard names it "
                           "in 'with', so no listing can reach it")
            if (s.requires or s.not_form) and not s.words:
                out.append(f"standard {s.tis_no}: requires/not_form without product words have no effect")
            both = sorted(set(s.words) & set(s.exclude))
            if both:
                out.append(f"standard {s.tis_no}: {', '.join(both)}: both a product word and an exclusion")
            if not s.name_en:
                out.append(f"standard {s.tis_no}: no English name (name_en)")
        linked = {(a, b) for s in self.standards for a in (s.tis_no,) for b in s.with_}
        for w, tis in owners.items():
            unlinked = [(a, b) for a in tis for b in tis if a < b and (a, b) not in linked and (b, a) not in linked]
            if unlinked:
                out.append(f"word {w!r} belongs to {len(tis)} standards ({', '.join(tis)}), not linked by 'with'")
        return out

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
        lines = _standard_lines(p)
        msgs = []
        for err in e.errors():
            loc = list(err["loc"])
            where, at = ".".join(str(x) for x in loc), ""
            if len(loc) >= 2 and loc[0] == "standard" and isinstance(loc[1], int) and loc[1] < len(raw.get("standard", [])):
                entry = raw["standard"][loc[1]]
                tis = entry.get("tis", "#" + str(loc[1] + 1)) if isinstance(entry, dict) else "#" + str(loc[1] + 1)
                rest = ".".join(str(x) for x in loc[2:])
                where = f"standard {tis!s}" + (f" → {rest}" if rest else "")
                at = f":{lines[loc[1]]}" if loc[1] < len(lines) else ""
            msg = err["msg"].removeprefix("Value error, ")
            msgs.append(f"{p}{at}: {where}: {msg}")
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


def _standard_lines(path: Path) -> list[int]:
    """The line of each [[standard]] table in the file, in order (for error messages)."""
    try:
        text = path.read_text("utf-8")
    except OSError:
        return []
    return [i for i, line in enumerate(text.splitlines(), 1) if line.strip().startswith("[[standard]]")]


# ---- completeness against TISI's list of compulsory standards -------------------------------------
@dataclass
class ListedStandard:
    """A row of TISI's licence report by standard (the shared tisi_standards_compulsory CSV)."""

    tis: TisNo
    name_th: str
    name_en: str
    compulsory: bool
    licences: tuple[int, int, int]  # manufacture ท, import น, mark display ส


@dataclass
class Completeness:
    listed: int = 0
    missing: list[ListedStandard] = field(default_factory=list)  # compulsory in the list, absent here
    other_edition: list[tuple[ListedStandard, Standard]] = field(default_factory=list)  # same base, another year
    name_differs: list[tuple[ListedStandard, Standard]] = field(default_factory=list)
    counts_differ: list[tuple[ListedStandard, Standard]] = field(default_factory=list)
    not_listed: list[Standard] = field(default_factory=list)  # in the catalogue, not in the list

    @property
    def complete(self) -> bool:
        return not self.missing


_LIST_COLUMNS = {"tis": ("เลขที่ มอก.", "tis_no", "tis"), "name_th": ("ชื่อ มอก. ภาษาไทย", "name_th"),
                 "name_en": ("ชื่อ มอก. ภาษาอังกฤษ", "name_en"), "kind": ("ประเภทมาตรฐาน", "type", "kind"),
                 "m": ("จำนวนใบอนุญาตทำ",), "i": ("จำนวนใบอนุญาตนำเข้า",), "d": ("จำนวนใบอนุญาตแสดง",)}


def read_tisi_list(path: str | Path) -> list[ListedStandard]:
    """TISI's list of standards with licence counts (CSV, Thai headers as TISI writes them; UTF-8 or
    cp874). Raises CatalogueError naming the file and line of what it cannot read."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise CatalogueError(f"{p}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp874", errors="replace")
    rows = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(rows, [])]
    col: dict[str, int] = {}
    for key, names in _LIST_COLUMNS.items():
        for n in names:
            if n in header:
                col[key] = header.index(n)
                break
    if "tis" not in col or "name_th" not in col:
        raise CatalogueError(f"{p}: not a TISI list of standards (no column 'เลขที่ มอก.' and 'ชื่อ มอก. ภาษาไทย')")
    out = []
    for line, row in enumerate(rows, 2):
        if not any(c.strip() for c in row):
            continue
        cell = dict.fromkeys(_LIST_COLUMNS, "") | {k: row[i].strip() for k, i in col.items() if i < len(row)}
        t = parse_tis(cell["tis"])
        if t is None or t.year is None:
            raise CatalogueError(f"{p}:{line}: {cell['tis']!r} is not a TIS number")

        def n(k: str, cell: dict[str, str] = cell) -> int:
            v = re.sub(r"[,\s]", "", cell.get(k, "")) or "0"
            return int(v) if v.isdigit() else 0

        out.append(ListedStandard(t, cell["name_th"], cell["name_en"], cell["kind"] in ("บังคับ", "compulsory", ""),
                                  (n("m"), n("i"), n("d"))))
    return out


def _same_name(a: str, b: str) -> bool:
    return re.sub(r"\s+", " ", a).strip() == re.sub(r"\s+", " ", b).strip()


def compare_with_tisi_list(catalogue: Catalogue, listed: Iterable[ListedStandard]) -> Completeness:
    """Which compulsory standards of TISI's list the catalogue lacks, has in another edition, names
    differently or counts differently, and which catalogue standards the list does not name."""
    rep = Completeness()
    seen: set[str] = set()
    for row in listed:
        if not row.compulsory:
            continue
        rep.listed += 1
        s = catalogue.find(row.tis)
        if s is None:
            rep.missing.append(row)
            continue
        seen.add(s.base)
        if s.tis != row.tis:
            rep.other_edition.append((row, s))
        if not _same_name(s.name_th, row.name_th) or (row.name_en and not _same_name(s.name_en, row.name_en)):
            rep.name_differs.append((row, s))
        if s.licences != row.licences:
            rep.counts_differ.append((row, s))
    rep.not_listed = [s for s in catalogue.standards if s.base not in seen and s.compulsory]
    return rep
