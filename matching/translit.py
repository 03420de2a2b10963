"""A sound key for brand names written in Thai or Latin script, so that ฮาตาริ meets Hatari. Pure.

General-purpose romanisation reads loanwords badly (โปร is not "pon"), and Thai spellings of foreign
brands follow the source spelling more than Thai phonology: ชาร์ป keeps the silent ร of "Sharp",
ฟิลิปส์ keeps the s of "Philips". So instead of romanising we reduce both scripts to the same coarse
key: a skeleton of consonant classes in spoken order, and a string of vowel classes.

  consonants  K: ก ข ค ฆ / k c q g     G: ง / ng      C: จ ฉ ช ฌ / ch sh j (soft g)
              S: ซ ศ ษ ส / s z (soft c, initial x)     T: ด ต ถ ท ธ ฎ ฏ ฐ ฑ ฒ / d t th
              N: น ณ / n      B: บ / b      P: ป ผ พ ภ / p      F: ฝ ฟ / f ph
              M: ม / m        R: ร / r      L: ล ฬ / l          W: ว / w v      H: ห ฮ / h
              Y: ญ ย / y before a vowel
  vowels      A: ะ ั า ำ แ / a     E: เ / e     I: ิ ี ไ ใ / i y     O: โ อ็ อ / o     U: ุ ู ึ ื / u

Rules that make the two sides meet: an r that no vowel follows is not written (Sharp, Anker, Star)
and neither is a Thai ร with a karan (ชาร์ป, แองเคอร์, สตาร์); a ห that only carries the tone of the
next consonant is silent (หมี); อ before a vowel is only its carrier; a letter doubled in writing
counts once (Otto, ช้อปปี้), but the same sound in two syllables twice (Susumo is not Sumo).
Thai leading vowels (เ แ โ ใ ไ) are written before the consonant they follow in speech, so they are
moved after it. The key is coarse on purpose: it is compared only among the brands licensed under
one standard, and only when no exact spelling or alias matched (matching/licence.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_TH_CONS = {
    **dict.fromkeys("กขฃคฅฆ", "K"), "ง": "G", **dict.fromkeys("จฉชฌ", "C"), **dict.fromkeys("ซศษส", "S"),
    **dict.fromkeys("ดตถทธฎฏฐฑฒ", "T"), **dict.fromkeys("นณ", "N"), "บ": "B", **dict.fromkeys("ปผพภ", "P"),
    **dict.fromkeys("ฝฟ", "F"), "ม": "M", "ร": "R", **dict.fromkeys("ลฬ", "L"), "ว": "W", **dict.fromkeys("หฮ", "H"),
    **dict.fromkeys("ญย", "Y"), "อ": "",
}
_TH_VOWEL = {**dict.fromkeys("ะัาำแ", "A"), "เ": "E", **dict.fromkeys("ิีไใ", "I"), "โ": "O",
             **dict.fromkeys("ุูึื", "U")}
_LEADING = set("เแโใไ")
_KARAN = "\u0e4c"
_TONES = set("\u0e48\u0e49\u0e4a\u0e4b")
_SONORANT_AFTER_HO = set("งญนมยรลว")
_LATIN_VOWELS = set("aeiou")


@dataclass(frozen=True, slots=True)
class SoundKey:
    consonants: str
    vowels: str

    def __bool__(self) -> bool:
        return bool(self.consonants)


def _dedupe(s: str) -> str:
    return re.sub(r"(.)\1+", r"\1", s)


def _thai(word: str, collapse: bool = True) -> SoundKey:
    cons: list[str] = []
    vows: list[str] = []
    pending: str | None = None  # a leading vowel waiting for its consonant
    took_leading = False  # the last consonant took a leading vowel (เ-อ, เ-ีย are one vowel)
    last_cons = -2  # where the last consonant sound was written
    chars = [c for c in word if "\u0e01" <= c <= "\u0e4e" and c not in _TONES]
    n = len(chars)
    for i, ch in enumerate(chars):
        nxt = chars[i + 1] if i + 1 < n else ""
        prev = chars[i - 1] if i > 0 else ""
        if ch in _LEADING:
            pending = _TH_VOWEL[ch]
            continue
        if ch == _KARAN:
            continue
        if ch in _TH_CONS:
            if nxt == _KARAN and ch == "ร":
                continue  # silent r: สตาร์, ชาร์ป
            if ch == "ห" and nxt in _SONORANT_AFTER_HO:
                continue  # ห นำ: only marks the tone of the next consonant
            if ch == "อ":
                if pending:  # อ carrying a leading vowel: เอ, โอ
                    vows.append(pending)
                    pending = None
                    took_leading = True
                    continue
                if prev and (prev == "อ" or prev in _TH_CONS) and not took_leading:
                    vows.append("O")  # ออ, or -อ- after a consonant: the vowel o
                took_leading = False
                continue
            if ch == "ว" and prev and prev == "ั":
                vows.append("U")  # -ัว is a vowel (ua)
                continue
            if ch == "ย" and prev and (prev in "ีื" or (prev in "าอ" and (not nxt or nxt in _TH_CONS))):
                if prev in "าอ":
                    vows.append("I")  # -าย, -อย: a glide
                continue  # เ-ีย, เ-ือ: part of the vowel
            if not (collapse and cons and last_cons == i - 1 and cons[-1] == _TH_CONS[ch]):
                cons.append(_TH_CONS[ch])  # ปป in ช้อปปี้ is one sound (or two: ไตร-ริ); ต-โ-ต in ออตโต้ two
            last_cons = i
            took_leading = bool(pending)
            if pending:
                vows.append(pending)
                pending = None
            continue
        if ch == "็":
            continue
        v = _TH_VOWEL.get(ch)
        if v:
            vows.append(v)
            took_leading = False
    if pending:
        vows.append(pending)
    return SoundKey("".join(cons), "".join(vows))


_LATIN_DIGRAPHS = [("sch", "C"), ("tch", "C"), ("ch", "C"), ("sh", "C"), ("th", "T"), ("ph", "F"), ("ck", "K"),
                   ("qu", "KW"), ("ng", "G"), ("gh", "K"), ("kh", "K"), ("wh", "W")]
_LATIN_CONS = {"b": "B", "c": "K", "d": "T", "f": "F", "g": "K", "h": "H", "j": "C", "k": "K", "l": "L", "m": "M",
               "n": "N", "p": "P", "q": "K", "r": "R", "s": "S", "t": "T", "v": "W", "w": "W", "x": "KS", "z": "S"}


def _latin_keys(word: str) -> list[SoundKey]:
    """The keys of a Latin name. A few letters are read two ways (x: ks or s; n before k/g: ng or n;
    a final e: silent or not; u: u or the Thai short a of "sun", ซัน; a doubled letter: one sound or
    two syllables, "Elloro", เอลโลโร), so a name has a key for each reading that applies to it."""
    w = re.sub(r"[^a-z]", "", word.lower())
    flags = [("x" in w[1:], 1), (bool(re.search("n[kg]", w)), 2), (w.endswith("e"), 4), ("u" in w, 8),
             (bool(re.search(r"(.)\1", w)), 16)]
    bits = [b for present, b in flags if present]
    out: list[SoundKey] = []
    for m in range(1 << len(bits)):
        variant = sum(b for i, b in enumerate(bits) if m >> i & 1)
        k = _latin(w, variant)
        if k not in out:
            out.append(k)
    return out


def _latin(w: str, variant: int = 0) -> SoundKey:
    x_as_s = bool(variant & 1)
    nk_as_n = bool(variant & 2)
    final_e = bool(variant & 4)
    u_as_a = bool(variant & 8)
    if not variant & 16:
        w = _dedupe(w)  # a doubled letter is one sound (Otto, Lotte); classes are not merged afterwards
    cons: list[str] = []
    vows: list[str] = []
    i, n = 0, len(w)
    while i < n:
        ch = w[i]
        nxt = w[i + 1] if i + 1 < n else ""
        if ch in _LATIN_VOWELS:
            if ch == "e" and i == n - 1 and cons and not final_e:
                i += 1
                continue  # a silent final e
            pair = w[i:i + 2]
            if pair in ("ai", "ay", "ei", "ey"):
                vows.append("I")
                i += 2
                continue
            if pair in ("oo", "ou"):
                vows.append("U")
                i += 2
                continue
            if pair in ("ee", "ea"):
                vows.append("I")
                i += 2
                continue
            vows.append("A" if ch == "u" and u_as_a else {"a": "A", "e": "E", "i": "I", "o": "O", "u": "U"}[ch])
            i += 1
            continue
        if ch == "y":
            if nxt in _LATIN_VOWELS:
                cons.append("Y")
            else:
                vows.append("I")
            i += 1
            continue
        for dg, k in _LATIN_DIGRAPHS:
            if w.startswith(dg, i):
                cons.append(k)
                i += len(dg)
                break
        else:
            if ch == "r" and nxt not in _LATIN_VOWELS and nxt != "y":
                i += 1
                continue  # r after a vowel, before a consonant or at the end: not written in Thai
            if ch == "n" and nxt in ("k", "g") and not nk_as_n:
                cons.append("G")
            elif ch == "c" and nxt in ("e", "i", "y"):
                cons.append("S")
            elif ch == "g" and nxt in ("e", "i"):
                cons.append("C")
            elif ch == "x" and (i == 0 or x_as_s):
                cons.append("S")
            else:
                cons.append(_LATIN_CONS.get(ch, ""))
            i += 1
    return SoundKey("".join(cons), "".join(vows))


@lru_cache(maxsize=65536)
def sound_keys(name: str) -> tuple[SoundKey, ...]:
    """The sound keys of a brand name in Thai or Latin script (mixed: the script of most letters)."""
    thai = sum(1 for c in name if "\u0e01" <= c <= "\u0e4e")
    latin = sum(1 for c in name if c.isascii() and c.isalpha())
    if not thai and not latin:
        return ()
    if thai >= latin:
        one, two = _thai(name), _thai(name, collapse=False)
        return (one,) if one == two else (one, two)
    return tuple(_latin_keys(name))


def sound_key(name: str) -> SoundKey:
    keys = sound_keys(name)
    return keys[0] if keys else SoundKey("", "")


def is_thai(name: str) -> bool:
    return any("\u0e01" <= c <= "\u0e4e" for c in name)


def sounds_alike(a: SoundKey, b: SoundKey) -> bool:
    """Two keys name the same brand: the same consonants (at least two) and the same vowels, four
    sounds at least. Looser rules (a vowel may differ) confuse thousands of brands in a registry of
    29,000 licences, so shorter or freer spellings (Sharp, Remax: รีแม็กซ์, Electrolux: อีเลคโทรลักซ์)
    need an alias (config/matching.toml)."""
    if not a or a.consonants != b.consonants or len(a.consonants) + len(a.vowels) < 4:
        return False
    return a.vowels == b.vowels


def names_sound_alike(a: str, b: str) -> bool:
    """Any key of one name sounds like any key of the other."""
    return any(sounds_alike(x, y) for x in sound_keys(a) for y in sound_keys(b))
