"""Which seller accounts are one operator? The rules that link shops across marketplaces. Pure: text and
hashes in, links out (review/service.py gathers the shops from the store).

An operator selling unlicensed goods often runs several shops: on Shopee and Lazada, or a second
account after the first was taken down. What gives them away, strongest first:

- **a contact** (strong): the same phone number, LINE id or e-mail address written in listings of
  both shops (title, description, attributes). A phone is read in any of the ways Thais write it
  (081-234-5678, 0812345678, +66 81 234 5678, Thai digits) and compared as 0XXXXXXXXX; a LINE id
  only where it is named as one ("LINE: @shop", "ไลน์ไอดี shop", "ID line: shop", line.me links),
  so that ออนไลน์ (online) or แฮร์ไลน์ (hairline) are not read as LINE.
- **the shop name** (medium): the same name once case, spacing, punctuation, Thai digits and the
  words every shop adds (ร้าน, ช็อป, shop, official store, mall, Thailand, _th ...) are taken away,
  and only when what is left has at least 4 letters ("ร้านสมชายไฟฟ้า" = "สมชายไฟฟ้า Official Store").
- **a re-used photo** (weak): a picture of both shops within a few bits of perceptual hash
  (images/). Weak because resellers share the manufacturer's photos: a shop linked only by photos is
  shown as possibly related and never used to reach further shops.

`operator_group` starts at one shop and follows strong and medium links, also through the shops it
found (A and B share a phone, B and C a name: all three), then attaches shops linked only by a photo.
Every shop in the answer carries its reasons, each naming the shop it links to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from matching.normalise import clean, fold

STRENGTH = {"phone": "strong", "line": "strong", "email": "strong", "name": "medium", "photo": "weak"}
RANK = {"strong": 0, "medium": 1, "weak": 2}
MIN_NAME_LETTERS = 4
PHOTO_DISTANCE = 4  # bits of 64: what images/ itself calls the same photo

# words shops add to a name: taken away before names are compared (folded; Thai only at either end)
_GENERIC_LATIN = {"official", "officialstore", "officialshop", "store", "stores", "shop", "shops", "shoppe", "mall",
                  "th", "thai", "thailand", "online", "the", "by", "co", "ltd", "company", "flagship", "outlet",
                  "express", "mart", "เดอะ"}
_GENERIC_THAI = ("ร้านค้า", "ร้าน", "ช็อป", "ช้อป", "ช๊อป", "ชอป", "ออนไลน์", "ออฟฟิเชียล", "สโตร์", "มอลล์", "บริษัท", "จำกัด",
                 "หจก", "ห้างหุ้นส่วนจำกัด", "ไทยแลนด์", "โอฟฟิเชียล", "แฟล็กชิพ")
_SPLIT = re.compile(r"[\s\-_./·•|,:;!?()\[\]{}<>\"'’“”#*+&@~]+")
_NOT_NAME = re.compile(r"[^\w\u0e00-\u0e7f]+")


def _strip_thai(word: str) -> str:
    changed = True
    while changed and word:
        changed = False
        for g in _GENERIC_THAI:
            if word.startswith(g) and len(word) > len(g):
                word, changed = word[len(g):], True
            elif word.endswith(g) and len(word) > len(g):
                word, changed = word[:-len(g)], True
            elif word == g:
                return ""
    return word


def name_words(name: str | None) -> list[str]:
    """The words of a shop name that say who it is: folded, split at spaces and punctuation, the
    generic shop words dropped."""
    out = []
    for w in _SPLIT.split(fold(name)):
        if not w or w in _GENERIC_LATIN:
            continue
        w = _strip_thai(w)
        w = _NOT_NAME.sub("", w)
        if w and w not in _GENERIC_LATIN:
            out.append(w)
    return out


def shop_name_key(name: str | None) -> str | None:
    """The name two shops of one operator share, or None when too little is left to tell (fewer than
    MIN_NAME_LETTERS letters: 'BKK Shop' says nothing)."""
    key = "".join(name_words(name))
    letters = sum(1 for c in key if c.isalpha())
    return key if letters >= MIN_NAME_LETTERS else None


# ---- contacts ----------------------------------------------------------------------------------
# a run of digits that may be a Thai phone number: 0 or +66/66 (an optional "(0)"), then 8 or 9 digits
# with single spaces, dots or hyphens between them; not inside a longer number or a Latin code
_PHONE = re.compile(r"(?<![\dA-Za-z+])(\+?\s?66\s?(?:\(0\))?[\s.\-]?|0)(\d(?:[ .\-]?\d){7,8})(?![\d])")
_LINE = re.compile(
    r"(?:(?<![A-Za-z])line(?:\s*(?:id|ไอดี))?|(?<![ก-๙])ไลน์(?:\s*(?:ไอดี|id))?|(?<![A-Za-z])id\s*line|ไอดีไลน์)"
    r"\s*(?:[:：=]\s*|(?=\s*@))(@?[a-z0-9][a-z0-9._\-]{1,38}[a-z0-9_])", re.I)
_LINE_ID_ONLY = re.compile(r"(?:(?<![A-Za-z])line\s*id|ไลน์\s*(?:ไอดี|id)|ไอดีไลน์|id\s*line)\s+(@?[a-z0-9][a-z0-9._\-]{1,38}[a-z0-9_])",
                           re.I)
# ไลน์ inside a Thai word (ทางไลน์, แอดไลน์: "by LINE", "add LINE") only before an @id: ออนไลน์ (online) and
# แฮร์ไลน์ (hairline) are followed by other words
_LINE_AT = re.compile(r"ไลน์\s*[:：]?\s*(@[a-z0-9][a-z0-9._\-]{1,38}[a-z0-9_])", re.I)
_LINE_URL = re.compile(r"line\.me/(?:R/)?(?:ti/p/|ti/g/)?(%40|@|~)?([a-z0-9][a-z0-9._\-]{1,38}[a-z0-9_])", re.I)
_EMAIL = re.compile(r"(?<![\w.+-])([a-z0-9][a-z0-9._%+-]{0,63}@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24})(?![\w-])", re.I)


def phones_in(text: str | None) -> set[str]:
    """Thai phone numbers in a text, each as 0XXXXXXXXX: mobiles 06/08/09 + 8 digits, fixed lines
    02-07 + 7 digits."""
    out = set()
    for m in _PHONE.finditer(clean(text)):
        digits = re.sub(r"\D", "", m.group(2))
        if (len(digits) == 9 and digits[0] in "689") or (len(digits) == 8 and digits[0] in "234567"):
            out.add("0" + digits)
    return out


def line_ids_in(text: str | None) -> set[str]:
    """LINE ids named as such in a text, lower-cased ('@shop' for an official account)."""
    t = clean(text)
    out = {m.group(1).lower().rstrip(".") for m in _LINE.finditer(t)}
    out |= {m.group(1).lower().rstrip(".") for m in _LINE_ID_ONLY.finditer(t)}
    out |= {m.group(1).lower().rstrip(".") for m in _LINE_AT.finditer(t)}
    for m in _LINE_URL.finditer(t):
        out.add(("@" if m.group(1) in ("@", "%40") else "") + m.group(2).lower())
    return {x for x in out if sum(c.isalnum() for c in x) >= 3}


def emails_in(text: str | None) -> set[str]:
    return {m.group(1).lower() for m in _EMAIL.finditer(clean(text))}


def contacts_in(text: str | None) -> set[str]:
    """Every contact in a text as 'phone:0812345678', 'line:@shop', 'email:a@b.co'."""
    if not text:
        return set()
    return ({f"phone:{p}" for p in phones_in(text)} | {f"line:{x}" for x in line_ids_in(text)}
            | {f"email:{e}" for e in emails_in(text)})


def listing_text(listing: dict[str, Any]) -> str:
    """The text of a listing that may carry a contact: title, description, attribute values."""
    attrs = listing.get("attributes") or {}
    vals = [str(v) for v in attrs.values()] if isinstance(attrs, dict) else []
    return "\n".join(str(x) for x in (listing.get("title"), listing.get("description"), *vals) if x)


def search_forms(contact: str) -> list[str]:
    """What to type into the listing search to find listings that may carry `contact` (each hit is
    then read with contacts_in: the search only narrows)."""
    kind, _, v = contact.partition(":")
    if kind == "phone":
        if len(v) == 10:
            return [v, f"{v[:3]} {v[3:6]} {v[6:]}", f"{v[1:3]} {v[3:6]} {v[6:]}"]
        return [v, f"{v[:2]} {v[2:5]} {v[5:]}", f"{v[:3]} {v[3:6]} {v[6:]}"]
    if kind == "line":
        return [v.lstrip("@")]
    return [v]


def phash_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


# ---- shops and links ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Shop:
    marketplace: str
    seller_id: str
    names: tuple[str, ...] = ()
    contacts: frozenset[str] = frozenset()
    photos: frozenset[str] = frozenset()  # perceptual hashes (hex) of the shop's pictures

    @property
    def key(self) -> str:
        return f"{self.marketplace}:{self.seller_id}"


@dataclass(frozen=True)
class Link:
    kind: str    # phone, line, email, name, photo
    value: str   # the shared contact or name; for photos, how many
    strength: str
    via: str = ""  # the shop (marketplace:seller_id) this one is linked to


def link_reasons(a: Shop, b: Shop, max_distance: int = PHOTO_DISTANCE) -> list[Link]:
    """Why shops a and b may be one operator (empty: no reason), strongest first."""
    out = []
    for c in sorted(a.contacts & b.contacts):
        kind, _, v = c.partition(":")
        out.append(Link(kind, v, STRENGTH[kind], b.key))
    ka = {k for n in a.names if (k := shop_name_key(n))}
    kb = {k for n in b.names if (k := shop_name_key(n))}
    for k in sorted(ka & kb):
        out.append(Link("name", k, "medium", b.key))
    if a.photos and b.photos:
        shared = sum(1 for p in a.photos if any(phash_distance(p, q) <= max_distance for q in b.photos))
        if shared:
            out.append(Link("photo", str(shared), "weak", b.key))
    return out


@dataclass
class Linked:
    shop: Shop
    links: list[Link] = field(default_factory=list)

    @property
    def strength(self) -> str:
        return min((lk.strength for lk in self.links), key=RANK.__getitem__, default="weak")


def operator_group(anchor: Shop, candidates: Iterable[Shop], max_distance: int = PHOTO_DISTANCE) -> list[Linked]:
    """The shops that `anchor`'s operator may also run, among `candidates` (the anchor itself and
    duplicates are ignored): first those reached from the anchor over strong and medium links (through
    each other too), then those linked to one of them by photos alone. Each with every reason that
    links it to the anchor or to a shop already in the group; strongest first, then by key."""
    pool: dict[str, Shop] = {}
    for c in candidates:
        if c.key != anchor.key:
            pool.setdefault(c.key, c)
    group: dict[str, Linked] = {}
    members = [anchor]
    frontier = [anchor]
    while frontier:
        nxt = []
        for m in frontier:
            for k, s in list(pool.items()):
                reasons = [r for r in link_reasons(s, m, max_distance) if r.strength != "weak"]
                if reasons:
                    group[k] = Linked(s, reasons)
                    del pool[k]
                    nxt.append(s)
        members += nxt
        frontier = nxt
    # every reason between members (a shop reached by name may share a phone with another member)
    for k, lk in group.items():
        have = {(r.kind, r.value, r.via) for r in lk.links}
        for m in members:
            if m.key == k:
                continue
            for r in link_reasons(lk.shop, m, max_distance):
                if (r.kind, r.value, r.via) not in have:
                    lk.links.append(r)
                    have.add((r.kind, r.value, r.via))
    for k, s in pool.items():  # photos only: attached, never followed
        reasons = [r for m in members for r in link_reasons(s, m, max_distance)]
        if reasons:
            group[k] = Linked(s, reasons)
    for lk in group.values():
        lk.links.sort(key=lambda r: (RANK[r.strength], r.kind, r.via != anchor.key, r.via, r.value))
    return sorted(group.values(), key=lambda x: (RANK[x.strength], x.shop.key))
