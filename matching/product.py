"""Which compulsory standard, if any, covers a listing: from its title, category and attributes. Pure.

The catalogue's product words are looked for in the title (then in the marketplace category and the
attributes when the title names no product). A hit is rejected when
- a word of the standard's `exclude` list appears (an accessory or another product: a power-bank
  *case*, a *pet* toy, *ear* plugs), unless that word is a gift ("แถมเคส") or denied ("ไม่ใช้ถ่าน");
- an accessory word stands before the product word, or "for" does ("ซองใส่ พาวเวอร์แบงค์",
  "สำหรับ หม้อหุงข้าว"); after it, an accessory is a part of the offer ("พัดลม แถมผ้าคลุม");
- the product word is itself a gift ("แท็บเล็ต … รับฟรี! Adapter") or denied ("ไม่ใช่ของเล่น");
- the standard does not cover the stated form (`not_form`: a charcoal grill);
- the marketplace category rules compulsory products out (food, pets, books).
A standard that covers only one form (`requires`: electric grills) needs the form stated in the
title, description or attributes (a marketplace category such as "household electrical appliances"
is too coarse to say it); otherwise the evidence does not decide ("unclear").
Standards that apply together (`with`) come along with the first.

Words are compared with spaces removed (พาวเวอร์ แบงค์ = พาวเวอร์แบงค์, power bank = powerbank), Latin
words only as whole words ('cap' is not in 'capacitor'), and Latin letters that stand for Thai ones
inside a Thai word are read as Thai ("Vองเล่น" is ของเล่น).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from weakref import WeakKeyDictionary

from matching.normalise import fold
from matching.vocab import Vocabulary, load_vocabulary
from registry.catalogue import Catalogue, Standard


def _is_latin(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _is_thai(ch: str) -> bool:
    return "\u0e00" <= ch <= "\u0e7f"


# Latin letters (and digits) that sellers put for a Thai letter of the same shape, to slip past
# keyword filters or by careless typing: "Vองเล่น" (ของเล่น), "uล็อคตัวต่อ" (บล็อค).
_NOT_GIFT = ("ส่งฟรี", "freeshipping", "ฟรีค่าส่ง", "ฟรีค่าจัดส่ง")
_THAI_SHAPES = {"v": "ข", "u": "บ", "w": "พ"}


class Text:
    """A text prepared for word search: folded, with spaces removed, and a map back to positions."""

    __slots__ = ("folded", "pos", "squeezed")

    def __init__(self, raw: str | None):
        f = fold(raw) if raw else ""
        self.folded = f
        if not f:
            self.squeezed, self.pos = "", []
            return
        pos = [i for i, ch in enumerate(f) if ch != " "]
        squeezed = f.replace(" ", "")
        if any(c in squeezed for c in _THAI_SHAPES):
            chars = list(squeezed)
            n = len(f)
            for k, i in enumerate(pos):
                ch = chars[k]
                if ch in _THAI_SHAPES and (i + 1 < n and _is_thai(f[i + 1])) and (i == 0 or not _is_latin(f[i - 1])) \
                        and (i + 2 >= n or not _is_latin(f[i + 2])):
                    chars[k] = _THAI_SHAPES[ch]  # a lone Latin letter glued to the Thai that follows it
            squeezed = "".join(chars)
        self.squeezed = squeezed
        self.pos = pos

    def bounded(self, start: int, end: int, word: str) -> bool:
        """A hit [start, end) of the squeezed text is a whole word where the word is Latin."""
        f, pos = self.folded, self.pos
        if _is_latin(word[0]):
            o = pos[start]
            if o > 0 and _is_latin(f[o - 1]):
                return False
        if _is_latin(word[-1]):
            o = pos[end - 1]
            if o + 1 < len(f) and _is_latin(f[o + 1]):
                return False
        return True

    def find_all(self, word: str) -> Iterable[int]:
        s = self.squeezed
        i = s.find(word)
        while i >= 0:
            if self.bounded(i, i + len(word), word):
                yield i
            i = s.find(word, i + 1)

    def contains(self, word: str) -> bool:
        return next(iter(self.find_all(word)), None) is not None

    def find_words(self, word: str) -> Iterable[int]:
        """Where a word of a word list stands, as squeezed positions. A word written without spaces
        must appear without spaces ("แก๊สเติม" is not in "แก๊ส เติมได้"); one written with spaces may
        appear with or without them ("ear plug", "earplug")."""
        if " " in word:
            yield from self.find_all(_squeeze(word))
            return
        f = self.folded
        i = f.find(word)
        while i >= 0:
            j = i + len(word)
            if not ((_is_latin(word[0]) and i > 0 and _is_latin(f[i - 1]))
                    or (_is_latin(word[-1]) and j < len(f) and _is_latin(f[j]))):
                yield bisect_left(self.pos, i)
            i = f.find(word, i + 1)

    def before(self, i: int, chars: int) -> str:
        """Up to `chars` squeezed characters before position i."""
        return self.squeezed[max(0, i - chars):i]


@lru_cache(maxsize=2048)
def _shared_text(raw: str | None) -> Text:
    """Text(raw), cached: a marketplace's categories and attribute lines repeat across its listings
    (titles and descriptions hardly do: they are prepared each time). Nothing changes a Text once
    made, so one can serve every listing."""
    return Text(raw)


class WordIndex:
    """Words grouped by their first two letters, longest first: which word starts at a position, and
    whether any word is inside a text, without trying every word at every place."""

    def __init__(self, words: Iterable[str]):
        by: dict[str, list[str]] = {}
        for w in words:
            if len(w) >= 2:
                by.setdefault(w[:2], []).append(w)
        for lst in by.values():
            lst.sort(key=len, reverse=True)
        self.by = by

    def at(self, s: str, i: int) -> str | None:
        """The longest word that starts at s[i]."""
        for w in self.by.get(s[i:i + 2], ()):
            if s.startswith(w, i):
                return w
        return None

    def inside(self, s: str, min_len: int = 1) -> bool:
        """Some word of at least min_len letters is inside s."""
        for i in range(len(s) - 1):
            for w in self.by.get(s[i:i + 2], ()):
                if len(w) >= min_len and s.startswith(w, i):
                    return True
        return False


def _squeeze(w: str) -> str:
    return w.replace(" ", "")


@dataclass
class ProductMatch:
    status: str  # "controlled", "not_controlled" or "unclear"
    standards: list[Standard] = field(default_factory=list)
    word: str | None = None
    reasons: list[str] = field(default_factory=list)
    source: str = ""  # "title", "category", "attributes"

    @property
    def primary(self) -> Standard | None:
        return self.standards[0] if self.standards else None


@dataclass(frozen=True, slots=True)
class Hit:
    start: int
    end: int
    word: str  # as written in the catalogue
    standard: Standard


@dataclass(frozen=True)
class _Std:
    exclude: tuple[str, ...]  # folded, as written in the catalogue
    requires: tuple[str, ...]
    not_form: tuple[str, ...]


class ProductIndex:
    """The catalogue's product words prepared for fast scanning of many titles: words grouped by their
    first two characters, so a title is scanned once whatever the size of the catalogue."""

    def __init__(self, catalogue: Catalogue, vocab: Vocabulary):
        self.catalogue = catalogue
        self.vocab = vocab
        by_prefix: dict[str, list[tuple[str, str, Standard]]] = {}
        seen: set[tuple[str, str]] = set()
        for s in catalogue.standards:
            for w in s.words:
                sq = _squeeze(w)
                if len(sq) < 2 or (sq, s.base) in seen:
                    continue
                seen.add((sq, s.base))
                by_prefix.setdefault(sq[:2], []).append((sq, w, s))
        for lst in by_prefix.values():
            lst.sort(key=lambda x: -len(x[0]))
        self.by_prefix = by_prefix
        self.std: dict[str, _Std] = {
            s.base: _Std(tuple(s.exclude), tuple(s.requires), tuple(s.not_form))
            for s in catalogue.standards}
        self.accessory = tuple((_squeeze(w), w) for w in catalogue.accessory_words)
        self.for_words = tuple((_squeeze(w), w) for w in catalogue.for_words)
        self.gift = tuple(_squeeze(w) for w in vocab.gift)
        self.negation = tuple(_squeeze(w) for w in vocab.negation)
        self.not_controlled_categories = tuple(vocab.not_controlled_categories)
        self.other_products = tuple(vocab.other_products)
        # Thai words a brand may be glued to in a title: the product words and common title words
        thai = {_squeeze(w) for s in catalogue.standards for w in s.words if not w.isascii()}
        thai |= {_squeeze(w) for w in vocab.title if not w.isascii()}
        self.title_words = tuple(sorted(thai, key=len, reverse=True))
        self.title_index = WordIndex(self.title_words)

    def scan(self, text: Text) -> list[Hit]:
        """Product words in the text, leftmost-longest, not overlapping."""
        s = text.squeezed
        hits: list[Hit] = []
        i, n = 0, len(s)
        while i < n - 1:
            found = None
            for sq, w, std in self.by_prefix.get(s[i:i + 2], ()):
                if s.startswith(sq, i) and text.bounded(i, i + len(sq), sq):
                    found = Hit(i, i + len(sq), w, std)
                    break
            if found:
                hits.append(found)
                i = found.end
            else:
                i += 1
        return hits

    # -- context of a hit ------------------------------------------------------------------------
    def _preceded_by(self, text: Text, start: int, words: tuple[str, ...], gap: int = 2) -> bool:
        """One of `words` ends at most `gap` punctuation characters before `start` (a closing
        bracket ends a phrase: in "[ส่งฟรี] พาวเวอร์แบงค์" the power bank is no gift)."""
        window = text.before(start, 24)
        tail = window.rstrip("!！:：-*#~.,|([【「<\"'")
        if len(window) - len(tail) > gap:
            return False
        for w in words:
            if tail.endswith(w):
                k = len(tail) - len(w)
                # a Latin word must stand alone ("free", not "carefree"); ส่งฟรี is free shipping
                if _is_latin(w[0]) and k > 0 and _is_latin(tail[k - 1]):
                    continue
                if tail.endswith(_NOT_GIFT):
                    continue
                return True
        return False

    def is_gift(self, text: Text, start: int) -> bool:
        return self._preceded_by(text, start, self.gift)

    def is_denied(self, text: Text, start: int) -> bool:
        return self._preceded_by(text, start, self.negation, gap=1)

    def present(self, text: Text, words: Iterable[str]) -> str | None:
        """The first of the words that appears neither as a gift nor denied; as written."""
        for w in words:
            for i in text.find_words(w):
                if not self.is_gift(text, i) and not self.is_denied(text, i):
                    return w
        return None

    def accessory_before(self, text: Text, hit: Hit) -> str | None:
        """An accessory word close before the product word ("เคส พาวเวอร์แบงค์", "Cable … Charger"),
        or a "for" word close before it ("สำหรับ หม้อหุงข้าว"), makes the item an accessory. Far before
        it, or after it ("พัดลม แถมผ้าคลุม"), the accessory is one part of the offer."""
        if hit.start == 0:
            return None
        before = text.squeezed[:hit.start]
        window = before[-16:]
        off = len(before) - len(window)
        for sq, w in self.for_words:
            j = window.rfind(sq)
            if j >= 0 and text.bounded(off + j, off + j + len(sq), sq):
                return w
        for sq, w in self.accessory:
            j = window.rfind(sq)
            if j >= 0 and text.bounded(off + j, off + j + len(sq), sq) and not self.is_gift(text, off + j):
                return w
        return None

    def other_product_before(self, text: Text, hit: Hit) -> str | None:
        """A thing no standard covers, named before the product word: it is what is sold, the product
        word a part or a feature of it ("แท็บเล็ต … ลำโพง 6 ตัว")."""
        for w in self.other_products:
            for i in text.find_words(w):
                if i < hit.start:
                    return w
        return None


_INDEXES: WeakKeyDictionary[Catalogue, ProductIndex] = WeakKeyDictionary()


def product_index(catalogue: Catalogue, vocab: Vocabulary | None = None) -> ProductIndex:
    idx = _INDEXES.get(catalogue)
    if idx is None or (vocab is not None and idx.vocab is not vocab):
        idx = ProductIndex(catalogue, vocab or load_vocabulary())
        _INDEXES[catalogue] = idx
    return idx


def decide_product(title: str, category: list[str] | None, attributes: dict[str, str] | None,
                   catalogue: Catalogue, description: str | None = None,
                   vocab: Vocabulary | None = None) -> ProductMatch:
    idx = product_index(catalogue, vocab)
    t = Text(title)
    cat_text = _shared_text(" > ".join(category or []))
    attr_text = _shared_text(" ".join(f"{k} {v}" for k, v in (attributes or {}).items()))
    # the marketplace says this is food, a pet product, a book: no compulsory product
    for level in category or []:
        lv = _shared_text(level)
        veto = next((w for w in idx.not_controlled_categories if next(iter(lv.find_words(w)), None) is not None), None)
        if veto:
            return ProductMatch("not_controlled", reasons=[f"category_not_controlled:{level.strip()}"])

    sources = [("title", t), ("category", cat_text), ("attributes", attr_text)]
    rejected: list[str] = []
    for source, text in sources:
        hits = idx.scan(text) if text.squeezed else []
        if not hits:
            continue
        # the words that rule a hit out are looked for in the title and where the hit was found
        ctx = [t] if source == "title" else [t, text]
        accepted: list[Hit] = []
        unclear: list[Hit] = []
        for h in hits:
            why = _reject(idx, text, h, ctx, hits)
            if why:
                rejected.append(why)
                continue
            st = idx.std[h.standard.base]
            if st.requires:
                # the seller must state the form; a category like "เครื่องใช้ไฟฟ้า" is too coarse to
                form_ctx = [t, attr_text, Text(description)] if description else [t, attr_text]
                if not any(next(iter(x.find_words(w)), None) is not None for x in form_ctx for w in st.requires):
                    unclear.append(h)
                    continue
            accepted.append(h)
        if accepted:
            h = accepted[0]
            standards = [h.standard]
            for other in h.standard.with_:
                o = catalogue.find(other)
                if o and o not in standards:
                    standards.append(o)
            code = "product" if source == "title" else source
            reasons = [f"{code}:{h.standard.tis_no}:{h.word}"] + [f"also_standard:{o.tis_no}" for o in standards[1:]]
            return ProductMatch("controlled", standards, h.word, reasons, source)
        if unclear:
            h = unclear[0]
            code = "product" if source == "title" else source
            return ProductMatch("unclear", [h.standard], h.word,
                                [f"{code}:{h.standard.tis_no}:{h.word}", f"form_unclear:{h.standard.tis_no}"], source)
        if source == "title":
            break  # the title named products and every one was ruled out: the category does not overrule it
    return ProductMatch("not_controlled", reasons=rejected[:1] or ["no_controlled_product"])


def _reject(idx: ProductIndex, text: Text, h: Hit, ctx: list[Text], hits: list[Hit]) -> str | None:
    """Why a product-word hit does not make the listing that product, or None."""
    if idx.is_denied(text, h.start):
        return f"denied:{h.word}"
    if idx.is_gift(text, h.start):
        return f"gift:{h.word}"
    st = idx.std[h.standard.base]
    # a title that names the product again and again is about it: a word that would rule it out,
    # standing between two names of it, is one more search keyword ("power bank … power station …
    # power bank"); before the first name or after the last it still rules it out
    same = [x for x in hits if x.standard.base == h.standard.base]
    between = (same[0].end, same[-1].start, tuple(x.end for x in same)) if len(same) >= 2 and same[0] is h else None
    for x in ctx:
        excl = _present_first(idx, x, st.exclude, between if x is text else None)
        if excl:
            return f"accessory:{excl}"
    acc = idx.accessory_before(text, h)
    if acc:
        return f"accessory:{acc}"
    other = idx.other_product_before(text, h)
    if other:
        return f"other_product:{other}"
    for x in ctx:
        nf = idx.present(x, st.not_form)
        if nf:
            return f"not_form:{h.standard.tis_no}:{nf}"
    return None


def _present_first(idx: ProductIndex, text: Text, words: tuple[str, ...],
                   between: tuple[int, int, tuple[int, ...]] | None) -> str | None:
    """The first word of the list present (not as a gift, not denied). With `between` (the end of the
    first name of the product, the start of the last, the ends of all), an occurrence between two
    names is a search keyword and does not count, unless it is glued to a name it qualifies
    ("ของเล่นสัตว์เลี้ยง", "โคมไฟโซล่าเซลล์")."""
    for w in words:
        for i in text.find_words(w):
            if between is not None and between[0] <= i < between[1] and not any(0 <= i - e <= 1 for e in between[2]):
                continue
            if not idx.is_gift(text, i) and not idx.is_denied(text, i):
                return w
    return None
