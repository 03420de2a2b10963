import pytest

from matching.normalise import (
    brand_key,
    clean,
    fix_thai,
    fold,
    iter_runs,
    iter_tokens,
    model_key,
    run_tokens,
    tokens,
)


@pytest.mark.parametrize("raw, want", [
    ("มอก.\u200b166-2549", "มอก.166-2549"),                 # zero-width space
    ("๑๖๖-๒๕๔๙", "166-2549"),                             # Thai digits
    ("ＴＩＳ　２４３２", "TIS 2432"),                        # full-width letters, digits and space
    ("Powerbаnk", "Powerbank"),                            # Cyrillic а
    ("  แบต   สำรอง \n", "แบต สำรอง"),
    ("TIS 2432–2555", "TIS 2432-2555"),                    # en dash
    (None, ""),
])
def test_clean(raw, want):
    assert clean(raw) == want


def test_sara_am_survives_nfkc():
    # NFKC splits ำ into ํ + า; clean() must put it back so words still match the dictionary
    import unicodedata

    word = "แบตสำรอง"
    assert unicodedata.normalize("NFKC", word) != word
    assert clean(unicodedata.normalize("NFKC", word)) == word
    assert fix_thai("น\u0e4d\u0e32") == "นำ"


@pytest.mark.parametrize("a, b, same", [
    ("PB-2001", "pb2001", True), ("PB 2001", "PB-2001", True), ("PB-2001", "PB-2002", False), ("pb.2001", "PB2001", True),
])
def test_model_key(a, b, same):
    assert (model_key(a) == model_key(b)) is same


def test_brand_key_and_fold():
    assert brand_key("Tos-hiba ®") == brand_key("TOSHIBA")
    assert fold("HATARI") == "hatari"


def test_tokens_thai():
    assert "ปลั๊กพ่วง" in tokens("ปลั๊กพ่วงมอก.2432")
    assert tokens("พาวเวอร์แบงค์ 10000mAh PB-2001") [-2:] == ("10000mah", "pb-2001")


@pytest.mark.parametrize("text", ["PB-2001", "  Eloop   Power  Bank ", "a\tb", "x\ny", "TIS 2432-2012", "~!@#$%^&*()_+{}|:<>?",
                                  "ABC\u200bDEF", "ＡＢＣ", "พาวเวอร์แบงค์ 10000mAh", "a  —  b", ""])
def test_clean_fast_path_for_printable_ascii_is_the_full_path(text):
    """clean() skips its Unicode steps for printable ASCII; the result must be what the full path gives."""
    import unicodedata

    from matching.normalise import _INVISIBLE, _LOOKALIKE, _SPACES, THAI_DIGITS, clean, fix_thai

    full = _SPACES.sub(" ", _INVISIBLE.sub("", fix_thai(unicodedata.normalize("NFKC", text)).translate(THAI_DIGITS)
                                          .translate(_LOOKALIKE))).strip()
    assert clean(text) == full


def _real_texts() -> list[str]:
    """Listing text as the search index reads it: the labelled real listings (titles, descriptions,
    sellers) and a generated sandbox world."""
    import json
    from pathlib import Path

    from sandbox.world import build_world

    out = []
    for name in ("real_dev.jsonl", "hard_cases.jsonl"):
        for line in (Path(__file__).parents[1] / "data" / name).read_text("utf-8").splitlines():
            d = json.loads(line)
            d = d.get("listing", d)
            out.append(" ".join(str(d.get(k) or "") for k in ("title", "brand", "seller", "description")))
    for w in build_world(seed=11, n_licences=60, n_listings=120).listings:
        out.append(" ".join(str(w.listing.get(k) or "") for k in ("title", "brand", "seller", "description")))
    return out


def test_thai_cut_is_pythainlps_own_cut():
    """tokens() cuts Thai with pythainlp's newmm over its default dictionary held as word sets
    (normalise._WordSet, faster to build than pythainlp's trie): the cut must be word for word the one
    pythainlp gives with its own dictionary trie, on real listing text."""
    from pythainlp.tokenize import word_dict_trie, word_tokenize

    from matching.normalise import _RUNS, _dictionary, fold, iter_tokens

    texts = _real_texts()
    assert len(texts) > 200
    trie, sets = word_dict_trie(), _dictionary()
    runs = 0
    for text in texts:
        want: list[str] = []
        for m in _RUNS.finditer(fold(text)):
            if m.group(1):
                runs += 1
                want += [t for t in word_tokenize(m.group(1), engine="newmm", keep_whitespace=False) if t.strip()]
                for i in range(0, len(m.group(1)), 3):
                    assert sets.prefixes(m.group(1), i) == trie.prefixes(m.group(1), i)
            else:
                want.append(m.group(2))
        assert iter_tokens(text) == want, text
        assert iter_tokens(text, cache=False) == want
        assert list(tokens(text)) == want
    assert runs > 1000
    assert len(sets) == len(trie)


