"""Search text: how listing text is indexed and how a query is read, for every backend. Pure.

Thai has no spaces between words, and neither SQLite nor osmem-server has a Thai analyzer, so both
backends index text already cut into words by pythainlp (newmm, the same cut the matcher uses) plus
the folded text for substrings (SQLite: FTS5 trigram; Elasticsearch/OpenSearch: a 3-gram field).

A query is cut the same way into **terms**. A listing matches when every term is found, either as
a word (its sub-words consecutive in the word index: title, brand, seller, description) or, for
terms of three characters or more, as a substring of the folded title, brand or seller. So `ปลั๊กพ่วง` finds `ปลั๊กพ่วงมอก.2432` (a word), `ปลั๊ก พ่วง` finds it
too (two substrings), and `แบงค์` finds `พาวเวอร์แบงค์`.

Query text is data: terms keep only letters, digits and marks, are passed to the engines as bound
parameters or literal phrases (never as query syntax), and are capped in number and length.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from matching.normalise import clean, fold, fold_uncached, iter_runs, iter_tokens, run_tokens

# The version of index_words' cut. Raise it whenever a change to it (or to matching.normalise's runs
# and Thai words) changes the words of a stored text: a store then cuts its listings again
# (SqliteStore does it when it opens; a cluster store with `tiswatch store rebuild-words`), since a
# query cut the new way may not find words stored the old way. 2: Latin and digit runs no longer swallow
# the Thai letters after them ('3ช่อง' was cut '3ช' + '่อง', so 'ช่อง' was not found as a word).
WORDS_VERSION = "2"
MAX_QUERY_CHARS = 500
MAX_TERMS = 12
MIN_SUBSTRING = 3  # the trigram index finds substrings of three characters or more
SEARCH_FIELDS = ("title", "brand", "seller", "description")
# substrings are looked for in the short fields only: descriptions are long and mostly boilerplate,
# and their trigrams would be most of the index (their words are indexed all the same)
SUBSTRING_FIELDS = ("title", "brand", "seller")


@lru_cache(maxsize=4096)
def _is_word_char(ch: str) -> bool:
    c = unicodedata.category(ch)
    return c[0] in "LNM" or c == "Co"


_PLAIN = re.compile(r"(?:[^\W_]|[\u0e31\u0e34-\u0e3a\u0e47-\u0e4e])+")  # letters, digits, Thai marks


def sub_words(term: str) -> list[str]:
    """A token split where SQLite's unicode61 tokenizer (categories L* N* Co M*) would split it:
    'pb-2001' -> ['pb', '2001'], 'ปลั๊กพ่วง' -> ['ปลั๊กพ่วง'], '฿99' -> ['99']."""
    if _PLAIN.fullmatch(term):
        return [term]  # the common case, without looking at each character
    out, cur = [], []
    for ch in term:
        if _is_word_char(ch):
            cur.append(ch)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


def index_words(text: str | None) -> str:
    """The word index of a text: pythainlp words and Latin words, folded, split into sub-words and
    joined by spaces, so that splitting on white space (Elasticsearch) and unicode61 (SQLite) read
    the same words."""
    if not text:
        return ""
    folded = fold_uncached(text)
    if len(folded) <= 20_000:  # folded once (iter_tokens would fold the folded text again)
        # iter_tokens(folded, folded=True)'s tokens split by sub_words, a run at a time (cached by run)
        parts = []
        for run, thai in iter_runs(folded):
            p = _run_words(run, thai)
            if p:
                parts.append(p)
        return " ".join(parts)
    return " ".join(w for t in iter_tokens(folded[:20_000], cache=False) for w in sub_words(t))


@lru_cache(maxsize=65536)
def _run_words(run: str, thai: bool) -> str:
    """The index words of one run of iter_tokens (a run of Thai letters, cut into words, or one Latin
    word), cached by run: listing text repeats its runs (product words, shop boilerplate, sellers),
    and cutting and splitting them again was most of a listing's indexing."""
    return " ".join(w for t in run_tokens(run, thai) for w in sub_words(t))


GRAM_SPACE = "\u2423"  # ␣ stands for a space inside a trigram, so trigrams can be separated by spaces


def trigrams(folded: str) -> str:
    """Every 3-character substring of a folded text, in order, separated by spaces (spaces inside
    a trigram shown as ␣). Indexed with a whitespace analyzer, a phrase of a term's trigrams finds
    the term as a substring: the same as SQLite's trigram tokenizer, with no n-gram analyzer needed
    (osmem-server's n-gram phrase matching is not positional)."""
    t = folded.replace(" ", GRAM_SPACE)
    return " ".join(t[i:i + 3] for i in range(len(t) - 2))


