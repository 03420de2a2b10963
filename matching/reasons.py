"""Reason codes and the sentences an officer reads, in Thai and English.

A reason code is `name` or `name:arg[:arg]`; the arguments are data from the listing or the registry
(a colon inside an argument is written as a full-width ： so that the code stays parseable). Every
code the engine writes has a sentence here; tests/unit/test_engine.py checks that.
"""

from __future__ import annotations

SENTENCES: dict[str, tuple[str, str]] = {
    # what the product is
    "product": ("สินค้าเป็น “{1}” ซึ่งต้องเป็นไปตาม มอก. {0}", "the product is a “{1}”, which falls under TIS {0}"),
    "also_standard": ("สินค้านี้ต้องเป็นไปตาม มอก. {0} ด้วย", "the product must also meet TIS {0}"),
    "category": ("หมวดหมู่ของร้าน “{1}” ชี้ว่าเป็นสินค้าตาม มอก. {0}", "the marketplace category “{1}” points to TIS {0}"),
    "attributes": ("คุณสมบัติสินค้า “{1}” ชี้ว่าเป็นสินค้าตาม มอก. {0}", "the listed attribute “{1}” points to TIS {0}"),
    "product_from_claim": ("ชื่อสินค้าไม่บอกชนิด แต่ประกาศอ้าง มอก. {0} ซึ่งเป็นมาตรฐานบังคับ", "the title does not say what the product is, but the listing claims compulsory standard TIS {0}"),
    "product_from_model": ("ชื่อสินค้าไม่บอกชนิด แต่ยี่ห้อและรุ่น {1} อยู่ในใบอนุญาตตาม มอก. {0}", "the title does not say what the product is, but its brand and model {1} are on a licence under TIS {0}"),
    "other_product": ("สินค้าที่ขายคือ “{0}” ซึ่งไม่อยู่ภายใต้มาตรฐานบังคับ ส่วนสินค้าควบคุมเป็นเพียงส่วนประกอบ", "what is sold is a “{0}”, under no compulsory standard; the controlled product is only a part of it"),
    "no_controlled_product": ("ไม่พบสินค้าที่อยู่ภายใต้มาตรฐานบังคับ", "no product under a compulsory standard was found"),
    "accessory": ("เป็นอุปกรณ์เสริมหรือสินค้าอื่น (“{0}”) ไม่ใช่ตัวสินค้าควบคุม", "an accessory or another product (“{0}”), not the controlled product itself"),
    "gift": ("“{0}” เป็นของแถม ไม่ใช่สินค้าที่ขาย", "the “{0}” is a free gift, not the item sold"),
    "denied": ("ประกาศบอกว่าไม่ใช่ “{0}”", "the listing says it is not a “{0}”"),
    "category_not_controlled": ("หมวดหมู่ของร้าน “{0}” ไม่ใช่สินค้าควบคุม", "the marketplace category “{0}” holds no controlled product"),
    "not_form": ("มาตรฐานไม่ครอบคลุมสินค้าแบบนี้ (“{1}”, มอก. {0})", "the standard does not cover this form of the product (“{1}”, TIS {0})"),
    "form_from_licence": ("รุ่น {0} อยู่ในใบอนุญาต {1} ตามมาตรฐานนี้ จึงเป็นแบบที่มาตรฐานครอบคลุม", "model {0} is on licence {1} under this standard, so it is the form the standard covers"),
    "form_unclear": ("มอก. {0} ครอบคลุมเฉพาะบางแบบ และประกาศไม่ได้บอกว่าเป็นแบบใด", "TIS {0} covers only some forms of this product and the listing does not say which"),
    "ambiguous_product": ("ชื่อสินค้าอาจเป็นสินค้าควบคุมหรืออุปกรณ์เสริมก็ได้ (“{0}”)", "the title may name the controlled product or only an accessory for it (“{0}”)"),
    # what the listing claims
    "claims_tis": ("ประกาศอ้าง มอก. {0}", "the listing claims TIS {0}"),
    "claims_licence": ("ประกาศอ้างใบอนุญาตเลขที่ {0}", "the listing claims licence {0}"),
    "claims_tis_image": ("ภาพที่ {1} ของประกาศแสดง มอก. {0}", "the listing claims TIS {0}, read from image {1}"),
    "claims_licence_image": ("ภาพที่ {1} ของประกาศแสดงใบอนุญาตเลขที่ {0}", "the listing claims licence {0}, read from image {1}"),
    "qr_tis": ("คิวอาร์โค้ด สมอ. ในภาพที่ {1} ระบุ มอก. {0}", "the TISI QR code in image {1} names TIS {0}"),
    "qr_licence": ("คิวอาร์โค้ด สมอ. ในภาพที่ {1} ระบุใบอนุญาตเลขที่ {0}", "the TISI QR code in image {1} names licence {0}"),
    "qr_lookalike": ("คิวอาร์โค้ดในภาพที่ {1} ชี้ไปที่ {0} ซึ่งทำให้ดูเหมือนเว็บไซต์ของ สมอ. แต่ไม่ใช่",
                     "a QR code in image {1} points to {0}, made to look like TISI's site but not it"),
    "qr_tisi": ("คิวอาร์โค้ดในภาพที่ {1} ชี้ไปที่ {0} ของ สมอ. แต่ไม่ได้ระบุเลขใบอนุญาต",
                "a QR code in image {1} points to TISI ({0}) but names no licence"),
    "qr_elsewhere": ("คิวอาร์โค้ดในภาพที่ {1} ชี้ไปที่ {0} ไม่ใช่ สมอ.", "a QR code in image {1} points to {0}, not to TISI"),
    "tis_doubtful_image": ("อ่านได้ มอก. {0} จากภาพที่ {1} แต่ไม่มีมาตรฐานเลขนี้ อาจอ่านผิด จึงไม่นับเป็นการอ้าง",
                           "TIS {0} read from image {1} is no standard; probably misread, it is not counted as a claim"),
    "licence_misread": ("เลขใบอนุญาต {0} ที่อ่านจากภาพที่ {2} ไม่มีในทะเบียน แต่ต่างจากใบอนุญาต {1} เพียงหนึ่งตัวอักษร อาจอ่านผิด ควรตรวจดูภาพ",
                        "licence {0} read from image {2} is not in the registry but one character from licence {1}: "
                        "perhaps misread, look at the picture"),
    "vague_claim": ("อ้างว่า “มี มอก.” โดยไม่ระบุเลข ซึ่งนับว่าไม่มีการอ้าง", "a vague “has TIS” claim with no number, which counts as no claim"),
    "no_claim": ("ไม่มีการแสดงเลข มอก. หรือเลขใบอนุญาต", "no TIS number or licence number is shown"),
    "states_no_tis": ("ประกาศระบุเองว่าสินค้าไม่มี มอก.", "the listing itself says the product has no TIS mark"),
    "tis_unknown": ("เลข มอก. {0} ที่อ้างไม่มีอยู่ในทะเบียนมาตรฐาน", "the claimed TIS {0} does not exist in the catalogue"),
    "tis_older_edition": ("มอก. {0} ที่อ้างเป็นฉบับเดิมที่ มอก. {1} ฉบับปัจจุบันใช้แทนแล้ว", "the claimed TIS {0} is an older edition, replaced by TIS {1}"),
    "tis_not_for_product": ("มอก. {0} ที่อ้างไม่ครอบคลุมสินค้านี้ (ควรเป็น มอก. {1})", "the claimed TIS {0} does not cover this product (it should be TIS {1})"),
    # the licence
    "licence_not_found": ("ไม่พบใบอนุญาตเลขที่ {0} ในทะเบียน", "licence {0} does not exist in the registry"),
    "licence_inactive": ("ใบอนุญาต {0} อยู่ในสถานะ {1}", "licence {0} is {1}"),
    "licence_other_brand": ("ใบอนุญาต {0} เป็นของเครื่องหมายการค้าอื่น ({1})", "licence {0} belongs to another brand ({1})"),
    "licence_other_standard": ("ใบอนุญาต {0} ออกตาม มอก. {1} ไม่ใช่มาตรฐานของสินค้านี้", "licence {0} was issued under TIS {1}, not this product's standard"),
    "licence_brand_not_named": ("ประกาศไม่ระบุยี่ห้อ จึงตรวจไม่ได้ว่าใบอนุญาตที่อ้างเป็นของสินค้านี้", "the listing names no brand, so the claimed licence cannot be tied to this product"),
    "licence_match": ("ตรงกับใบอนุญาต {0} ที่ใช้งานอยู่", "matches active licence {0}"),
    "brand_licensed": ("เครื่องหมายการค้า {0} มีใบอนุญาตที่ใช้งานอยู่ตามมาตรฐานนี้", "brand {0} holds an active licence under this standard"),
    "brand_read_as": ("ยี่ห้อ “{0}” อ่านได้ว่าเป็นเครื่องหมายการค้า {1} ในทะเบียน", "the brand “{0}” is read as the registered trademark {1}"),
    "model_licensed": ("รุ่น {0} อยู่ในใบอนุญาต", "model {0} is listed on the licence"),
    "model_not_licensed": ("รุ่น {0} ไม่อยู่ในใบอนุญาตใดของเครื่องหมายการค้านี้", "model {0} is on no licence of this brand"),
    "model_licence_inactive": ("รุ่น {0} อยู่ในใบอนุญาต {1} ซึ่งอยู่ในสถานะ {2}", "model {0} is on licence {1}, which is {2}"),
    "no_active_licence_for_brand": ("ไม่มีใบอนุญาตตาม มอก. {1} ที่ใช้งานอยู่สำหรับเครื่องหมายการค้า {0}", "brand {0} holds no active licence under TIS {1}"),
    "brand_similar": ("ยี่ห้อ “{0}” คล้ายเครื่องหมายการค้า {1} ที่มีใบอนุญาต แต่ไม่ใช่ชื่อเดียวกัน", "the brand “{0}” is close to the licensed trademark {1}, but not the same name"),
    "brand_licensed_elsewhere": ("เครื่องหมายการค้า {0} มีใบอนุญาตตาม มอก. {1} ซึ่งเป็นสินค้าอื่น", "brand {0} is licensed under TIS {1}, for another product"),
    "brand_licence_inactive": ("ใบอนุญาตของ {0} ถูก{1}แล้ว", "the licence of {0} is {1}"),
    "no_licensed_brand": ("ประกาศไม่ระบุยี่ห้อใดที่มีใบอนุญาตตาม มอก. {0}", "the listing names no brand that holds a licence under TIS {0}"),
    "no_brand": ("ไม่ระบุยี่ห้อ จึงไม่มีใบอนุญาตใดรองรับได้", "no brand is named, so no licence can back it"),
    "standard_not_covered": ("ไม่มีใบอนุญาตตาม มอก. {0} สำหรับเครื่องหมายการค้านี้", "no licence under TIS {0} for this brand"),
    # written by a re-check after the licence registry changed (ops/recheck.py), not by check(): they
    # say in the listing's verdict history why its verdict changed without a new crawl
    "registry_recheck": ("ตรวจซ้ำเมื่อทะเบียนใบอนุญาตเปลี่ยน (ฉบับ {0})", "re-checked when the licence registry changed (version {0})"),
    "registry_granted": ("ใบอนุญาต {0} ที่เพิ่งออกในทะเบียนรองรับสินค้านี้แล้ว", "licence {0}, newly granted in the registry, now covers this listing"),
    "registry_status": ("ทะเบียนเปลี่ยนสถานะใบอนุญาต {0} เป็น{1}", "the registry changed licence {0} to {1}"),
    "registry_licence_changed": ("ทะเบียนแก้ไขใบอนุญาต {0} ({1})", "the registry changed licence {0} ({1})"),
}