def _clean_reference(text: str) -> str:
    """clean()'s full path as it was written before its shortcuts (each step on every text): the
    shortcuts must give exactly this."""
    import unicodedata

    from matching.normalise import (
        _DOUBLE_MARK,
        _DOUBLE_SARA_E,
        _INVISIBLE,
        _SARA_AM_SPACED,
        _SARA_AM_SPLIT,
        _SARA_AM_TONE,
        _SPACES,
        _TABLE,
        _TONE_BEFORE_VOWEL,
    )

    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    text = unicodedata.normalize("NFC", text)
    if "\u0e4d" in text:
        text = _SARA_AM_TONE.sub("\\1\u0e33", text)
        text = _SARA_AM_SPACED.sub("\u0e33", text)
        text = _SARA_AM_SPLIT.sub("\u0e33", text)
    text = _TONE_BEFORE_VOWEL.sub(r"\2\1", text)
    text = _DOUBLE_SARA_E.sub("\u0e41", text)
    text = _DOUBLE_MARK.sub(r"\1", text)
    return _SPACES.sub(" ", text.translate(_TABLE)).strip()


# what the shortcuts skip steps for, and what makes a step change something: Thai letters, vowels,
# tone marks (typed twice, before their vowel, around a split SARA AM), เเ, Thai digits, invisible
# characters, Cyrillic and Greek look-alikes, dashes, full-width forms, combining accents, odd spaces
_FUZZ = ("กขคนบพมรลสอ" "ะาำิีึืุูั็" "่้๊๋" "\u0e4d\u0e32\u0e33" "เเแ" "๐๑๒๕๙" "\u200b\u200d\ufeff\u00ad"
         "аеорсхΑΟ" "–—−／" "ＡＴ１２" "\u0301\u0308" " \t\n\u00a0\u2003\u3000\x1c\x85\u2028" "abcTIS-/.0123456789")


def test_clean_shortcuts_give_the_full_path():
    """clean() skips translate and fix_thai's substitutions where they would change nothing and
    collapses spaces with str.split: the same text as every step done in full, on real listing text
    and on random mixes of every character a step acts on."""
    import random

    from matching.normalise import _TABLE, _TABLE_CHARS, _clean

    assert all(_TABLE_CHARS.fullmatch(chr(c)) for c in _TABLE)  # translate is skipped only where it maps nothing
    rnd = random.Random(5)
    texts = _real_texts() + ["".join(rnd.choice(_FUZZ) for _ in range(rnd.randint(0, 40))) for _ in range(20_000)]
    changed = 0
    for text in texts:
        want = _clean_reference(text)
        assert _clean.__wrapped__(text) == want, repr(text)
        assert clean(text) == want, repr(text)
        changed += want != " ".join(text.split())
    assert changed > 10_000  # the fuzz did reach the steps


def test_str_split_splits_where_the_regex_s_does():
    """clean() collapses white space with str.split() instead of re's \\s+: the same characters."""
    import re
    import sys

    rx = re.compile(r"\s")
    assert {c for c in range(sys.maxunicode + 1) if rx.match(chr(c))} == \
        {c for c in range(sys.maxunicode + 1) if len(f"a{chr(c)}b".split()) == 2}


@pytest.mark.parametrize("text, runs", [
    ("", []),
    ("พาวเวอร์แบงค์ 10000mah", [("พาวเวอร์แบงค์", True), ("10000mah", False)]),
    ("pb-2001 มอก.2217-2548!", [("pb-2001", False), ("มอก", True), ("2217-2548", False)]),
    # Latin and digit runs stop at Thai letters (before words v2, '3ช่อง' was cut '3ช' + '่อง')
    ("ปลั๊กไฟ,3ช่อง", [("ปลั๊กไฟ", True), ("3", False), ("ช่อง", True)]),
    ("10000mAhพาวเวอร์แบงค์", [("10000mah", False), ("พาวเวอร์แบงค์", True)]),
    ("หม้อหุงข้าว1.8ลิตร", [("หม้อหุงข้าว", True), ("1.8", False), ("ลิตร", True)]),
    ("... ---", []),
])
def test_iter_runs(text, runs):
    folded = fold(text)
    assert list(iter_runs(folded)) == runs
    # the runs' tokens, in order, are the text's tokens
    assert [t for r, thai in iter_runs(folded) for t in run_tokens(r, thai)] == iter_tokens(text) == list(tokens(text))