def listing_text(record: dict[str, Any], fields: tuple[str, ...] = SEARCH_FIELDS) -> str:
    return " \n ".join(str(record[f]) for f in fields if record.get(f))


def search_words(record: dict[str, Any]) -> str:
    """The words of every search field of a listing, as its word index holds them."""
    return index_words(listing_text(record))


def search_fields(record: dict[str, Any]) -> tuple[str, str]:
    """(words of every search field, folded text of the substring fields) indexed for a listing."""
    return search_words(record), fold_uncached(listing_text(record, SUBSTRING_FIELDS))


def substring_text(record: dict[str, Any]) -> str:
    """What the substring index holds of a listing: its folded title, brand and seller."""
    return fold(listing_text(record, SUBSTRING_FIELDS))


def terms(query: str) -> list[str]:
    """The terms of a query: its white-space separated parts, folded, keeping letters, digits, marks
    and the joiners `- . /`; in order, without repeats; empty when nothing searchable is left."""
    out: list[str] = []
    text = "".join(ch if _is_word_char(ch) or ch in "-./" else " " for ch in fold((query or "")[:MAX_QUERY_CHARS]))
    for chunk in text.split():
        t = chunk.strip("-./")
        if t and term_words(t) and t not in out:
            out.append(t)
        if len(out) == MAX_TERMS:
            break
    return out


def term_words(term: str) -> list[str]:
    """The words a term must show, consecutive, to match as words."""
    return index_words(term).split()


def substring_ok(term: str) -> bool:
    return len(term) >= MIN_SUBSTRING


def fts_phrase(words: list[str]) -> str:
    """An FTS5 phrase: every word quoted, quotes doubled, so no query syntax can get through."""
    return " + ".join('"' + w.replace('"', '""') + '"' for w in words)


def _contains_words(hay: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(hay[i:i + n] == needle for i in range(len(hay) - n + 1))


def explain(hit: dict[str, Any], query_terms: list[str]) -> list[dict[str, Any]]:
    """Why a listing matched: for each term, the field and the way it was found (a whole word or a
    substring), with a short snippet of that field and where the term is in it (character offsets
    into the snippet). The snippet is listing text: escape it wherever it is shown."""
    out = []
    for t in query_terms:
        words = term_words(t)
        best: dict[str, Any] | None = None
        for f in SEARCH_FIELDS:
            v = hit.get(f)
            if not v:
                continue
            folded = fold(v)
            if not all(w in folded for w in words):  # cheap: no word match possible, and no substring
                continue
            if _contains_words(index_words(v).split(), words):
                best = {"term": t, "field": f, "how": "word"}
            elif substring_ok(t) and f in SUBSTRING_FIELDS and t in folded:
                best = best or {"term": t, "field": f, "how": "substring"}
                continue
            else:
                continue
            break
        if best is not None:
            best.update(_snippet(hit[best["field"]], t))
            out.append(best)
    return out


def _snippet(text: str, term: str, width: int = 60) -> dict[str, Any]:
    c = clean(text)
    f = c.casefold()
    i = f.find(term) if len(f) == len(c) else -1
    if i < 0:  # a word found across punctuation ('pb 2001' for 'pb-2001'): show where its first part is
        first = (term_words(term) or [term])[0]
        i = f.find(first) if len(f) == len(c) else -1
        if i < 0:
            return {"snippet": c[: 2 * width], "start": None, "end": None}
        n = len(first)
    else:
        n = len(term)
    a = max(0, i - width)
    b = min(len(c), i + n + width)
    pre = "…" if a > 0 else ""
    return {"snippet": pre + c[a:b] + ("…" if b < len(c) else ""), "start": len(pre) + i - a, "end": len(pre) + i - a + n}



def normalized(q: Any) -> Any:
    """A SearchQuery with blank filters dropped and text filters trimmed (both backends start here)."""
    from dataclasses import replace

    def t(v: str | None) -> str | None:
        v = (v or "").strip()
        return v[:MAX_QUERY_CHARS] if fold(v).strip() else None  # invisible characters alone are blank

    return replace(q, text=(q.text or "")[:MAX_QUERY_CHARS], marketplace=t(q.marketplace), verdict=t(q.verdict),
                   tis=t(q.tis), seller=t(q.seller), review_status=t(q.review_status), status=t(q.status))