# reason codes that record where a verdict came from rather than what it rests on; two verdicts that
# differ only by them are the same verdict (the listing store compares `substantive` reasons)
PROVENANCE_PREFIX = "registry_"


def substantive(reasons: list[str] | tuple[str, ...]) -> list[str]:
    """The reasons without the provenance codes (registry_*)."""
    return [r for r in reasons if not r.startswith(PROVENANCE_PREFIX)]


STATUS_WORDS = {"active": ("ใช้งาน", "active"), "suspended": ("พักใช้", "suspended"),
                "cancelled": ("ยกเลิก", "cancelled"), "revoked": ("เพิกถอน", "revoked")}
# which argument of a code is a licence status, to be put in words
_STATUS_ARG = {"licence_inactive": 1, "brand_licence_inactive": 1, "model_licence_inactive": 2, "registry_status": 1}


def code(name: str, *args: object) -> str:
    """A reason code with its arguments; a ':' inside an argument becomes '：'."""
    if not args:
        return name
    return ":".join([name, *(str(a).replace(":", "：").replace("\n", " ").strip() for a in args)])


def sentence(code: str, lang: str = "en") -> str:
    """The human sentence for a reason code, in 'th' or 'en'; the code itself if unknown."""
    name, *args = code.split(":")
    tpl = SENTENCES.get(name)
    if tpl is None:
        return code
    i = 0 if lang == "th" else 1
    k = _STATUS_ARG.get(name)
    if k is not None and len(args) > k:
        args[k] = STATUS_WORDS.get(args[k], (args[k], args[k]))[i]
    args += [""] * 3
    return tpl[i].format(*args)
