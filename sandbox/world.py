"""One seeded synthetic world: licences, sellers and listings with known truth.

The same generator feeds the sandbox marketplaces, the labeled development set, `tiswatch registry
generate` and the benchmarks, so that what the demo shows, what the tests assert and what the
benchmarks measure all rest on one definition of the truth.

Truth is by construction: a listing is made from a scenario ("a licensed brand and model", "a real
licence number pasted on another brand", ...) and its expected verdict follows DOMAIN.md §3 from that
scenario, never from running the matcher. Product words come from the standards catalogue, and only
words that belong to one standard and carry none of its exclusion words are used, so the truth does
not depend on how the matcher breaks ties.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from matching.normalise import fold
from registry.catalogue import Catalogue, Standard, load_catalogue
from registry.licences import Licence

MARKETPLACES = ("shopee", "lazada", "shop")
THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")
_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

# syllables for invented brand names, with a Thai spelling each (as Thai sellers transliterate)
_SYL = [("vol", "โวล"), ("ta", "ต้า"), ("mi", "มิ"), ("ko", "โค"), ("ra", "ร่า"), ("tek", "เทค"), ("lux", "ลักซ์"),
        ("po", "โพ"), ("wer", "เวอร์"), ("sun", "ซัน"), ("max", "แม็กซ์"), ("ni", "นิ"), ("zen", "เซน"), ("ka", "คา"),
        ("ro", "โร"), ("fi", "ฟี"), ("no", "โน"), ("la", "ล่า"), ("gen", "เจน"), ("star", "สตาร์"), ("pro", "โปร"),
        ("den", "เด็น"), ("ki", "คิ"), ("sa", "ซ่า"), ("mo", "โม"), ("tor", "ทอร์"), ("vi", "วิ"), ("xen", "เซ็น"),
        ("bel", "เบล"), ("cor", "คอร์"), ("dra", "ดร้า"), ("el", "เอล"), ("fa", "ฟา"), ("hy", "ไฮ"), ("jet", "เจ็ท"),
        ("lo", "โล"), ("na", "นา"), ("qui", "ควิ"), ("ri", "ริ"), ("su", "ซู"), ("tri", "ไตร"), ("ul", "อุล"), ("wa", "วา")]
_COMPANY = ["บริษัท {} จำกัด", "บริษัท {} อินดัสทรี จำกัด", "บริษัท {} (ประเทศไทย) จำกัด", "ห้างหุ้นส่วนจำกัด {}",
            "บริษัท {} เทรดดิ้ง จำกัด", "บริษัท {} อิเล็คทริค จำกัด (มหาชน)"]
_FACTORY = ["นิคมอุตสาหกรรมอมตะนคร ชลบุรี", "นิคมอุตสาหกรรมบางปู สมุทรปราการ", "เขตประกอบการเสรีลาดกระบัง",
            "Shenzhen, Guangdong", "Ningbo, Zhejiang", "Dongguan, Guangdong", "Ho Chi Minh City", "Penang"]
_ORIGIN = ["ไทย", "จีน", "China", "เวียดนาม", "มาเลเซีย", "Japan", "ไต้หวัน"]
_PROVINCES_TH = ["จังหวัดกรุงเทพมหานคร", "จังหวัดสมุทรปราการ", "จังหวัดนนทบุรี", "จังหวัดชลบุรี", "จังหวัดเชียงใหม่", "ต่างประเทศ"]
_PROVINCES_EN = ["Bangkok", "Samut Prakan", "Nonthaburi", "Chon Buri", "Chiang Mai", "Overseas"]
_SHOP = ["{}ช็อป", "ร้าน{}", "{} Official Store", "{}.shop", "{} Mall", "บ้าน{}", "{}_th", "{} Thailand"]
_SHOPWORD = ["สมาย", "เฮงเฮง", "ดีดี", "มั่งมี", "happy", "good", "siam", "bkk", "ตลาดไฟ", "ไอทีเซ็นเตอร์", "โฮมมาร์ท", "ช่างไฟ",
             "ของดี", "น้องหมี", "cheap", "speed", "gadget", "kids", "เบบี้", "ครัวไทย"]
_PROMO = ["", "", "", "[ส่งฟรี] ", "🔥ลดราคา🔥 ", "ของแท้ 100% ", "⚡️Flash Sale⚡️ ", "【พร้อมส่ง】", "[ประกันศูนย์] ", "NEW! "]
_TAIL = ["", "", " ส่งไว", " พร้อมส่ง", " ประกัน 1 ปี", " ของแท้", " ราคาถูก", " 🔥", " คุ้มสุดๆ", " รับประกันศูนย์"]

# specs by catalogue group: Thai and English fragments; none carries an exclusion word
_SPECS: dict[str, list[str]] = {
    "battery": ["10000mAh", "20000mAh", "5000mAh", "30000mAh", "ชาร์จเร็ว 22.5W", "PD 20W", "2 พอร์ต"],
    "appliance": ["1200W", "2000W", "ความจุ 1.8 ลิตร", "16 นิ้ว", "ประหยัดไฟเบอร์ 5", "5 ระดับ", "สีขาว", "รุ่นใหม่ล่าสุด"],
    "lighting": ["9W", "12W", "18W", "แสงขาว", "แสงวอร์ม", "Daylight", "ขั้ว E27", "ประหยัดไฟ"],
    "electrical": ["3 ช่อง", "4 ช่อง", "5 เมตร", "3 เมตร", "16A 250V", "มีสวิตช์", "10A"],
    "toys": ["สำหรับเด็ก 3 ปีขึ้นไป", "เสริมพัฒนาการ", "ของขวัญวันเด็ก", "สีสดใส", "ชุดใหญ่"],
    "vehicle": ["ขอบ 14", "ขอบ 17", "ไซส์ M", "ไซส์ L", "สีดำด้าน", "ปี 2025", "ทนทาน"],
    "food-contact": ["500 มล.", "1 ลิตร", "ชุด 6 ใบ", "ปลอดสาร BPA", "ทนร้อน"],
    "baby": ["ไซส์ S", "ไซส์ M", "แพ็ค 2 ชิ้น", "สำหรับเด็ก 0-6 เดือน", "ซิลิโคนนุ่ม"],
    "construction": ["ยาว 10 เมตร", "ขนาด 60x60 ซม.", "50 กก.", "เกรด A", "ราคาส่ง"],
    "household": ["แพ็ค 10 ชิ้น", "ขนาด 15 กก.", "กล่องใหญ่", "ราคาส่ง"],
    "safety": ["ขนาด 15 ปอนด์", "ขนาด 10 ปอนด์", "พร้อมติดตั้ง", "เติมได้"],
    "sanitary": ["สแตนเลส 304", "ปรับได้ 3 ระดับ", "สีโครม", "ชุดใหญ่"],
    "kitchen": ["ขนาด 28 ซม.", "ขนาด 32 ซม.", "ชุด 3 ใบ", "หนาพิเศษ"],
    "chemical": ["ขนาด 1 ลิตร", "ขนาด 3.785 ลิตร", "แกลลอน", "สีใส"],
    "medical": ["กล่อง 100 ชิ้น", "ไซส์ M", "ไม่มีแป้ง"],
    "stationery": ["12 สี", "24 สี", "แท่งใหญ่", "ปลอดสารพิษ"],
    "food": ["ขนาด 565 กรัม", "แพ็ค 3 กระป๋อง", "ชิ้นพอดีคำ"],
}
_PRICE: dict[str, tuple[int, int]] = {"battery": (159, 1290), "appliance": (390, 12900), "lighting": (29, 490),
                                      "electrical": (59, 890), "toys": (49, 1590), "vehicle": (290, 4500),
                                      "food-contact": (29, 390), "baby": (59, 450), "construction": (99, 2500)}
# goods under no compulsory standard, and look-alikes of controlled ones (Thai, English, brand-ish)
UNCONTROLLED = [
    ("เก้าอี้สนามพับได้", "folding camping chair"), ("ลูกชิ้นปลาเยาวราช", "fish balls"), ("เสื้อยืดคอกลม", "cotton t-shirt"),
    ("กระเป๋าเป้", "backpack"), ("รองเท้าผ้าใบ", "sneakers"), ("ครีมกันแดด SPF50", "sunscreen SPF50"),
    ("หนังสือนิทานเด็ก", "children's story book"), ("ผ้าม่านหน้าต่าง", "window curtain"), ("แก้วมัคเซรามิก", "ceramic mug"),
    ("กาต้มน้ำไฟฟ้า", "electric kettle"), ("พัดลมพกพา USB", "USB mini fan"), ("ฟองน้ำเมลามีน", "melamine sponge"),
    ("ลูกบอลซักผ้า", "laundry balls for washing machine"), ("หลอดดูดสแตนเลส", "stainless steel straws"),
    ("หมวกแก๊ป", "baseball cap"), ("ปลั๊กอุดหู", "foam ear plugs"), ("ของเล่นแมว ไม้ตกแมว", "cat teaser toy"),
    ("ฟิล์มกระจก iPhone 15", "tempered glass screen protector"), ("หมวกจักรยาน", "bicycle helmet"),
    ("สายชาร์จ USB-C", "USB-C charging cable"), ("เมาส์ไร้สาย", "wireless mouse"), ("คีย์บอร์ดเกมมิ่ง", "gaming keyboard"),
    ("นาฬิกาข้อมือ", "wrist watch"), ("ผ้าห่มนาโน", "nano blanket"), ("ที่นอนยางพารา", "latex mattress"),
    ("กระทะเหล็กหล่อ", "cast iron skillet"), ("มีดทำครัว", "kitchen knife"), ("แปรงสีฟันไฟฟ้า", "electric toothbrush"),
    ("ลูกข่างไม้ตกแต่ง", "wooden spinning top decoration"), ("ถุงมือผ้าทำสวน", "garden gloves"), ("เตาแก๊สหัวเดี่ยว", "single gas stove"),
    ("ยางรถจักรยาน 26 นิ้ว", "26 inch bicycle tyre"), ("น้ำยาซักผ้า", "liquid laundry detergent"), ("ไฟฉาย LED ชาร์จได้", "rechargeable LED flashlight"),
    ("กล่องเก็บของพลาสติก", "plastic storage box"), ("ขาตั้งกล้อง", "camera tripod"), ("ร่มพับ", "folding umbrella"),
    ("แว่นกันแดด", "sunglasses"), ("ลำโพงรถยนต์ 6.5 นิ้ว", "6.5 inch car speaker"), ("สีไม้ 24 สี", "24 colored pencils"),
]
# Look-alikes of controlled products that no compulsory standard covers (DOMAIN.md §3: accessories,
# pet toys, food that mentions an appliance, other forms), written the way sellers write them.
LOOKALIKES = [
    "ของเล่นแมว ลูกบอลขนนก", "ของเล่นสุนัข เชือกกัด", "ของเล่นสัตว์เลี้ยง ตุ๊กตาบีบมีเสียง", "ลูกบอลซักผ้า สำหรับเครื่องซักผ้า",
    "ถุงซักผ้า ถนอมผ้า สำหรับเครื่องซักผ้า", "ไม้แบดมินตัน ไม้แบต คาร์บอน", "ลูกแบด ขนเป็ด 12 ลูก", "กระเป๋าใส่ไม้แบต",
    "ข้าวกล่องแช่แข็ง อุ่นไมโครเวฟ 2 นาที", "กระดาษรองหม้อทอด 100 แผ่น", "เฟรนช์ฟรายส์แช่แข็ง ทอดด้วยหม้อทอดไร้น้ำมัน",
    "หมวกแก๊ป ปักลาย", "หมวกจักรยาน เสือภูเขา", "หมวกเซฟตี้ หมวกวิศวกร", "ปลั๊กอุดหู กันเสียง", "พัดลมพกพา USB ชาร์จแบต",
    "พัดลมคล้องคอ ไร้ใบพัด", "ไฟโซล่าเซลล์ สปอตไลท์ 100W", "สายชาร์จ Type-C ชาร์จเร็ว", "ฟิล์มกระจก iPhone 15",
    "ตะแกรงปิ้งย่าง สแตนเลส", "ถ่านอัดแท่ง ไร้ควัน 1 กก.", "น้ำยาซักผ้า สูตรเข้มข้น", "ตุ๊กตาตกแต่งรถ หน้ารถ",
    "โมเดลรถ ฟิกเกอร์สะสม", "ไฟแช็คไฟฟ้า ชาร์จ USB", "หลอดดูดสแตนเลส", "ผ้าคลุมพัดลม กันฝุ่น", "รีโมทแอร์ universal",
    "ที่ชาร์จในรถ Car Charger 2 USB", "ยางรถจักรยาน 26 นิ้ว", "ถุงมือผ้าทำสวน", "กล่องเก็บของเล่น พับได้",
]
# name: (verdict, weight in a default world)
SCENARIOS: dict[str, tuple[str, float]] = {
    "licensed": ("licensed", 0.20),
    "licensed_no_model": ("licensed", 0.05),
    "licensed_claims_licence": ("licensed", 0.05),
    "licensed_thai_brand": ("licensed", 0.03),       # the registry writes the brand in Latin only
    "licensed_gift": ("licensed", 0.02),             # "… แถมเคส": an accessory given with it
    "unlicensed_unknown_brand": ("unlicensed", 0.10),
    "unlicensed_no_brand": ("unlicensed", 0.04),
    "unlicensed_vague_claim": ("unlicensed", 0.03),
    "unlicensed_brand_elsewhere": ("unlicensed", 0.02),  # licensed, but for another product
    "unlicensed_partial_cover": ("unlicensed", 0.015),   # one of two standards that apply together
    "mislabeled_fake_tis": ("mislabeled", 0.05),
    "mislabeled_fake_licence": ("mislabeled", 0.03),
    "mislabeled_other_brand_licence": ("mislabeled", 0.03),
    "mislabeled_revoked": ("mislabeled", 0.04),
    "mislabeled_wrong_tis": ("mislabeled", 0.02),
    "mislabeled_model": ("mislabeled", 0.02),
    "mislabeled_licence_other_standard": ("mislabeled", 0.015),
    "needs_review_form": ("needs_review", 0.03),
    "needs_review_licence_no_brand": ("needs_review", 0.01),
    "not_controlled": ("not_controlled", 0.13),
    "accessory": ("not_controlled", 0.06),
    "accessory_for": ("not_controlled", 0.03),
    "lookalike": ("not_controlled", 0.04),
    "not_form": ("not_controlled", 0.015),
}


@dataclass
class Brand:
    latin: str
    thai: str

    @property
    def trademark(self) -> str:
        return f"{self.latin} / {self.thai}"


@dataclass
class Seller:
    marketplace: str
    seller_id: str
    shop_id: str
    name: str
    username: str
    location: str


@dataclass
class WorldListing:
    listing: dict[str, Any]  # DOMAIN.md §4.2, without observed_at
    expected: dict[str, Any]
    scenario: str
    vanish_round: int | None = None  # the crawl round from which the item is gone (None: never)
    price_by_round: dict[int, float] = field(default_factory=dict)

    @property
    def marketplace(self) -> str:
        return self.listing["marketplace"]

    @property
    def item_id(self) -> str:
        return self.listing["item_id"]

    def visible(self, round_no: int) -> bool:
        return self.vanish_round is None or round_no < self.vanish_round

    def at(self, round_no: int) -> dict[str, Any]:
        d = dict(self.listing)
        if round_no in self.price_by_round:
            d["price"] = self.price_by_round[round_no]
        return d


@dataclass
class World:
    seed: int
    catalogue: Catalogue
    licences: list[Licence]
    brands: dict[str, list[Brand]]  # standard base -> licensed brands
    sellers: list[Seller]
    listings: list[WorldListing]
    images: dict[str, Any] = field(default_factory=dict)  # image name -> sandbox.images.ImageSpec

    def for_marketplace(self, marketplace: str, round_no: int = 1) -> list[WorldListing]:
        return [w for w in self.listings if w.marketplace == marketplace and w.visible(round_no)]

    def expected_counts(self, round_no: int = 1) -> dict[str, int]:
        out: dict[str, int] = {}
        for w in self.listings:
            if w.visible(round_no):
                out[w.expected["verdict"]] = out.get(w.expected["verdict"], 0) + 1
        return out

    def write_listings(self, path: str | Path, with_expected: bool = True, round_no: int = 1) -> int:
        n = 0
        with open(path, "w", encoding="utf-8") as f:
            for w in self.listings:
                if not w.visible(round_no):
                    continue
                d = w.at(round_no)
                if with_expected:
                    d["expected"] = w.expected
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
                n += 1
        return n


# ------------------------------------------------------------------------------------------------
def _safe_words(catalogue: Catalogue) -> dict[str, tuple[list[str], list[str]]]:
    """Per standard base: (Thai words, Latin words) that belong to it alone and carry no exclusion."""
    owners: dict[str, set[str]] = {}
    for s in catalogue.standards:
        for w in s.words:
            owners.setdefault(w, set()).add(s.base)
    out: dict[str, tuple[list[str], list[str]]] = {}
    all_words = list(owners)
    acc = set(catalogue.accessory_words) | set(catalogue.for_words)
    for s in catalogue.consumer_standards:
        good = []
        for w in s.words:
            if len(owners[w]) > 1 or any(x in w for x in s.exclude) or any(a in w for a in acc):
                continue
            # a word that contains another standard's word would be read as that one by a tie-break
            if any(o != w and o in w and s.base not in owners[o] for o in all_words):
                continue
            if any(w in o and o != w and s.base not in owners[o] for o in all_words) and len(w) < 5:
                continue
            if any(c.isdigit() for c in w) and len(w) <= 5:
                continue
            good.append(w)
        thai = [w for w in good if not w.isascii()]
        latin = [w for w in good if w.isascii()]
        if thai:
            out[s.base] = (thai, latin or [])
    return out


def _brand_pool(rng: random.Random, n: int) -> list[Brand]:
    seen: set[str] = set()
    out: list[Brand] = []
    while len(out) < n:
        k = rng.choice((2, 2, 2, 3))
        syl = [rng.choice(_SYL) for _ in range(k)]
        latin = "".join(s[0] for s in syl).capitalize()
        if latin.lower() in seen or len(latin) < 4:
            continue
        seen.add(latin.lower())
        out.append(Brand(latin, "".join(s[1] for s in syl)))
    return out


def _model_codes(rng: random.Random, n: int) -> list[str]:
    prefix = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.choice((2, 2, 3))))
    if prefix == "TIS":
        prefix = "TIX"  # "TIS3071" would read as a TIS claim, which the truth does not know of
    start = rng.randrange(100, 9000)
    step = rng.choice((1, 1, 10, 100))
    sep = rng.choice(("-", "-", "", " "))
    return [f"{prefix}{sep}{start + i * step}" for i in range(n)]


def allocate(total: int, catalogue: Catalogue, minimum: int = 0) -> dict[str, int]:
    """Licences per standard following the real November-2025 counts (largest remainder)."""
    weights = {s.base: s.total_licences for s in catalogue.standards if s.total_licences > 0}
    wsum = sum(weights.values())
    scale = total / wsum
    raw = {b: w * scale for b, w in weights.items()}
    out = {b: int(v) for b, v in raw.items()}
    if minimum:
        for s in catalogue.consumer_standards:
            if s.base in out and out[s.base] < minimum:
                out[s.base] = minimum
    diff = total - sum(out.values())
    order = sorted(raw, key=lambda b: raw[b] - int(raw[b]), reverse=True)
    i = 0
    while diff > 0:
        out[order[i % len(order)]] += 1
        diff -= 1
        i += 1
    order = sorted(out, key=lambda b: out[b], reverse=True)
    i = 0
    while diff < 0:
        b = order[i % len(order)]
        if out[b] > max(minimum, 1 if weights[b] else 0):
            out[b] -= 1
            diff += 1
        i += 1
        if i > 10 * len(order) * (abs(diff) + 1):
            break
    return out


# the day the generated registry describes (the real counts are of November 2025): no licence changes
# status after it, so a file of it imported as of this day or later is consistent with its history
SNAPSHOT_DAY = date(2025, 11, 30)


def generate_licences(n: int, seed: int = 7, catalogue: Catalogue | None = None,
                      minimum_per_consumer: int = 0) -> tuple[list[Licence], dict[str, list[Brand]]]:
    """n licences whose spread over standards, types and statuses follows the real registry.

    Returns the licences and, per standard base, the brands that hold a licence under it."""
    cat = catalogue or load_catalogue()
    rng = random.Random(f"licences:{seed}")
    alloc = allocate(n, cat, minimum_per_consumer)
    pool = _brand_pool(rng, max(60, n // 3))
    brands_by_base: dict[str, list[Brand]] = {}
    licences: list[Licence] = []
    seq = 1000
    tax_ids: dict[str, str] = {}
    by_base = {s.base: s for s in cat.standards}
    for base, count in sorted(alloc.items(), key=lambda kv: kv[0]):
        s = by_base[base]
        m, i, d = s.licences
        types = ["ท"] * m + ["น"] * i + ["ส"] * d or ["ท"]
        # a brand holds a few licences under one standard (one per model family / factory)
        nbrands = max(1, round(count / rng.choice((1.5, 2, 3))))
        brands = rng.sample(pool, min(nbrands, len(pool)))
        brands_by_base[base] = brands
        for k in range(count):
            seq += rng.randrange(1, 4)
            b = brands[k % len(brands)]
            ltype = rng.choice(types)
            if ltype == "น" and rng.random() < 0.03:
                ltype = "นค"
            company = rng.choice(_COMPANY).format(b.latin.upper() if rng.random() < 0.5 else b.thai)
            tax_ids.setdefault(company, "0" + "".join(rng.choice(string.digits) for _ in range(12)))
            issued = date(2016, 1, 1) + timedelta(days=rng.randrange(0, 3500))
            r = rng.random()
            status = "active" if r < 0.86 else "suspended" if r < 0.905 else "cancelled" if r < 0.955 else "revoked"
            status_date = min(issued + timedelta(days=rng.randrange(100, 1500)), SNAPSHOT_DAY) if status != "active" else None
            tm = b.trademark if rng.random() < 0.85 else b.latin
            words = list(s.words)
            product = (words[0] if words else s.name_th)
            licences.append(Licence(
                licence_no=f"{ltype}{seq}-{rng.randrange(1, 40)}/{rng.randrange(1, 70)}",
                tis_no=s.tis_no, licence_type=ltype, licensee=company, tax_id=tax_ids[company], trademarks=tuple(
                    x.strip() for x in tm.split("/")), product=product, models=tuple(_model_codes(rng, rng.randrange(1, 6))),
                factory=rng.choice(_FACTORY), origin=rng.choice(_ORIGIN), issued=issued, status=status,
                status_date=status_date))
    rng.shuffle(licences)
    return licences, brands_by_base


# ------------------------------------------------------------------------------------------------
class _Maker:
    def __init__(self, rng: random.Random, cat: Catalogue, licences: list[Licence], hard: bool,
                 brands: dict[str, list[Brand]] | None = None):
        self.rng, self.cat, self.hard = rng, cat, hard
        # Latin trademark -> the brand's Thai spelling (for licences that carry the Latin name only)
        self.thai_of = {b.latin: b.thai for bs in (brands or {}).values() for b in bs}
        self.safe = _safe_words(cat)
        self.by_base: dict[str, list[Licence]] = {}
        # (base, folded trademark) -> licences, in licence order: brand_licences is called for every
        # listing made, and folding every trademark each time made big worlds slow to build
        self._by_brand: dict[tuple[str, str], list[Licence]] = {}
        for lic in licences:
            self.by_base.setdefault(lic.base, []).append(lic)
            for k in dict.fromkeys(fold(t) for t in lic.trademarks):
                self._by_brand.setdefault((lic.base, k), []).append(lic)
        self.all_brand_keys = {fold(t).replace(" ", "") for lic in licences for t in lic.trademarks}
        self.standards = [s for s in cat.consumer_standards if s.base in self.safe and self._coverable(s)]
        self.form_standards = [s for s in self.standards if s.requires]
        # goods sold online: weight a standard by the square root of its licence count (power banks,
        # plugs, toys and lamps come up far more often than steel sheet)
        popular = {"battery": 4, "electrical": 3, "appliance": 3, "toys": 3, "lighting": 2, "vehicle": 2, "baby": 2}
        self.weights = [max(1.0, s.total_licences) ** 0.5 * popular.get(s.group or "", 1) for s in self.standards]
        self.unknown = [b for b in _brand_pool(random.Random(rng.random()), 400)
                        if fold(b.latin) not in self.all_brand_keys and fold(b.thai) not in self.all_brand_keys]

    def _coverable(self, s: Standard) -> bool:
        return all(self.cat.find(w) is not None for w in s.with_)

    def brand_licences(self, base: str, brand: str, active: bool | None = None) -> list[Licence]:
        return [x for x in self._by_brand.get((base, fold(brand)), []) if active is None or x.active == active]

    def fully_licensed(self, s: Standard, lic: Licence) -> bool:
        """The licence's brand is also licensed under every co-applicable standard."""
        tm = lic.trademarks[0]
        return all(self.brand_licences(self.cat.find(w).base, tm, active=True) for w in s.with_)  # type: ignore[union-attr]

    def claim_text(self, tis: str, hard: bool) -> str:
        rng = self.rng
        forms = ["มอก. {}", "มอก.{}", "มอก {}", "ม.อ.ก. {}", "TIS {}", "(มอก.{})", "[ มอก {} ]"]
        t = tis
        if hard:
            r = rng.random()
            if r < 0.2:
                t = t.translate(THAI_DIGITS)
            elif r < 0.35 and "-" in t:
                num, year = t.rsplit("-", 1)
                t = f"{num}-{int(year) - 543}"
            elif r < 0.45:
                t = t.replace("-", "\u200b-")
        return rng.choice(forms).format(t)

    def licence_text(self, no: str) -> str:
        return self.rng.choice(["ใบอนุญาตเลขที่ {}", "เลขที่ใบอนุญาต {}", "ใบอนุญาต {}", "Licence no. {}"]).format(no)

    def title(self, s: Standard, brand: str | None, model: str | None, claim: str = "", lang: str | None = None,
              extra: str = "") -> str:
        rng = self.rng
        thai, latin = self.safe[s.base]
        noun_th = rng.choice(thai)
        noun_en = rng.choice(latin) if latin else noun_th
        spec = rng.choice(_SPECS.get(s.group or "", ["คุณภาพดี"]))
        # state the covered form, in Thai and in English (requires lists both: ["ไฟฟ้า", "electric"])
        th_form = next((w for w in s.requires if not w.isascii()), "")
        en_form = next((w for w in s.requires if w.isascii()), th_form)
        if th_form:
            noun_th = f"{noun_th}{th_form}"
        if en_form and latin:
            noun_en = f"{en_form} {noun_en}"
        if self.hard and rng.random() < 0.15:
            # keyword stuffing: several names of the same product
            more = [w for w in thai + latin if w not in (noun_th, noun_en)]
            if more:
                noun_th = f"{noun_th} {rng.choice(more)}"
        lang = lang or rng.choice(("th", "th", "th", "en", "mix"))
        b = brand or ""
        m = f"รุ่น {model}" if model and lang == "th" and rng.random() < 0.6 else (model or "")
        if lang == "en" and latin:
            parts = [b, model or "", noun_en.title() if rng.random() < 0.5 else noun_en, spec, claim]
        elif lang == "mix" and latin:
            parts = [noun_th, b, model or "", noun_en, spec, claim]
        else:
            if self.hard and b and not b.isascii() and rng.random() < 0.3:
                noun_th, b = noun_th + b, ""  # a Thai brand glued to the product word: พัดลมฮาตาริ
            parts = [noun_th, b, m, spec, claim]
        text = rng.choice(_PROMO) + " ".join(p for p in parts if p) + (f" {extra}" if extra else "") + rng.choice(_TAIL)
        text = " ".join(text.split())
        return self.noise(text) if self.hard else text

    def noise(self, text: str) -> str:
        """What careless typing and copy-paste do to Thai titles (the text still reads the same)."""
        rng = self.rng
        r = rng.random()
        if r < 0.06 and "แ" in text:
            return text.replace("แ", "เเ")  # SARA E typed twice for SARA AE
        if r < 0.10:
            return re.sub("([\u0e31\u0e34-\u0e37\u0e47])([\u0e48-\u0e4b])", lambda m: m.group(2) + m.group(1), text, count=1)  # tone before vowel
        if r < 0.14:
            thai = [i for i in range(1, len(text)) if "ก" <= text[i - 1] <= "ฮ" and "ก" <= text[i] <= "ฮ"]
            if thai:
                i = rng.choice(thai)
                return text[:i] + "\u200b" + text[i:]  # a zero-width space inside a word
        if r < 0.17:
            return text.translate(_FULLWIDTH)  # full-width digits
        return text

    def thai_only_brand(self, s: Standard) -> tuple[Licence, str] | None:
        """An active, fully licensed licence whose trademark is Latin only, with its brand's Thai spelling."""
        cands = [x for x in self.by_base.get(s.base, []) if x.active and x.models and len(x.trademarks) == 1
                 and x.trademarks[0].isascii() and x.trademarks[0] in self.thai_of and self.fully_licensed(s, x)]
        if not cands:
            return None
        lic = self.rng.choice(cands)
        return lic, self.thai_of[lic.trademarks[0]]


