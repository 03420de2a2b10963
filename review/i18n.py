"""Every word the review app shows, in Thai (the default) and English, in one catalogue.

Templates call `t("key")` (the request's language is bound in), code calls `tr("key", lang)`. Reason
codes are turned into sentences by matching/reasons.py; verdicts, review statuses, roles and dismissal
reasons are here. Dates are shown in Asia/Bangkok, Thai with the Buddhist-Era year.
A key missing from the catalogue shows as the key itself (and a unit test checks the catalogue
covers every `t("...")` used in the templates).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

LANGS = ("th", "en")
BANGKOK = ZoneInfo("Asia/Bangkok")

M: dict[str, tuple[str, str]] = {
    # ---- frame ----
    "app.tagline": ("เฝ้าระวังสินค้าไม่มี มอก. บนตลาดออนไลน์", "watching online marketplaces for products without a TIS licence"),
    "nav.queue": ("คิวตรวจสอบ", "Queue"),
    "nav.search": ("ค้นหา", "Search"),
    "nav.dashboard": ("ภาพรวม", "Dashboard"),
    "nav.audit": ("บันทึกการตรวจสอบ", "Audit log"),
    "nav.users": ("ผู้ใช้", "Users"),
    "nav.partners": ("พันธมิตร", "Partners"),
    "nav.status": ("สถานะระบบ", "System status"),
    "api.title": ("เอกสาร API", "API documentation"),
    "api.intro": ("JSON API ภายใต้ /api/v1: ทุกอย่างที่หน้าเว็บทำ ยืนยันตัวตนด้วยโทเคนส่วนตัว (Authorization: Bearer tw_…)",
                  "The JSON API under /api/v1: everything the pages do. Authenticate with a personal token (Authorization: Bearer tw_…)."),
    "api.tokens": ("โทเคนส่วนตัว", "Personal tokens"),
    "api.noscript": ("หน้านี้ต้องใช้ JavaScript; ดูสเปก OpenAPI ได้ที่ลิงก์ด้านบน", "This page needs JavaScript; the OpenAPI spec is linked above."),
    "nav.account": ("บัญชีของฉัน", "My account"),
    "nav.logout": ("ออกจากระบบ", "Log out"),
    "nav.skip": ("ข้ามไปยังเนื้อหา", "Skip to content"),
    "lang.switch": ("English", "ภาษาไทย"),
    "role.officer": ("เจ้าหน้าที่ตรวจสอบ", "officer"),
    "role.investigator": ("ผู้สืบสวน", "investigator"),
    "role.partner_admin": ("ผู้ดูแลพันธมิตร", "partner administrator"),
    "role.admin": ("ผู้ดูแลระบบ", "administrator"),
    "common.none": ("ไม่มี", "none"),
    "common.all": ("ทั้งหมด", "all"),
    "common.filter": ("กรอง", "Filter"),
    "common.clear": ("ล้าง", "Clear"),
    "common.save": ("บันทึก", "Save"),
    "common.delete": ("ลบ", "Delete"),
    "common.prev": ("← ก่อนหน้า", "← Previous"),
    "common.next": ("ถัดไป →", "Next →"),
    "common.page": ("หน้า {page}/{pages}", "page {page}/{pages}"),
    "common.export_csv": ("ส่งออก CSV", "Export CSV"),
    "common.export_xlsx": ("ส่งออก Excel", "Export Excel"),
    "common.back_queue": ("← กลับไปคิวตรวจสอบ", "← Back to the queue"),
    "common.yes": ("ใช่", "yes"),
    "common.no": ("ไม่", "no"),
    "common.when": ("เวลา", "When"),
    "common.who": ("ผู้ทำ", "Who"),
    "common.what": ("การกระทำ", "What"),
    "common.target": ("เป้าหมาย", "Target"),
    "common.before": ("ก่อน", "Before"),
    "common.after": ("หลัง", "After"),
    "common.more": ("ดูเพิ่ม", "More"),
    # ---- errors ----
    "err.title": ("เกิดข้อผิดพลาด", "Something went wrong"),
    "err.403": ("คุณไม่มีสิทธิ์ใช้หน้านี้", "You are not allowed to use this page"),
    "err.404": ("ไม่พบหน้าที่ต้องการ", "Not found"),
    "err.csrf": ("แบบฟอร์มหมดอายุหรือไม่ถูกต้อง โปรดโหลดหน้าใหม่แล้วลองอีกครั้ง",
                 "The form has expired or is not valid; reload the page and try again"),
    "err.back": ("กลับหน้าแรก", "Back to the start"),
    # ---- login ----
    "login.title": ("เข้าสู่ระบบ", "Log in"),
    "login.username": ("ชื่อผู้ใช้", "User name"),
    "login.password": ("รหัสผ่าน", "Password"),
    "login.submit": ("เข้าสู่ระบบ", "Log in"),
    "login.bad": ("ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง", "Wrong user name or password"),
    "login.locked": ("บัญชีถูกล็อกชั่วคราวเพราะใส่รหัสผ่านผิดหลายครั้ง ลองอีกครั้งภายหลังหรือติดต่อผู้ดูแลระบบ",
                     "The account is locked for a while after repeated wrong passwords; try later or ask an administrator"),
    "login.disabled": ("บัญชีนี้ถูกระงับ ติดต่อผู้ดูแลระบบ", "This account is disabled; ask an administrator"),
    "login.logged_out": ("ออกจากระบบแล้ว", "You have logged out"),
    "login.session_ended": ("หมดเวลาการใช้งาน โปรดเข้าสู่ระบบอีกครั้ง", "Your session has ended (idle or too old): log in again"),
    # ---- verdicts and statuses ----
    "verdict.not_controlled": ("ไม่ใช่สินค้าควบคุม", "not controlled"),
    "verdict.licensed": ("มีใบอนุญาต", "licensed"),
    "verdict.unlicensed": ("ไม่มีใบอนุญาต", "unlicensed"),
    "verdict.mislabeled": ("แสดง มอก. ไม่ถูกต้อง", "mislabeled"),
    "verdict.needs_review": ("ต้องตรวจสอบ", "needs review"),
    "status.new": ("รอตรวจสอบ", "to review"),
    "status.confirmed": ("ยืนยันว่าผิด", "confirmed"),
    "status.dismissed": ("ยกเลิกธง", "dismissed"),
    "status.escalated": ("ส่งต่อแล้ว", "escalated"),
    "status.taken_down": ("ถูกนำลงแล้ว", "taken down"),
    "listing.active": ("ยังขายอยู่", "listed"),
    "listing.delisted": ("ถูกนำออกจากร้าน", "delisted"),
    # ---- decisions ----
    "act.confirm": ("ยืนยันว่าผิด", "Confirm violation"),
    "act.dismiss": ("ยกเลิกธง", "Dismiss"),
    "act.escalate": ("ส่งต่อ", "Escalate"),
    "act.taken_down": ("ถูกนำลงแล้ว", "Mark taken down"),
    "act.reopen": ("เปิดใหม่", "Reopen"),
    "act.note": ("บันทึกหมายเหตุ", "Add note"),
    "act.done": ("บันทึกการตัดสินใจแล้ว", "Decision recorded"),
    "act.bulk_done": ("บันทึกแล้ว {n} รายการ", "{n} listings updated"),
    "act.bulk_skipped": ("ข้าม {n} รายการ: {why}", "{n} skipped: {why}"),
    "act.not_allowed": ("ทำไม่ได้จากสถานะปัจจุบัน", "not possible from the current status"),
    "act.reason": ("เหตุผล", "Reason"),
    "act.target": ("ส่งต่อไปยัง", "Escalate to"),
    "act.note_label": ("หมายเหตุ", "Note"),
    "act.licence_no": ("เลขใบอนุญาต (ถ้าทราบ)", "Licence number (if known)"),
    "act.need_reason": ("ต้องเลือกเหตุผลในการยกเลิกธง", "a dismissal needs a reason"),
    "act.need_note": ("หมายเหตุว่างเปล่า", "the note is empty"),
    "dismiss.licensed": ("มีใบอนุญาตที่ถูกต้อง", "a valid licence covers it"),
    "dismiss.not_controlled": ("ไม่ใช่สินค้าควบคุม", "not a controlled product"),
    "dismiss.accessory": ("เป็นอุปกรณ์เสริม ไม่ใช่ตัวสินค้า", "an accessory, not the product"),
    "dismiss.form_not_covered": ("เป็นแบบที่มาตรฐานไม่ครอบคลุม", "a form the standard does not cover"),
    "dismiss.duplicate": ("ซ้ำกับประกาศอื่น", "duplicate of another listing"),
    "dismiss.other": ("อื่น ๆ (ระบุในหมายเหตุ)", "other (say why in the note)"),
    "target.etda": ("สพธอ. (ETDA)", "ETDA"),
    "target.platform": ("แพลตฟอร์ม", "the platform"),
    # ---- queue ----
    "queue.title": ("คิวตรวจสอบ", "Triage queue"),
    "queue.count": ("{n} รายการ", "{n} listings"),
    "queue.risk": ("ความเสี่ยง", "Risk"),
    "queue.verdict": ("ผล", "Verdict"),
    "queue.listing": ("ประกาศ", "Listing"),
    "queue.tis": ("มอก.", "TIS"),
    "queue.seller": ("ร้าน", "Seller"),
    "queue.marketplace": ("ตลาด", "Marketplace"),
    "queue.reasons": ("เหตุผล", "Why"),
    "queue.status": ("สถานะ", "Status"),
    "queue.flagged": ("ตั้งธงเมื่อ", "Flagged"),
    "queue.empty": ("ไม่มีรายการที่ตรงกับตัวกรอง", "Nothing matches these filters"),
    "queue.all_marketplaces": ("ทุกตลาด", "all marketplaces"),
    "queue.all_verdicts": ("ทุกผลที่ตั้งธง", "all flagged verdicts"),
    "queue.all_statuses": ("ทุกสถานะ", "all statuses"),
    "queue.all_standards": ("ทุกมาตรฐาน", "all standards"),
    "queue.seller_ph": ("ร้าน / รหัสร้าน", "seller / seller id"),
    "queue.text_ph": ("คำค้น", "words"),
    "queue.from": ("ตั้งแต่", "from"),
    "queue.to": ("ถึง", "to"),
    "queue.keys": ("ปุ่มลัด: j/k เลื่อน · Enter เปิด · x เลือก · c ยืนยัน · d ยกเลิกธง · e ส่งต่อ",
                   "Keys: j/k move · Enter open · x select · c confirm · d dismiss · e escalate"),
    "queue.select_all": ("เลือกทั้งหมดในหน้านี้", "select all on this page"),
    "queue.bulk": ("กับรายการที่เลือก:", "With the selected:"),
    "queue.select": ("เลือก", "select"),
    # ---- listing ----
    "listing.risk": ("ความเสี่ยง", "risk"),
    "listing.licence": ("ใบอนุญาต", "licence"),
    "listing.open": ("เปิดประกาศจริง", "open the listing"),
    "listing.decide": ("การตัดสินใจ", "Decision"),
    "listing.reasons": ("เหตุผลของผลการตรวจ", "Why this verdict"),
    "listing.facts": ("ข้อมูลประกาศ", "The listing"),
    "listing.brand": ("ยี่ห้อ", "Brand"),
    "listing.seller": ("ร้าน", "Seller"),
    "listing.price": ("ราคา", "Price"),
    "listing.sold": ("ขายแล้ว", "Sold"),
    "listing.location": ("ที่ตั้ง", "Location"),
    "listing.category": ("หมวดหมู่", "Category"),
    "listing.first_seen": ("พบครั้งแรก", "First seen"),
    "listing.last_seen": ("พบล่าสุด", "Last seen"),
    "listing.description": ("รายละเอียด", "Description"),
    "listing.claims": ("การอ้าง มอก. ที่อ่านได้", "TIS claims read from it"),
    "listing.claim.tis": ("เลข มอก.", "TIS number"),
    "listing.claim.licence": ("เลขใบอนุญาต", "licence number"),
    "listing.claim.vague": ("อ้างลอย ๆ", "vague claim"),
    "listing.claim_in": ("ใน", "in"),
    "listing.standard": ("มาตรฐานที่ใช้บังคับ", "The standard that applies"),
    "listing.candidates": ("ใบอนุญาตที่นำมาเทียบ", "Licences it was compared with"),
    "listing.score": ("คะแนน", "score"),
    "listing.no_candidates": ("ไม่มีใบอนุญาตตามมาตรฐานนี้ที่ตรงกับยี่ห้อ", "no licence under this standard matches the brand"),
    "listing.history": ("ประวัติ", "History"),
    "listing.change": ("สิ่งที่เปลี่ยน", "Change"),
    "listing.old": ("เดิม", "Was"),
    "listing.new": ("ใหม่", "Now"),
    "listing.verdict_change": ("ผลการตรวจ", "verdict"),
    "listing.evidence": ("หลักฐาน", "Evidence"),
    "listing.screenshot": ("ภาพหน้าจอ", "Screenshot"),
    "listing.saved_page": ("หน้าที่บันทึกไว้", "Saved page"),
    "listing.evidence_pack": ("ดาวน์โหลดชุดหลักฐาน (ZIP)", "Download the evidence pack (ZIP)"),
    "listing.no_evidence": ("ยังไม่มีหลักฐานที่บันทึกไว้", "no evidence saved yet"),
    "listing.seller_other": ("ประกาศอื่นของร้านนี้", "The seller's other listings"),
    "listing.decisions": ("การตัดสินใจและหมายเหตุ", "Decisions and notes"),
    "listing.no_decisions": ("ยังไม่มีการตัดสินใจ", "no decision yet"),
    "listing.chart_price": ("ราคาตามเวลา", "Price over time"),
    # ---- search ----
    "case.pack": ("ชุดหลักฐาน (ZIP) ของรายการที่เลือก", "Evidence pack (ZIP) of the selected"),
    "case.name": ("ชื่อคดี", "Case name"),
    "case.select": ("เลือกเข้าชุดหลักฐาน", "select for the evidence pack"),
    "search.title": ("ค้นหาประวัติประกาศ", "Search the listing history"),
    "search.placeholder": ("ค้นหาด้วยคำไทยหรืออังกฤษ ชื่อสินค้า ยี่ห้อ ร้าน", "Thai or English words: product, brand, seller"),
    "search.submit": ("ค้นหา", "Search"),
    "search.results": ("พบ {n} รายการ", "{n} listings found"),
    "search.facets": ("แยกตาม", "Narrow by"),
    "search.flagged_only": ("เฉพาะที่ถูกตั้งธง", "flagged only"),
    "search.order": ("เรียงตาม", "Order by"),
    "search.order.relevance": ("ความเกี่ยวข้อง", "relevance"),
    "search.order.risk": ("ความเสี่ยง", "risk"),
    "search.order.recent": ("ล่าสุด", "most recent"),
    "search.order.price": ("ราคา", "price"),
    "search.price_min": ("ราคาต่ำสุด", "min price"),
    "search.price_max": ("ราคาสูงสุด", "max price"),
    "search.save_as": ("บันทึกการค้นหานี้เป็น", "Save this search as"),
    "search.saved": ("การค้นหาที่บันทึกไว้", "Saved searches"),
    "search.no_saved": ("ยังไม่มี", "none yet"),
    "search.matched": ("ตรงกับ", "matched"),
    "facet.marketplace": ("ตลาด", "Marketplace"),
    "facet.verdict": ("ผล", "Verdict"),
    "facet.tis_no": ("มอก.", "TIS"),
    "facet.seller": ("ร้าน", "Seller"),
    "facet.review_status": ("สถานะ", "Status"),
    # ---- seller ----
    "seller.title": ("ร้าน {name}", "Seller {name}"),
    "seller.listings": ("ประกาศ", "listings"),
    "seller.flagged_share": ("สัดส่วนที่ถูกตั้งธง", "flagged share"),
    "seller.seen": ("พบระหว่าง", "seen"),
    "seller.operator": ("ร้านที่น่าจะเป็นผู้ขายรายเดียวกัน", "Shops that may be the same operator"),
    "seller.operator_help": ("เชื่อมโยงด้วยเบอร์โทร ไลน์ หรืออีเมลเดียวกันในประกาศ (หนักแน่น) ชื่อร้านเดียวกันหลังตัดคำทั่วไป (ปานกลาง) หรือรูปภาพที่ใช้ซ้ำ (อ่อน: ผู้ขายต่อมักใช้รูปของผู้ผลิต)",
                             "Linked by the same phone, LINE id or e-mail in their listings (strong), the same shop name once generic words are taken away (medium) or re-used photos (weak: resellers share manufacturers' photos)"),
    "seller.operator_totals": ("รวม {shops} ร้านใน {mps}: {n} ประกาศ, ถูกตั้งธง {f} ({share}%), พบระหว่าง {first} – {last}",
                               "Together {shops} shops on {mps}: {n} listings, {f} flagged ({share}%), seen {first} – {last}"),
    "seller.no_links": ("ไม่พบร้านอื่นที่เชื่อมโยงได้", "No other shop found to link"),
    "seller.shop": ("ร้าน", "shop"),
    "seller.marketplace": ("ตลาด", "marketplace"),
    "seller.why": ("เหตุผลที่เชื่อมโยง", "why linked"),
    "seller.all_listings": ("ประกาศทั้งหมดของผู้ขายรายนี้ (ทุกตลาด)", "All this operator's listings (every marketplace)"),
    "seller.this_shop": ("ประกาศของร้านนี้", "This shop's listings"),
    "strength.strong": ("หนักแน่น", "strong"),
    "strength.medium": ("ปานกลาง", "medium"),
    "strength.weak": ("อ่อน", "weak"),
    "link.phone": ("เบอร์โทรเดียวกัน {v}", "same phone {v}"),
    "link.line": ("ไลน์ไอดีเดียวกัน {v}", "same LINE id {v}"),
    "link.email": ("อีเมลเดียวกัน {v}", "same e-mail {v}"),
    "link.name": ("ชื่อร้านเดียวกันเมื่อตัดคำทั่วไป ({v})", "same shop name once generic words are taken away ({v})"),
    "link.photo": ("ใช้รูปเดียวกัน {v} รูป", "{v} photo(s) re-used"),
    "link.via": ("ผ่าน {shop}", "via {shop}"),
    # ---- dashboard ----
    "dash.title": ("ภาพรวม", "Dashboard"),
    "dash.flags_per_day": ("ธงใหม่ต่อวัน ตามตลาด", "New flags per day, by marketplace"),
    "dash.flags_per_day_standard": ("ธงใหม่ต่อวัน ตามมาตรฐาน (6 มาตรฐานที่มากที่สุด)", "New flags per day, by standard (the top 6)"),
    "dash.other": ("อื่น ๆ", "others"),
    "dash.flags_by_standard": ("ธงใหม่ตามมาตรฐาน (30 วัน)", "New flags by standard (30 days)"),
    "dash.backlog": ("งานค้าง: อายุของธงที่ยังไม่ได้ตรวจ", "Backlog: age of flags not yet reviewed"),
    "dash.decisions": ("การตัดสินใจต่อเจ้าหน้าที่ (30 วัน)", "Decisions per officer (30 days)"),
    "dash.takedown_rate": ("อัตราการนำลง", "Takedown rate"),
    "dash.takedown_text": ("{down} จาก {acted} รายการที่ยืนยันหรือส่งต่อ ถูกนำลงแล้ว",
                           "{down} of {acted} confirmed or escalated listings were taken down"),
    "dash.age.0": ("ไม่ถึง 1 วัน", "under a day"),
    "dash.age.1": ("1–7 วัน", "1–7 days"),
    "dash.age.7": ("7–30 วัน", "7–30 days"),
    "dash.age.30": ("เกิน 30 วัน", "over 30 days"),
    "dash.no_data": ("ยังไม่มีข้อมูล", "no data yet"),
    "dash.totals": ("ประกาศทั้งหมด {n} · ถูกตั้งธง {f} · รอตรวจ {b}", "{n} listings · {f} flagged · {b} to review"),
    # ---- account / users / audit ----
    "account.title": ("บัญชีของฉัน", "My account"),
    "account.tokens": ("โทเคน API ส่วนตัว", "Personal API tokens"),
    "account.token_help": ("ใช้กับ /api/v1 ด้วยส่วนหัว Authorization: Bearer <โทเคน> โทเคนจะแสดงเพียงครั้งเดียว",
                           "Use with /api/v1 as the header Authorization: Bearer <token>. A token is shown once."),
    "account.token_name": ("ชื่อโทเคน", "Token name"),
    "account.new_token": ("สร้างโทเคน", "Create token"),
    "account.token_shown": ("โทเคนใหม่ (คัดลอกเก็บไว้ จะไม่แสดงอีก):", "New token (copy it now, it will not be shown again):"),
    "account.revoke": ("เพิกถอน", "Revoke"),
    "account.revoked": ("เพิกถอนแล้ว", "revoked"),
    "account.password": ("เปลี่ยนรหัสผ่าน", "Change password"),
    "account.current": ("รหัสผ่านปัจจุบัน", "Current password"),
    "account.new_pw": ("รหัสผ่านใหม่ (อย่างน้อย 10 ตัวอักษร)", "New password (10 characters or more)"),
    "account.pw_changed": ("เปลี่ยนรหัสผ่านแล้ว โปรดเข้าสู่ระบบอีกครั้ง", "Password changed; log in again"),
    "account.pw_wrong": ("รหัสผ่านปัจจุบันไม่ถูกต้อง", "The current password is wrong"),
    "users.title": ("ผู้ใช้", "Users"),
    "users.add": ("เพิ่มผู้ใช้", "Add a user"),
    "users.display_name": ("ชื่อที่แสดง", "Display name"),
    "users.role": ("บทบาท", "Role"),
    "users.state": ("สถานะ", "State"),
    "users.active": ("ใช้งาน", "active"),
    "users.disabled": ("ระงับ", "disabled"),
    "users.locked": ("ล็อกถึง {t}", "locked until {t}"),
    "users.last_login": ("เข้าใช้ล่าสุด", "Last login"),
    "users.disable": ("ระงับ", "Disable"),
    "users.enable": ("เปิดใช้", "Enable"),
    "users.unlock": ("ปลดล็อก", "Unlock"),
    "users.added": ("เพิ่มผู้ใช้แล้ว", "User added"),
    "audit.title": ("บันทึกการตรวจสอบ (เพิ่มได้อย่างเดียว)", "Audit log (append-only)"),
    "audit.help": ("ทุกการตัดสินใจ หมายเหตุ การเข้าสู่ระบบ และการเปลี่ยนแปลงผู้ใช้ ถูกบันทึกที่นี่และแก้ไขไม่ได้",
                   "Every decision, note, login and change to users is recorded here and cannot be changed"),
    "audit.older": ("เก่ากว่า →", "Older →"),
}


def tr(key: str, lang: str = "th", **kw: object) -> str:
    """The message `key` in `lang` ('th' or 'en'), with {placeholders} filled in."""
    pair = M.get(key)
    if pair is None:
        return key
    s = pair[1 if lang == "en" else 0]
    return s.format(**kw) if kw else s


def pick_lang(cookie: str | None, user_lang: str | None, accept: str | None, default: str = "th") -> str:
    """The language of a request: the switch (cookie) wins, then the user's saved choice, then the
    configured default. Accept-Language is not used: officers share machines set to English."""
    for v in (cookie, user_lang):
        if v in LANGS:
            return v  # type: ignore[return-value]
    return default if default in LANGS else "th"


TH_MONTHS = ("ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.", "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.")
EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def to_bangkok(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(BANGKOK)


def fmt_dt(value: str | datetime | None, lang: str = "th", time: bool = True) -> str:
    """'22 พ.ย. 2569 10:00' / '22 Nov 2026 10:00', in Asia/Bangkok; '—' for nothing."""
    d = to_bangkok(value)
    if d is None:
        return "—" if not value else str(value)
    if lang == "en":
        s = f"{d.day} {EN_MONTHS[d.month - 1]} {d.year}"
    else:
        s = f"{d.day} {TH_MONTHS[d.month - 1]} {d.year + 543}"
    return f"{s} {d:%H:%M}" if time else s


def fmt_age(value: str | datetime | None, now: datetime, lang: str = "th") -> str:
    """How long ago, in whole minutes, hours or days."""
    d = to_bangkok(value)
    if d is None:
        return "—"
    secs = max(0, int((now - d).total_seconds()))
    if secs < 3600:
        n, u = secs // 60, ("นาที", "min")
    elif secs < 86400:
        n, u = secs // 3600, ("ชม.", "h")
    else:
        n, u = secs // 86400, ("วัน", "d")
    return f"{n} {u[0]}" if lang == "th" else f"{n} {u[1]}"


def fmt_num(n: float | int | None, digits: int = 0) -> str:
    if n is None:
        return "—"
    return f"{n:,.{digits}f}"
