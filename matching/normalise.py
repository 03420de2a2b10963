"""Text normalisation for Thai and Latin listing text. Pure functions, no I/O.

Thai is normalised with NFC, never NFKC/NFKD alone: those split SARA AM (ำ, U+0E33) into
NIKHAHIT + SARA AA (ํ + า), after which a word no longer matches its dictionary form. We apply NFKC
for the Latin look-alikes (full-width digits and letters) and then put SARA AM back together.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
# zero-width and invisible characters sellers (and copy-paste) leave in titles
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufe00-\ufe0f]")
_SPACES = re.compile(r"\s+")
_PRINTABLE_ASCII = re.compile(r"[ -~]*\Z")
# Cyrillic and Greek letters that look like Latin ones (a seller's way around a keyword filter)
_LOOKALIKE = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "Х": "X", "Υ": "Y", "Ο": "O", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K",
    "Μ": "M", "Ν": "N", "Ρ": "P", "Τ": "T", "Χ": "X", "ο": "o", "ν": "v",
    "–": "-", "—": "-", "‐": "-", "‑": "-", "‒": "-", "−": "-", "／": "/", "⁄": "/",
})
_TABLE = {**THAI_DIGITS, **_LOOKALIKE}
_SARA_AM_SPLIT = re.compile("\u0e4d\u0e32")  # ํ + า  -> ำ
_SARA_AM_SPACED = re.compile("\u0e4d\\s+\u0e32")
# ํ + tone mark + า (typed in that order, or what NFKC leaves of a tone before ำ): the tone goes first
_SARA_AM_TONE = re.compile("\u0e4d([\u0e48-\u0e4b])\u0e32")
# a tone mark typed before the above vowel it sits on (่ั for ั่): NFC does not reorder these
_TONE_BEFORE_VOWEL = re.compile("([\u0e48-\u0e4b])([\u0e31\u0e34-\u0e37\u0e47])")
# SARA E typed twice for SARA AE (เเ for แ), the commonest Thai typing shortcut
_DOUBLE_SARA_E = re.compile("\u0e40\u0e40")
# the same Thai tone mark or vowel typed twice
_DOUBLE_MARK = re.compile("([\u0e31\u0e34-\u0e3a\u0e47-\u0e4e])\\1+")


def fix_thai(text: str) -> str:
    """NFC, and repair what NFKC/NFKD and careless typing do to Thai: a split SARA AM (ํ + า),
    a tone mark typed before its vowel, เเ for แ, a mark typed twice."""
    text = unicodedata.normalize("NFC", text)
    if "\u0e4d" in text:
        text = _SARA_AM_TONE.sub("\\1\u0e33", text)
        text = _SARA_AM_SPACED.sub("\u0e33", text)
        text = _SARA_AM_SPLIT.sub("\u0e33", text)
    # each substitution only where it would change something: a search is a third of a sub's cost, and
    # most text has none of these slips (each test reads the text as the step before left it)
    if _TONE_BEFORE_VOWEL.search(text):
        text = _TONE_BEFORE_VOWEL.sub(r"\2\1", text)
    if "\u0e40\u0e40" in text:
        text = _DOUBLE_SARA_E.sub("\u0e41", text)
    if _DOUBLE_MARK.search(text):
        text = _DOUBLE_MARK.sub(r"\1", text)
    return text


# the characters _TABLE maps: str.translate with a dict looks up every character of the text (and
# raises and catches a KeyError for each one it does not map), ~0.1 µs a character, most of clean()'s
# time; a regex search for the few it maps is ten times cheaper, and most text has none of them
_TABLE_CHARS = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_TABLE)) + "]")


@lru_cache(maxsize=8192)
def _clean(text: str) -> str:
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    text = fix_thai(text)
    if _TABLE_CHARS.search(text):
        text = text.translate(_TABLE)
    # the same as _SPACES.sub(" ", text).strip(): str.split() and the regex \s split on the same
    # characters (str.isspace; tests/unit/test_normalise.py checks every code point), a few times faster
    return " ".join(text.split())


def clean(text: str | None) -> str:
    """Normalise for reading: NFKC for Latin look-alikes (full-width letters and digits), invisible
    characters removed, Thai repaired (fix_thai), Thai digits to Arabic, Cyrillic and Greek look-alikes
    to Latin, dashes to '-', spaces collapsed. Case is kept."""
    if not text:
        return ""
    if _PRINTABLE_ASCII.match(text):  # fast path: none of the steps below changes printable ASCII
        return " ".join(text.split())
    return _clean(text)  # one listing's title is read by several steps: clean it once


def fold(text: str | None) -> str:
    """clean() and lower-case: the form every keyword comparison uses."""
    return _fold(text) if text else ""


@lru_cache(maxsize=8192)
def _fold(text: str) -> str:
    return clean(text).casefold()


_MODEL_STRIP = re.compile(r"[\s\-_./·•]+")


@lru_cache(maxsize=65536)
def model_key(model: str | None) -> str:
    """A model code compared without case, spaces, hyphens, dots: PB-2001 = pb2001 = PB 2001."""
    return _MODEL_STRIP.sub("", fold(model))


_BRAND_STRIP = re.compile(r"[\s\-_.,'’&+/()®™©]+")


@lru_cache(maxsize=65536)
def brand_key(brand: str | None) -> str:
    """A brand compared without case, spaces or punctuation: 'Tos-hiba' = 'TOSHIBA'."""
    return _BRAND_STRIP.sub("", fold(brand))


_RUNS = re.compile(r"([\u0e00-\u0e7f]+)|([^\W_\u0e00-\u0e7f]+(?:[-.][^\W_\u0e00-\u0e7f]+)*)")


class _WordSet:
    """pythainlp's Thai dictionary for newmm in the form newmm asks of it (`prefixes(text, start)`:
    the dictionary words that begin at `start`), held as two sets instead of pythainlp's node trie.
    The same words give the same cut (tests/unit/test_normalise.py compares both on real text); what
    changes is the start-up of a process that cuts Thai: building the 62,000-word trie took ~0.6 CPU s
    (many seconds on a busy machine) and pickling it to disk loads slower than that, these sets build
    several times faster."""

    def __init__(self, words) -> None:
        self.words = frozenset(w for w in (x.strip() for x in words) if w)
        self.starts = frozenset(w[:i] for w in self.words for i in range(1, len(w)))
        self.longest = max(map(len, self.words), default=0)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.words

    def prefixes(self, text: str, start: int = 0) -> list[str]:
        out = []
        words, starts = self.words, self.starts
        for end in range(start + 1, min(len(text), start + self.longest) + 1):
            s = text[start:end]
            if s in words:
                out.append(s)
            if s not in starts:
                break
        return out


@lru_cache(maxsize=1)
def _dictionary() -> _WordSet:
    from pythainlp.corpus.common import thai_words

    return _WordSet(thai_words())


@lru_cache(maxsize=131072)
def _thai_words(run: str) -> tuple[str, ...]:
    """newmm's cut of one run of Thai letters. Cached by run: listings repeat words and phrases
    (titles, shop boilerplate in descriptions), and a run is cut the same wherever it stands, since
    tokens() cuts each run on its own."""
    from pythainlp.tokenize import word_tokenize

    return tuple(t for t in word_tokenize(run, custom_dict=_dictionary(), engine="newmm", keep_whitespace=False)  # type: ignore[arg-type]
                 if t.strip())


def fold_uncached(text: str) -> str:
    """fold() without its cache (for long texts seen once)."""
    if _PRINTABLE_ASCII.match(text):
        return " ".join(text.split()).casefold()
    return _clean.__wrapped__(text).casefold()


def iter_runs(folded: str) -> Iterator[tuple[str, bool]]:
    """The runs tokens() cuts a folded text into, in order: (a run of Thai letters, True), cut into
    words by run_tokens(), or (one Latin word, number or code, False), a token as it is. For callers
    that cache their own work by run (listings/query.py index_words)."""
    for m in _RUNS.finditer(folded):
        yield (m.group(1), True) if m.group(1) else (m.group(2), False)


def run_tokens(run: str, thai: bool) -> tuple[str, ...]:
    """The tokens of one run of iter_runs()."""
    return _thai_words(run) if thai else (run,)


def iter_tokens(text: str, cache: bool = True, folded: bool = False) -> list[str]:
    """tokens(); with cache=False nothing keeps the whole text (a listing's title and description,
    read once for the search index, would only push useful entries out), while its Thai runs are
    still cut from the cache. folded=True: `text` is fold()'s output already (not folded again)."""
    out: list[str] = []
    for run, thai in iter_runs(text if folded else fold(text) if cache else fold_uncached(text)):
        out.extend(run_tokens(run, thai))
    return out


@lru_cache(maxsize=65536)
def tokens(text: str) -> tuple[str, ...]:
    """Word tokens of folded text: Thai runs cut into words by pythainlp (newmm, offline); Latin words,
    numbers and codes kept whole ('10000mah', 'pb-2001'); punctuation dropped."""
    return tuple(iter_tokens(text))


def tokenised(text: str) -> str:
    """Space-separated tokens, the form stored in full-text indexes so Thai can be searched by word."""
    return " ".join(tokens(text))