def _description(rng: random.Random, title: str, claim_in_desc: str, vague: bool) -> str:
    lines = [f"✅ {title}", "📌 สินค้าพร้อมส่ง จัดส่งภายใน 1-2 วัน", "📌 รับประกันสินค้า 7 วัน หากสินค้ามีปัญหา"]
    if claim_in_desc:
        lines.insert(1, f"✔️ {claim_in_desc}")
    if vague:
        lines.insert(1, rng.choice(["✔️ สินค้ามีมอก. ปลอดภัย", "✔️ ได้มาตรฐาน มอก.", "✔️ ผ่านมาตรฐาน ปลอดภัย 100%"]))
    return "\n".join(lines)


def build_world(seed: int = 7, n_licences: int = 600, n_listings: int = 240, catalogue: Catalogue | None = None,
                marketplaces: Iterable[str] = MARKETPLACES, weights: dict[str, float] | None = None,
                hard: bool = True, vanish_share: float = 0.05, image_only_share: float = 0.0) -> World:
    """The world: licences following the real registry, sellers on each marketplace, listings with truth.

    `hard` (the default) writes titles the harder ways sellers do: claims in Thai digits, CE years and
    with zero-width characters; models in other case and spacing; เเ typed for แ, a tone mark before
    its vowel, zero-width characters inside words; a Thai brand glued to the product word; titles
    stuffed with several names of the product. `hard=False` gives the plain titles. `image_only_share`
    moves that share of the text claims into the listings' pictures (sandbox/images.py), where only a
    reader of images finds them."""
    cat = catalogue or load_catalogue()
    rng = random.Random(f"world:{seed}")
    licences, brands = generate_licences(n_licences, seed, cat, minimum_per_consumer=3)
    mk = _Maker(rng, cat, licences, hard, brands)
    mps = list(marketplaces)
    sellers: list[Seller] = []
    for i in range(max(12, n_listings // 6)):
        mp = mps[i % len(mps)]
        word = rng.choice(_SHOPWORD)
        name = rng.choice(_SHOP).format(word)
        username = f"{''.join(c for c in fold(word) if c.isascii() and c.isalnum()) or 'shop'}{i}"
        loc = rng.choice(_PROVINCES_EN if mp == "lazada" else _PROVINCES_TH)
        sellers.append(Seller(mp, str(100000 + i * 7919), str(20000000 + i * 104729), name, username, loc))
    w = weights or {k: v[1] for k, v in SCENARIOS.items()}
    names = list(w)
    by_mp: dict[str, list[Seller]] = {}
    for sl in sellers:
        by_mp.setdefault(sl.marketplace, []).append(sl)
    listings: list[WorldListing] = []
    attempts = 0
    while len(listings) < n_listings and attempts < n_listings * 20:
        attempts += 1
        scen = rng.choices(names, [w[n] for n in names])[0]
        made = _make(mk, scen, rng, hard)
        if made is None:
            continue
        listing, expected = made
        seller = rng.choice(by_mp.get(mps[len(listings) % len(mps)]) or sellers)
        listing.update(_marketplace_fields(rng, seller, listing, len(listings)))
        wl = WorldListing(listing, expected, scen)
        if rng.random() < vanish_share:
            wl.vanish_round = 2
        if rng.random() < 0.15 and listing.get("price"):
            wl.price_by_round[2] = round(listing["price"] * rng.choice((0.8, 0.9, 1.1)), 0)
        listings.append(wl)
    world = World(seed, cat, licences, brands, sellers, listings)
    from sandbox.images import plan_images

    plan_images(world, image_only_share)
    return world


def grow(world: World, n_listings: int, seed: int = 1) -> World:
    """The world with `n_listings` listings: its own, then variants of them. A variant is the same
    product with the same brand, claims and truth, sold by another seller of the same marketplace
    under another item id, at another price, its title dressed the way sellers copy each other's
    listings (promotion words in front, a tail behind). Cheap (a dict copy and a few string
    operations a listing), so the store benchmark's 200,000 listings come from a world of 20,000 in
    seconds, not minutes; deterministic from `seed`. Pictures are not copied (`world.images` stays)."""
    rng = random.Random(f"grow:{world.seed}:{seed}")
    base = list(world.listings)
    if n_listings <= len(base) or not base:
        return World(world.seed, world.catalogue, world.licences, world.brands, world.sellers, base[:n_listings], world.images)
    by_mp: dict[str, list[Seller]] = {}
    for sl in world.sellers:
        by_mp.setdefault(sl.marketplace, []).append(sl)
    out = list(base)
    for i in range(n_listings - len(base)):
        w = base[i % len(base)]
        copy = 1 + i // len(base)
        d = dict(w.listing)
        seller = rng.choice(by_mp.get(d["marketplace"]) or world.sellers)
        d.update(shop_id=seller.shop_id, seller=seller.name, seller_id=seller.seller_id, location=seller.location,
                 item_id=f"{d['item_id']}-v{copy}", images=[])
        t = d["title"]
        promo = rng.choice(_PROMO)
        d["title"] = (t if t.startswith(promo) else promo + t) + rng.choice(_TAIL)
        if d.get("price"):
            d["price"] = float(max(9, round(d["price"] * rng.choice((0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2)))))
        d["sold"] = rng.choice((0, 3, 12, 85, 230, 1400, 12000))
        out.append(WorldListing(d, dict(w.expected), w.scenario))
    return World(world.seed, world.catalogue, world.licences, world.brands, world.sellers, out, world.images)


def _marketplace_fields(rng: random.Random, seller: Seller, listing: dict[str, Any], n: int) -> dict[str, Any]:
    mp = seller.marketplace
    if mp == "shopee":
        item_id = str(1_000_000_000 + n * 7_777_777 % 9_000_000_000 + rng.randrange(1000))
    elif mp == "lazada":
        item_id = str(4_000_000_000 + n * 1_234_567 + rng.randrange(1000))
    else:
        item_id = f"p{1000 + n}"
    return {"marketplace": mp, "item_id": item_id, "shop_id": seller.shop_id, "seller": seller.name,
            "seller_id": seller.seller_id, "location": seller.location, "currency": "THB"}


def _make(mk: _Maker, scen: str, rng: random.Random, hard: bool) -> tuple[dict[str, Any], dict[str, Any]] | None:
    standards = mk.standards
    if scen == "needs_review_form":
        if not mk.form_standards:
            return None
        s = rng.choice(mk.form_standards)
        thai, _ = mk.safe[s.base]
        brand = rng.choice(mk.unknown)
        title = f"{rng.choice(_PROMO)}{rng.choice(thai)} {brand.latin} {rng.choice(_SPECS.get(s.group or '', ['']))}".strip()
        return _listing(rng, title, None, "", False), {"verdict": "needs_review", "tis_no": s.tis_no, "licence_no": None}
    if scen == "lookalike":
        brand = rng.choice(mk.unknown)
        title = f"{rng.choice(_PROMO)}{rng.choice(LOOKALIKES)} {brand.latin if rng.random() < 0.5 else ''}".strip()
        return _listing(rng, mk.noise(title) if hard else title, None, "", False), \
            {"verdict": "not_controlled", "tis_no": None, "licence_no": None}
    if scen == "accessory_for":
        s = rng.choice(standards)
        thai, latin = mk.safe[s.base]
        if latin and rng.random() < 0.3:
            title = f"{rng.choice(['Case', 'Holder', 'Stand', 'Cover', 'Replacement part'])} for {rng.choice(latin)} {rng.choice(mk.unknown).latin}"
        else:
            acc = rng.choice(["ซองใส่", "ขาตั้ง", "ที่แขวน", "อะไหล่", "ฝาครอบ", "กล่องใส่", "ที่เก็บ"])
            title = f"{acc}{rng.choice(('', ' '))}{rng.choice(('สำหรับ', 'ใช้กับ', ''))} {rng.choice(thai)} {rng.choice(mk.unknown).latin}"
        return _listing(rng, " ".join(title.split()), None, "", False), {"verdict": "not_controlled", "tis_no": None, "licence_no": None}
    if scen == "not_form":
        forms = [x for x in mk.form_standards if x.not_form]
        if not forms:
            return None
        s = rng.choice(forms)
        thai, _ = mk.safe[s.base]
        nf = rng.choice([w for w in s.not_form if not w.isascii()] or list(s.not_form))
        title = f"{rng.choice(_PROMO)}{rng.choice(thai)}{rng.choice(('', ' '))}{nf} {rng.choice(mk.unknown).latin} {rng.choice(_SPECS.get(s.group or '', ['']))}"
        return _listing(rng, " ".join(title.split()), None, "", False), {"verdict": "not_controlled", "tis_no": None, "licence_no": None}
    if scen in ("not_controlled", "accessory"):
        if scen == "not_controlled":
            th, en = rng.choice(UNCONTROLLED)
            brand = rng.choice(mk.unknown)
            title = rng.choice([f"{th} {brand.latin}", f"{brand.latin} {en}", f"{rng.choice(_PROMO)}{th} {en}"])
            return _listing(rng, title, brand.latin if rng.random() < 0.4 else None, "", False), \
                {"verdict": "not_controlled", "tis_no": None, "licence_no": None}
        s = rng.choice(standards)
        thai, _ = mk.safe[s.base]
        acc = rng.choice(["เคส", "ซอง", "ผ้าคลุม", "สติกเกอร์", "ฟิล์ม", "ที่วาง"])
        title = f"{rng.choice(_PROMO)}{acc}{rng.choice(('', ' '))}{rng.choice(thai)} {rng.choice(mk.unknown).latin}".strip()
        return _listing(rng, title, None, "", False), {"verdict": "not_controlled", "tis_no": None, "licence_no": None}

    s = rng.choices(standards, mk.weights)[0]
    lics = mk.by_base.get(s.base, [])
    active = [x for x in lics if x.active and x.models and mk.fully_licensed(s, x)]
    claim_title = claim_desc = ""
    brand_field: str | None = None
    vague = False
    exp: dict[str, Any] = {"verdict": SCENARIOS[scen][0], "tis_no": s.tis_no, "licence_no": None}

    def place(claim: str) -> None:
        nonlocal claim_title, claim_desc
        if rng.random() < 0.6:
            claim_title = claim
        else:
            claim_desc = claim

    if scen == "licensed_thai_brand":
        got = mk.thai_only_brand(s)
        if got is None:
            return None
        lic, thai_name = got
        model = rng.choice(lic.models)
        title = mk.title(s, thai_name, model, "", lang="th")
        return _listing(rng, title, thai_name if rng.random() < 0.3 else None, "", False, s), \
            {"verdict": "licensed", "tis_no": s.tis_no, "licence_no": lic.licence_no}
    if scen == "licensed_gift":
        if not active:
            return None
        lic = rng.choice(active)
        tm = rng.choice(lic.trademarks)
        acc_th, acc_en = rng.choice([("เคส", "case"), ("ซอง", "pouch"), ("ผ้าคลุม", "cover"), ("สายชาร์จ", "cable"), ("ขาตั้ง", "stand")])
        gift = rng.choice([f"แถม{acc_th}", f"แถมฟรี{acc_th}", f"ฟรี{acc_th}", f"[แถม{acc_th}]", f"free {acc_en}"])
        title = mk.title(s, tm, rng.choice(lic.models), "", extra=gift)
        return _listing(rng, title, tm if rng.random() < 0.5 else None, "", False, s), \
            {"verdict": "licensed", "tis_no": s.tis_no, "licence_no": lic.licence_no}
    if scen == "unlicensed_brand_elsewhere":
        # a brand licensed for another product, selling this one without a licence for it
        others = [x for b, xs in mk.by_base.items() if b != s.base for x in xs if x.active]
        rng.shuffle(others)
        lic = next((x for x in others[:50] if not mk.brand_licences(s.base, x.trademarks[0])
                    and all(not mk.brand_licences(s.base, t) for t in x.trademarks)), None)
        if lic is None:
            return None
        tm = lic.trademarks[0]
        title = mk.title(s, tm if rng.random() < 0.6 else None, None, "")
        return _listing(rng, title, tm if tm not in title else (tm if rng.random() < 0.5 else None), "", False, s), \
            {"verdict": "unlicensed", "tis_no": s.tis_no, "licence_no": None}
    if scen == "unlicensed_partial_cover":
        # licensed under the product's first standard, but not under one that applies with it
        if not s.with_:
            cands = [x for x in mk.standards if x.with_]
            if not cands:
                return None
            s = rng.choice(cands)
        part = [x for x in mk.by_base.get(s.base, []) if x.active and x.models and not mk.fully_licensed(s, x)
                and not any(mk.fully_licensed(s, y) for t in x.trademarks for y in mk.brand_licences(s.base, t))]
        if not part:
            return None
        lic = rng.choice(part)
        tm = lic.trademarks[0]
        title = mk.title(s, tm, rng.choice(lic.models), "")
        return _listing(rng, title, tm if rng.random() < 0.5 else None, "", False, s), \
            {"verdict": "unlicensed", "tis_no": s.tis_no, "licence_no": lic.licence_no}
    if scen == "mislabeled_licence_other_standard":
        # a real, active licence number of another product pasted on this one
        other_bases = [b for b in mk.by_base if b != s.base and b not in {mk.cat.find(w).base for w in s.with_}]  # type: ignore[union-attr]
        if not other_bases:
            return None
        pool = [x for x in mk.by_base[rng.choice(other_bases)] if x.active]
        if not pool:
            return None
        lic = rng.choice(pool)
        brand = rng.choice([lic.trademarks[0], rng.choice(mk.unknown).latin])
        place(mk.licence_text(lic.licence_no))
        title = mk.title(s, brand, None, claim_title)
        return _listing(rng, title, None, claim_desc, False, s), {"verdict": "mislabeled", "tis_no": s.tis_no, "licence_no": lic.licence_no}
    if scen == "needs_review_licence_no_brand":
        # an active licence under the standard, shown with no brand to tie it to the product
        if not active:
            return None
        lic = rng.choice(active)
        place(mk.licence_text(lic.licence_no))
        title = mk.title(s, None, None, claim_title)
        return _listing(rng, title, None, claim_desc, False, s), {"verdict": "needs_review", "tis_no": s.tis_no, "licence_no": lic.licence_no}
    if scen.startswith("licensed"):
        if not active:
            return None
        if scen == "licensed_no_model":
            # with no model named, the licence is only known when the brand holds one under the standard
            active = [x for x in active if len(mk.brand_licences(s.base, x.trademarks[0], active=True)) == 1]
            if not active:
                return None
        lic = rng.choice(active)
        tm = rng.choice(lic.trademarks)
        model = rng.choice(lic.models) if scen != "licensed_no_model" else None
        if model and hard and rng.random() < 0.4:
            model = rng.choice([model.lower(), model.replace("-", ""), model.replace("-", " ")])
        if scen == "licensed_claims_licence":
            place(mk.licence_text(lic.licence_no))
        elif rng.random() < 0.55:
            place(mk.claim_text(lic.tis_no, hard))
        brand_field = tm if rng.random() < 0.5 else None
        title = mk.title(s, tm, model, claim_title)
        exp["licence_no"] = lic.licence_no
    elif scen.startswith("unlicensed"):
        brand = rng.choice(mk.unknown)
        bname = None if scen == "unlicensed_no_brand" else rng.choice((brand.latin, brand.latin, brand.thai))
        model = _model_codes(rng, 1)[0] if bname and rng.random() < 0.5 else None
        vague = scen == "unlicensed_vague_claim"
        if vague and rng.random() < 0.5:
            claim_title = rng.choice(["มีมอก.", "ได้มาตรฐาน มอก.", "ผ่านมอก."])
            vague = False
        brand_field = bname if bname and rng.random() < 0.5 else None
        title = mk.title(s, bname, model, claim_title)
    elif scen == "mislabeled_fake_tis":
        brand = rng.choice(mk.unknown)
        place(mk.claim_text(s.tis_no, hard))
        title = mk.title(s, brand.latin, None, claim_title)
    elif scen == "mislabeled_fake_licence":
        brand = rng.choice(mk.unknown)
        fake = f"{rng.choice('ทน')}{rng.randrange(90000, 99999)}-{rng.randrange(1, 9)}/{rng.randrange(1, 70)}"
        place(mk.licence_text(fake))
        title = mk.title(s, brand.latin, None, claim_title)
    elif scen == "mislabeled_other_brand_licence":
        if not active:
            return None
        lic = rng.choice(active)
        brand = rng.choice(mk.unknown)
        place(mk.licence_text(lic.licence_no))
        title = mk.title(s, brand.latin, None, claim_title)
        brand_field = brand.latin
        exp["licence_no"] = lic.licence_no
    elif scen == "mislabeled_revoked":
        # a brand whose every licence under the standard is no longer active
        dead = [x for x in lics if not x.active and not mk.brand_licences(s.base, x.trademarks[0], active=True)]
        if not dead:
            return None
        lic = rng.choice(dead)
        if rng.random() < 0.5:
            place(mk.licence_text(lic.licence_no))
        else:
            place(mk.claim_text(lic.tis_no, hard))
        title = mk.title(s, lic.trademarks[0], rng.choice(lic.models) if lic.models else None, claim_title)
        exp["licence_no"] = lic.licence_no
    elif scen == "mislabeled_wrong_tis":
        other = rng.choice([o for o in mk.cat.standards if o.tis.number not in {x.tis.number for x in [s]} and o.base != s.base
                            and o.base not in {mk.cat.find(w).base for w in s.with_}])  # type: ignore[union-attr]
        brand = rng.choice(mk.unknown)
        place(mk.claim_text(other.tis_no, hard))
        title = mk.title(s, brand.latin, None, claim_title)
    elif scen == "mislabeled_model":
        if not active:
            return None
        lic = rng.choice(active)
        tm = lic.trademarks[0]
        licensed = {fold(m).replace("-", "").replace(" ", "") for x in mk.brand_licences(s.base, tm) for m in x.models}
        base_model = lic.models[0]
        digits = "".join(c for c in base_model if c.isdigit())
        prefix = base_model[: len(base_model) - len(digits)]
        model = None
        for k in range(1, 50):
            cand = f"{prefix}{int(digits) + 7 * k}" if digits else None
            if cand and fold(cand).replace("-", "").replace(" ", "") not in licensed:
                model = cand
                break
        if model is None:
            return None
        place(mk.claim_text(s.tis_no, hard))
        title = mk.title(s, tm, model, claim_title)
    else:
        raise ValueError(scen)
    return _listing(rng, title, brand_field, claim_desc, vague, s), exp


def _listing(rng: random.Random, title: str, brand: str | None, claim_desc: str, vague: bool,
             s: Standard | None = None) -> dict[str, Any]:
    lo, hi = _PRICE.get((s.group if s else "") or "", (39, 990))
    price = float(rng.randrange(lo, hi) // 10 * 10 + rng.choice((0, 9, 9, 5)))
    return {
        "title": title,
        "description": _description(rng, title, claim_desc, vague),
        "brand": brand,
        "price": price,
        "sold": rng.choice((0, 3, 12, 85, 230, 1400, 12000)),
        "category": [],
        "attributes": {},
        "images": [],
    }
