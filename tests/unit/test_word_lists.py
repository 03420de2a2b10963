"""The shipped word lists (config/standards.toml, config/matching.toml) hold each word once.

Words are compared as the engine compares them (`fold`: NFKC/NFC, SARA AM put back together, lower
case), so "แบตสํารอง" (NIKHAHIT + SARA AA) and "แบตสำรอง" are the same word. A duplicate is dead weight
at best; a word both in `words` and in `exclude` of one standard, or in the `words` of two standards,
makes the catalogue contradict itself.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

from matching.normalise import brand_key, fold

CONFIG = Path(__file__).resolve().parents[2] / "config"
WORD_FIELDS = ("words", "exclude", "requires", "not_form")


def duplicates(words: list[str]) -> list[list[str]]:
    """Groups of words of one list that fold to the same form."""
    seen: dict[str, list[str]] = defaultdict(list)
    for w in words:
        seen[fold(w)].append(w)
    return [ws for ws in seen.values() if len(ws) > 1]


def catalogue_problems(data: dict) -> list[str]:
    """Every duplicate in the word lists of a parsed standards.toml, as readable lines."""
    out = []
    for key, words in (data.get("vocabulary") or {}).items():
        out += [f"[vocabulary] {key}: {ws}" for ws in duplicates(words)]
    owner: dict[str, str] = {}
    for s in data.get("standard", []):
        tis = s.get("tis", "?")
        for f in WORD_FIELDS:
            out += [f"{tis} {f}: {ws}" for ws in duplicates(s.get(f, []))]
        words = {fold(w) for w in s.get("words", [])}
        for f in ("exclude", "not_form"):
            both = sorted(words & {fold(w) for w in s.get(f, [])})
            out += [f"{tis}: {w!r} is in words and in {f}" for w in both]
        for w in sorted(words):
            if w in owner and owner[w] != tis:
                out.append(f"{tis}: {w!r} is also a word of {owner[w]}")
            owner.setdefault(w, tis)
    return out


@pytest.mark.parametrize("data, found", [
    ({"standard": [{"tis": "1-2500", "words": ["แบตสำรอง", "แบตสํารอง", "power bank"]}]},
     ["1-2500 words: ['แบตสำรอง', 'แบตสํารอง']"]),
    ({"standard": [{"tis": "1-2500", "words": ["Power Bank", "power bank"]}]},
     ["1-2500 words: ['Power Bank', 'power bank']"]),
    ({"standard": [{"tis": "1-2500", "words": ["ｐｏｗｅｒ"], "exclude": ["power"]}]},
     ["1-2500: 'power' is in words and in exclude"]),
    ({"standard": [{"tis": "1-2500", "words": ["หม้อทอด"]}, {"tis": "2-2500", "words": ["หม้อทอด"]}]},
     ["2-2500: 'หม้อทอด' is also a word of 1-2500"]),
    ({"vocabulary": {"accessory": ["เคส", "case", "เคส"]}}, ["[vocabulary] accessory: ['เคส', 'เคส']"]),
    # different words, and the same word in two different fields of two standards, are fine
    ({"standard": [{"tis": "1-2500", "words": ["แบตสำรอง", "แบตเตอรี่สำรอง"], "exclude": ["เคส"]},
                   {"tis": "2-2500", "words": ["หมวก"], "exclude": ["แบตสำรอง"]}]}, []),
])
def test_the_duplicate_check_itself(data, found):
    assert catalogue_problems(data) == found


def test_standards_toml_has_no_duplicate_words():
    data = tomllib.loads((CONFIG / "standards.toml").read_text("utf-8"))
    assert catalogue_problems(data) == []


def test_matching_toml_has_no_duplicate_words():
    data = tomllib.loads((CONFIG / "matching.toml").read_text("utf-8"))
    problems = []
    for section in ("words", "categories"):
        for key, words in data[section].items():
            problems += [f"[{section}] {key}: {ws}" for ws in duplicates(words)]
    group: dict[str, int] = {}
    for n, b in enumerate(data["brand"]):
        for name in b["names"]:
            k = brand_key(name)
            if group.setdefault(k, n) != n or b["names"].count(name) > 1:
                problems.append(f"[[brand]] {b['names']}: {name!r} is named twice")
    assert problems == []
