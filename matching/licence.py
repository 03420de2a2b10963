"""Finding the licence behind a listing: candidates by standard, then brand, then model. Pure.

Blocking: only the licences under the listing's standard (any edition of its base number) are
candidates, so the cost does not grow with the registry, and a brand licensed for fans does not make
its power banks lawful.

Brand, in this order, from the listing's brand field and then from its title:
1. the same key (case, spaces and punctuation ignored: 'HATARI' = 'Hatari', 'Tos-hiba' = 'TOSHIBA');
2. an alias of config/matching.toml (Sharp = ชาร์ป, Xiaomi = เสี่ยวหมี่);
3. the same sound across scripts (ฮาตาริ = Hatari, matching/translit.py), when exactly one brand
   under the standard sounds so;
4. in the brand field only, a small misspelling of a longer Latin name (rapidfuzz: one edit or two
   letters swapped, 'Voltamxi' = 'Voltamix'); in a title a near miss is as likely another brand.

Model codes compare by key: PB-2001 = pb2001 = 'PB 2001', but PB-2001 ≠ PB-2002. A code in the title
counts as naming a model of the brand when it is one of the brand's licensed models or shares their
letter prefix (PB-2007 for a brand whose models are PB-2001…PB-2005).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from weakref import WeakKeyDictionary

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from matching.normalise import brand_key, clean, fold, model_key
from matching.product import WordIndex, product_index
from matching.translit import is_thai, sound_keys, sounds_alike
from matching.vocab import Vocabulary, load_vocabulary
from registry.index import Registry
from registry.licences import Licence

NO_BRAND = frozenset(brand_key(b) for b in (
    "No Brand", "NoBrand", "No-Brand", "Non Brand", "Unbranded", "ไม่มียี่ห้อ", "ไม่มีแบรนด์", "ไม่ระบุ", "ไม่ระบุยี่ห้อ",
    "OEM", "ODM", "Generic", "none", "-", "n/a", "na", "null", "อื่นๆ", "Other", "Others", "Unknown"))
_MODEL = re.compile(
    r"(?<![A-Za-z0-9])([A-Za-z]{1,8}-[A-Za-z]{1,4}\d{1,6}(?:[-/]?[A-Za-z0-9]{1,6}){0,3}"  # HT-S16M7
    r"|[A-Za-z]{1,8}[-\s]?\d{1,6}(?:[-/]?[A-Za-z0-9]{1,6}){0,3}"  # PB-2001, pb 2001, E61L
    r"|\d{2,6}[-]?[A-Za-z]{1,4}\d{0,4})(?![A-Za-z0-9])")  # 5000A, 735A
_UNIT = re.compile(r"^\d+(?:\.\d+)?(?:mah|wh|w|kw|v|a|m|cm|mm|l|ml|kg|g|gb|tb|mb|hz|khz|in|inch|pcs|ชิ้น|นิ้ว|ft|btu|lm|k|x|mp|rpm|db|c|cc|lb|oz|p|th|st|nd|rd|ปี|เดือน|วัน|ml)$")
# spec words that look like model codes: lamp caps, ports, protection classes, cables, memory
_SPEC = re.compile(r"^(?:e(?:10|11|12|14|17|26|27|39|40)|gu(?:10|53|24)|mr(?:11|16)|g(?:4|9|13)|t[4-9]|pd\d{0,3}|qc\d{0,2}|"
                   r"usb\d{0,2}|usbc\d*|typec\d*|ipx?\d{1,2}|wifi\d*|ddr\d|rj\d\d|cat\d{1,2}e?|ac(?:100|110|120|127|220|230|240)v?|dc(?:3|5|6|9|12|24|36|48)v?|"
                   r"pm\d{1,2}|no\d{1,3}|sd\d{2}|db\d{2}|rb\d{1,2}|m\d|r\d{1,2}|v\d|x\d|h\d|hdmi\d*|bt\d{0,2}|ce\d{0,2})$")
_LATIN_WORD = re.compile(r"[a-z0-9][a-z0-9&'’.+\-]*")
_EPOCH = date(1900, 1, 1)


def model_codes(text: str | None) -> list[str]:
    """Model-like codes in text (PB-2001, X9 Pro, 5000A), without units and common spec words."""
    return list(_model_codes(text or ""))


@lru_cache(maxsize=8192)
def _model_codes(text: str) -> tuple[str, ...]:
    out: list[str] = []
    keys: set[str] = set()
    for m in _MODEL.finditer(clean(text)):
        code = m.group(1).strip()
        k = model_key(code)
        if len(k) < 3 or _UNIT.match(k) or _SPEC.match(k) or k.isdigit() or k in keys:
            continue
        if " " in code:
            head, _, tail = code.partition(" ")
            if len(head) > 4 or _UNIT.match(model_key(tail)):
                continue  # "Anker 735" is a brand and a number, "PD 20W" a spec; "PB 2001" is a model
        keys.add(k)
        out.append(code)
    return tuple(out)


def licence_model_keys(lic: Licence) -> frozenset[str]:
    """The model keys of a licence: each model line whole, and each code in it ('HT-S16M7 (16 นิ้ว)')."""
    keys: set[str] = set()
    for line in lic.models:
        k = model_key(line)
        if k:
            keys.add(k)
        keys.update(model_key(c) for c in model_codes(line))
    return frozenset(keys)


@dataclass
class BrandFinding:
    name: str | None  # as the listing writes it
    key: str | None  # the registry's brand key it matched, or the listing's own key when unknown
    source: str = ""  # "brand", "title", "alias", "sound", "fuzzy"
    known: bool = False  # holds a licence under the standard
    score: float = 100.0
    similar: str | None = None  # a licensed brand one typo away, when the listing's is not licensed


@dataclass
class LicenceFinding:
    brand: BrandFinding
    models: list[str] = field(default_factory=list)  # model-like codes of the listing
    brand_licences: list[Licence] = field(default_factory=list)  # under the standard, any status
    match: Licence | None = None  # an active licence of the brand covering the named model (if any)
    model_named: str | None = None  # the code that names a model of the brand
    model_licence: Licence | None = None  # the licence (any status) that lists the named model
    candidates: list[tuple[str, float]] = field(default_factory=list)


class BrandIndex:
    """The brands licensed under one standard base, prepared for the lookups above. The parts that
    cost more (sounds, model keys) are built on first use: most standards never need them."""

    def __init__(self, brands: dict[str, list[Licence]], vocab: Vocabulary):
        self.keys = brands
        self.vocab = vocab
        # One brand, several spellings: a licence written "HATARI / ฮาตาริ" ties its Latin and Thai
        # keys together, so a listing that writes ฮาตาริ also finds the licences written "HATARI" only;
        # aliases of config/matching.toml tie spellings the same way. Two Latin names on one licence
        # (a licence for two brands) are not tied: each stays its own brand.
        parent: dict[str, str] = {k: k for k in brands}

        def root(k: str) -> str:
            while parent[k] != k:
                parent[k] = parent[parent[k]]
                k = parent[k]
            return k

        def tie(a: str, b: str) -> None:
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)

        for lics in brands.values():
            for lic in lics:
                ks = list(dict.fromkeys(brand_key(t) for t in lic.trademarks if brand_key(t)))
                latin = [k for k in ks if k.isascii()]
                thai = [k for k in ks if not k.isascii()]
                if len(latin) == 1 and len(thai) == 1:
                    tie(latin[0], thai[0])
        for k in brands:
            for alt in vocab.brand_group(k):
                if alt != k and alt in parent:
                    tie(k, alt)
        self.group: dict[str, list[Licence]] = {}
        for k, lics in brands.items():
            g = self.group.setdefault(root(k), [])
            g.extend(x for x in lics if x not in g)
        self._root = {k: root(k) for k in brands}

        self.latin = [k for k in brands if k.isascii()]
        # Thai spellings (the registry's, and aliases of its brands) by their first two letters
        self.thai_by_prefix: dict[str, list[tuple[str, str]]] = {}
        for k in brands:
            names = {k} | {a for a in vocab.brand_group(k) if not a.isascii()}
            for name in names:
                if not name.isascii() and len(name) >= 3:
                    self.thai_by_prefix.setdefault(name[:2], []).append((name, k))
        for lst in self.thai_by_prefix.values():
            lst.sort(key=lambda x: len(x[0]), reverse=True)
        # the first word of a trademark of several words, when it is distinctive and no other brand
        # under the standard starts so: sellers write "Schneider" for "Schneider Electric"
        firsts: dict[str, set[str]] = {}
        for k, lics in brands.items():
            for lic in lics:
                for t in lic.trademarks:
                    words = [brand_key(w) for w in re.split(r"[\s\-_]+", t) if brand_key(w)]
                    if len(words) >= 2 and brand_key(t) == k:
                        firsts.setdefault(words[0], set()).add(k)
        self.short = {w: next(iter(ks)) for w, ks in firsts.items()
                      if len(ks) == 1 and len(w) >= 5 and w.isascii() and w not in vocab.common and w not in brands}
        self._sound: dict[str, list[tuple[str, str]]] | None = None
        self._models: dict[str, tuple[dict[str, frozenset[str]], set[str]]] = {}

    def licences(self, key: str | None) -> list[Licence]:
        """Every licence of the brand whose key (any of its spellings) is given."""
        return self.group.get(self._root.get(key or "", ""), [])

    @property
    def sound(self) -> dict[str, list[tuple[str, str]]]:
        """Sound-key consonants -> (brand key, name as written)."""
        if self._sound is None:
            self._sound = {}
            for k, lics in self.keys.items():
                names = {t for lic in lics for t in lic.trademarks if brand_key(t) == k}
                for name in names:
                    for sk in sound_keys(name):
                        if sk:
                            self._sound.setdefault(sk.consonants, []).append((k, name))
        return self._sound

    def models(self, key: str) -> tuple[dict[str, frozenset[str]], set[str]]:
        """For one brand: model keys per licence number, and the letter prefixes of its models."""
        got = self._models.get(key)
        if got is None:
            per: dict[str, frozenset[str]] = {}
            prefixes: set[str] = set()
            for lic in self.licences(key):
                mk = per[lic.licence_no] = licence_model_keys(lic)
                prefixes.update(_letters(m) for m in mk)
            prefixes.discard("")
            got = self._models[key] = (per, prefixes)
        return got

    def lookup(self, key: str) -> tuple[str, str] | None:
        """(registry key, how) for a brand key: itself, one of its aliases, or the distinctive first
        word of a longer trademark."""
        if key in self.keys:
            return key, "brand"
        for alt in self.vocab.brand_group(key):
            if alt in self.keys:
                return alt, "alias"
        if key in self.short:
            return self.short[key], "brand"
        return None

    def by_sound(self, name: str) -> str | None:
        """The one brand under the standard whose name, in the other script, sounds like `name`."""
        thai = is_thai(name)
        found: set[str] = set()
        for sk in sound_keys(name):
            for k, written in self.sound.get(sk.consonants, ()):
                if is_thai(written) == thai:
                    continue  # same script: letters decide, not sound
                if any(sounds_alike(sk, other) for other in sound_keys(written)):
                    found.add(k)
        return found.pop() if len(found) == 1 else None

    def fuzzy(self, key: str) -> tuple[str, float] | None:
        """A small misspelling of a longer Latin brand name ('Voltamxi' for 'Voltamix'): one letter
        wrong, missing, extra or two swapped, the first letter right, and only one brand that close."""
        if len(key) < 6 or not key.isascii() or not self.latin:
            return None
        close = [k for k in self.latin if k[0] == key[0] and abs(len(k) - len(key)) <= 1
                 and OSA.distance(key, k, score_cutoff=1) <= 1]
        if len(close) != 1:
            return None
        return close[0], fuzz.ratio(key, close[0])


def _letters(model: str) -> str:
    m = re.match(r"[a-z]*", model)
    return m.group(0) if m else ""


_INDEXES: WeakKeyDictionary[Registry, tuple[int, dict[str, BrandIndex]]] = WeakKeyDictionary()


def brand_index(registry: Registry, base: str, vocab: Vocabulary | None = None) -> BrandIndex:
    entry = _INDEXES.get(registry)
    if entry is None or entry[0] != len(registry):
        entry = (len(registry), {})
        _INDEXES[registry] = entry
    idx = entry[1].get(base)
    if idx is None:
        idx = entry[1][base] = BrandIndex(registry.brands.get(base, {}), vocab or load_vocabulary())
    return idx


def _field_brand(given: str, idx: BrandIndex) -> BrandFinding | None:
    key = brand_key(given)
    hit = idx.lookup(key)
    if hit:
        return BrandFinding(given, hit[0], hit[1], True)
    # a brand field like "Anker Official Store" or "ร้าน Voltami": one or more whole words of it
    words = [brand_key(w) for w in re.split(r"[\s/,|()\[\]]+", fold(given)) if brand_key(w)]
    for n in (3, 2, 1):
        for i in range(len(words) - n + 1):
            hit = idx.lookup("".join(words[i:i + n]))
            if hit:
                return BrandFinding(given, hit[0], hit[1], True)
    k = idx.by_sound(given)
    if k:
        return BrandFinding(given, k, "sound", True)
    fz = idx.fuzzy(key)
    if fz:
        return BrandFinding(given, fz[0], "fuzzy", True, fz[1])
    return None


def _title_brands(title: str, idx: BrandIndex, words: tuple[str, ...], for_words: tuple[str, ...] = (),
                  windex: WordIndex | None = None) -> list[BrandFinding]:
    """Licensed brands (under the standard) named in the title, in the order they appear. `words` are
    the Thai title words a Thai brand may be glued to (product words, "รุ่น", "ของแท้", ...). Brands
    named after "for" / "สำหรับ" are what the item fits ("… charger for iPhone Samsung Xiaomi"), not
    its maker."""
    windex = windex or WordIndex(words)
    ends = _endings(words)
    c = clean(title)
    aligned = len(c.casefold()) == len(c)  # positions in the folded title are those of the clean one
    t = c.casefold() if aligned else fold(title)
    cut = _for_position(t, for_words)
    out: list[tuple[int, BrandFinding]] = []
    seen: set[str] = set()

    def add(pos: int, name: str, key: str, how: str, score: float = 100.0) -> None:
        if key not in seen and pos < cut:
            seen.add(key)
            out.append((pos, BrandFinding(name, key, how, True, score)))

    # Latin words, alone and with their neighbours ("Smart Home", "Power Connex")
    latin = [(m.start(), m.group(0)) for m in _LATIN_WORD.finditer(t)]
    keys = [brand_key(w) for _, w in latin]
    for n in (3, 2, 1):
        for i in range(len(latin) - n + 1):
            k = "".join(keys[i:i + n])
            if len(k) < 2:
                continue
            hit = idx.lookup(k)
            if hit:
                pos = latin[i][0]
                if k in idx.vocab.common and aligned and not c[pos:pos + 1].isupper():
                    continue  # "ของแท้ real 100%" is no brand Real
                add(pos, " ".join(w for _, w in latin[i:i + n]), hit[0], "title" if hit[1] == "brand" else hit[1])
    # Thai: a run of Thai letters is the brand, or holds it between title words ("พัดลมฮาตาริรุ่นใหม่");
    # a licensed brand inside another run of letters is part of another name (โพโน in โพโนทอร์)
    for m in _THAI_RUN.finditer(t):
        run = m.group(0)
        if len(run) < 2:
            continue
        hit = idx.lookup(run)
        if hit:
            add(m.start(), run, hit[0], "title" if hit[1] == "brand" else hit[1])
            continue
        for i in range(len(run) - 1):
            if i and not ends.at(run, i):  # run[:i].endswith(words)
                continue
            for name, k in idx.thai_by_prefix.get(run[i:i + 2], ()):
                j = i + len(name)
                if run.startswith(name, i) and (j == len(run) or run.startswith(words, j)):
                    add(m.start() + i, name, k, "title" if name == k else "alias")
                    break
        # a Thai spelling of a brand the registry writes in Latin letters only, by its sound: the run
        # itself, or what follows a title word it starts with ("พัดลมฮาตาริ")
        parts = [(run, m.start())]
        head = windex.at(run, 0)
        if head and len(head) < len(run):
            parts.append((run[len(head):], m.start() + len(head)))
        for part, at in parts:
            if 3 <= len(part) <= 14 and not _common(part, windex):
                k = idx.by_sound(part)
                if k:
                    add(at, part, k, "sound")
                    break
    out.sort(key=lambda x: x[0])
    return [b for _, b in out]


class _Endings:
    """`s[:i].endswith(words)` for one tuple of words, comparing only the words that end in s[i-2:i]:
    the title words are some 450, and every position of every Thai run of a title asked it (str.endswith
    with a tuple tries each word: ~3 µs a position, a tenth of the check of a listing)."""

    def __init__(self, words: tuple[str, ...]):
        self.words = words
        self.short = tuple(w for w in words if len(w) < 2)
        by: dict[str, list[str]] = {}
        for w in words:
            if len(w) >= 2:
                by.setdefault(w[-2:], []).append(w)
        self.by = {k: tuple(v) for k, v in by.items()}

    def at(self, s: str, i: int) -> bool:
        """s[:i].endswith(words)."""
        if i >= 2:
            cand = self.by.get(s[i - 2:i])
            if cand and s[:i].endswith(cand):
                return True
        return bool(self.short) and s[:i].endswith(self.short)


_ENDINGS: dict[int, _Endings] = {}


def _endings(words: tuple[str, ...]) -> _Endings:
    """The _Endings of a tuple of words, made once (by identity: the product index's title words)."""
    e = _ENDINGS.get(id(words))
    if e is None or e.words is not words:
        if len(_ENDINGS) >= 16:
            _ENDINGS.clear()
        e = _ENDINGS[id(words)] = _Endings(words)
    return e


def _for_position(t: str, for_words: tuple[str, ...]) -> int:
    """Where the first "for" word of the folded title stands (its length when there is none)."""
    cut = len(t)
    for w in for_words:
        i = t.find(w)
        while 0 <= i < cut:
            j = i + len(w)
            if not ((w[0].isascii() and i > 0 and t[i - 1].isalnum()) or (w[-1].isascii() and j < len(t) and t[j].isalnum())):
                cut = i
                break
            i = t.find(w, i + 1)
    return cut


_THAI_RUN = re.compile(r"[\u0e01-\u0e4e]+")


def _common(run: str, windex: WordIndex) -> bool:
    """A run of Thai that is an ordinary word, not a name: a dictionary word ("ลดราคา", "ประกัน"), or
    one holding a title word ("ประกันศูนย์", "ส่งไว")."""
    from pythainlp.corpus import thai_words

    return run in thai_words() or windex.inside(run, 3)


def find_brand(listing_brand: str | None, title: str, base: str, registry: Registry,
               vocab: Vocabulary | None = None) -> BrandFinding:
    """The listing's brand among those licensed under the standard; or, when none is, the brand the
    listing gives (known=False); or nothing."""
    idx = brand_index(registry, base, vocab)
    given = (listing_brand or "").strip()
    given_key = brand_key(given)
    if given_key and given_key not in NO_BRAND:
        found = _field_brand(given, idx)
        if found:
            return found
    # (no title, no catalogue needed: registry/check.py asks about a brand field alone)
    if title:
        pidx = product_index(registry.catalogue, vocab)
        titled = _title_brands(title, idx, pidx.title_words, registry.catalogue.for_words, pidx.title_index)
    else:
        titled = []
    if titled:
        return titled[0]
    if given_key and given_key not in NO_BRAND:
        return BrandFinding(given, given_key, "brand", False, 0.0)
    return BrandFinding(None, None, "")


def find_licence(listing_brand: str | None, title: str, base: str, registry: Registry,
                 extra_model_text: str = "", vocab: Vocabulary | None = None) -> LicenceFinding:
    idx = brand_index(registry, base, vocab)
    brand = find_brand(listing_brand, title, base, registry, vocab)
    if brand.source == "fuzzy":
        # one letter from a licensed brand is as often another brand as a typo: it licenses nothing,
        # and the officer is told which brand it is close to
        brand = BrandFinding(brand.name, brand_key(brand.name), "brand", False, 0.0, similar=brand.key)
    codes = model_codes(title) + [c for c in model_codes(extra_model_text) if c not in model_codes(title)]
    finding = LicenceFinding(brand=brand, models=codes)
    if not brand.known or not brand.key:
        return finding
    lics = idx.licences(brand.key)
    finding.brand_licences = list(lics)
    if not lics:
        return finding
    per_licence, prefixes = idx.models(brand.key)
    licensed: dict[str, list[Licence]] = {}
    for lic in lics:
        for m in per_licence.get(lic.licence_no, ()):
            licensed.setdefault(m, []).append(lic)
    named = None
    for c in codes:
        k = model_key(c)
        if k in licensed:
            named = c
            break
        if named is None and _letters(k) in prefixes and _letters(k) != k:
            named = c
    finding.model_named = named
    named_key = model_key(named) if named else None
    best: Licence | None = None
    for lic in lics:
        model_ok = named_key is None or named_key in per_licence.get(lic.licence_no, ())
        finding.candidates.append((lic.licence_no, 100.0 if model_ok and lic.active else 50.0 if model_ok else 0.0))
        if model_ok and named_key is not None and finding.model_licence is None:
            finding.model_licence = lic
        if lic.active and model_ok and (best is None or _newer(lic, best)):
            best = lic
    if named_key is not None:
        on = licensed.get(named_key, [])
        finding.model_licence = max(on, key=lambda x: (x.active, x.issued or _EPOCH)) if on else None
    finding.candidates.sort(key=lambda c: -c[1])
    finding.match = best
    return finding


def _newer(a: Licence, b: Licence) -> bool:
    return (a.issued or _EPOCH) > (b.issued or _EPOCH)

