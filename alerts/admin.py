"""Administration pages for partners (review app, role `partner_admin` or `admin`): partners and their
filters, keys and secrets (shown once), enable/disable, deliveries with their attempts, the
dead-letter list and its replay; and the partner-feedback panel on the listing page.

Uses the review app's accounts (`require_role`, CSRF on every POST) and page layout (`render`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup

from alerts import manage
from alerts.api import alert_service
from alerts.model import DEFAULT_SCOPES, SCOPES
from alerts.rules import FLAGGED, PARTNER_KINDS, Filters
from alerts.store import PartnerError
from review.auth import require_role
from review.web import add_template_dir, lang_of, render, templates

add_template_dir(Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)
partner_admin = require_role("partner_admin")

TEXT: dict[str, tuple[str, str]] = {
    "partners": ("พันธมิตร", "Partners"), "add": ("เพิ่มพันธมิตร", "Add a partner"), "id": ("รหัส", "Id"),
    "name": ("ชื่อ", "Name"), "enabled": ("ใช้งาน", "Enabled"), "disabled": ("ระงับ", "Disabled"),
    "filters": ("เงื่อนไข", "Filters"), "webhook": ("Webhook URL", "Webhook URL"), "email": ("อีเมลสรุปรายวัน", "Digest e-mail"),
    "digest": ("ส่งสรุปรายวัน", "Daily digest"), "scopes": ("สิทธิ์", "Scopes"), "marketplaces": ("ตลาดออนไลน์", "Marketplaces"),
    "standards": ("มาตรฐาน (มอก.)", "Standards (TIS)"), "verdicts": ("ผลการตรวจ", "Verdicts"),
    "min_risk": ("ความเสี่ยงขั้นต่ำ", "Minimum risk"), "confirmed_only": ("เฉพาะที่เจ้าหน้าที่ยืนยัน", "Officer-confirmed only"),
    "concurrency": ("คำขอพร้อมกัน", "Requests in flight"), "save": ("บันทึก", "Save"),
    "all_hint": ("เว้นว่าง = ทั้งหมด; คั่นด้วยจุลภาค", "empty = all; separate with commas"),
    "pending": ("รอส่ง", "Pending"), "delivered": ("ส่งแล้ว", "Delivered"), "dead": ("ส่งไม่สำเร็จ", "Dead letters"),
    "failures": ("ล้มเหลวติดกัน", "Consecutive failures"), "paused_until": ("พักถึง", "Paused until"),
    "open_alerts": ("การแจ้งเตือนที่เปิดอยู่", "Open alerts"), "keys": ("API keys", "API keys"),
    "rotate_key": ("ออก API key ใหม่", "New API key"), "rotate_secret": ("ออก webhook secret ใหม่", "New webhook secret"),
    "grace": ("ใช้ของเดิมต่อได้ (ชั่วโมง)", "Old one keeps working (hours)"), "disable": ("ระงับ", "Disable"),
    "enable": ("เปิดใช้งาน", "Enable"), "deliveries": ("การส่ง webhook", "Webhook deliveries"),
    "replay": ("ส่งใหม่", "Replay"), "replay_all": ("ส่งรายการที่ล้มเหลวทั้งหมดใหม่", "Replay all dead letters"),
    "message": ("ข้อความ", "Message"), "state": ("สถานะ", "State"), "attempts": ("ครั้งที่ส่ง", "Attempts"),
    "last_status": ("ผลล่าสุด", "Last status"), "error": ("ข้อผิดพลาด", "Error"), "when": ("เวลา", "When"),
    "latency": ("เวลาตอบ (ms)", "Latency (ms)"), "shown_once": ("แสดงครั้งเดียว เก็บไว้ให้ดี", "Shown once: keep it safe"),
    "api_key": ("API key", "API key"), "secret": ("Webhook secret", "Webhook secret"),
    "panel": ("การแจ้งเตือนพันธมิตร", "Partner alerts"), "no_alerts": ("ยังไม่ได้แจ้งพันธมิตร", "No partner was alerted"),
    "feedback": ("ผลจากพันธมิตร", "Partner feedback"), "verification": ("การตรวจสอบ", "Verification"),
    "fb.removed": ("ลบประกาศแล้ว", "removed"), "fb.seller_warned": ("เตือนผู้ขายแล้ว", "seller warned"),
    "fb.rejected": ("ปฏิเสธ", "rejected"), "v.pending": ("รอตรวจว่าถูกลบจริง", "awaiting check"),
    "v.gone": ("ยืนยันว่าถูกลบแล้ว", "verified gone"), "v.still_listed": ("ยังพบประกาศอยู่", "still listed"),
    "v.unverified": ("ตรวจสอบไม่ได้", "could not verify"), "st.open": ("เปิดอยู่", "open"),
    "st.retracted": ("ถอนแล้ว", "retracted"), "basis.automatic": ("อัตโนมัติ", "automatic"),
    "basis.confirmed": ("เจ้าหน้าที่ยืนยัน", "officer-confirmed"), "all_partners": ("ทุกพันธมิตร", "all partners"),
    "none": ("ไม่มี", "none"), "back": ("← พันธมิตร", "← Partners"), "created": ("สร้างแล้ว", "created"),
    "added": ("เพิ่มพันธมิตรแล้ว", "Partner added"), "saved": ("บันทึกแล้ว", "Saved"),
    "replayed": ("นำกลับเข้าคิวแล้ว", "queued again"), "expires": ("หมดอายุ", "expires"),
    "last_used": ("ใช้ล่าสุด", "last used"),
    "kind": ("ประเภท", "Kind"), "operates": ("ตลาดที่ดูแล (แพลตฟอร์ม)", "Marketplaces it operates (platform)"),
    "kind.etda": ("สพธอ. (ETDA): รับเรื่องที่ส่งต่อถึง ETDA", "ETDA: receives escalations to ETDA"),
    "kind.platform": ("แพลตฟอร์ม: รับเรื่องที่ส่งต่อถึงแพลตฟอร์มของตลาดที่ดูแล",
                      "Platform: receives escalations to the platform of the marketplaces it operates"),
    "kind.other": ("อื่น ๆ: การส่งต่อนับเป็นการยืนยัน", "Other: an escalation counts as a confirmation"),
    "st.resolved": ("ปิดแล้ว (ประกาศถูกลบ)", "resolved (listing gone)"), "basis.escalated": ("ส่งต่อถึงพันธมิตรนี้", "escalated to them"),
}


def _text(request: Request):
    i = 0 if lang_of(request) == "th" else 1

    def a(key: str) -> str:
        v = TEXT.get(key)
        return v[i] if v else key

    return a


def _list(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.replace("\n", ",").split(",") if x.strip())


def _partner_or_404(svc: Any, pid: str) -> Any:
    p = svc.store.partner(pid)
    if p is None:
        raise HTTPException(404, "no such partner")
    return p


def _page(request: Request, name: str, ctx: dict[str, Any], status_code: int = 200) -> Any:
    return render(request, name, {"a": _text(request), "scopes_all": list(SCOPES), "flagged": sorted(FLAGGED),
                                  "kinds": list(PARTNER_KINDS), **ctx},
                  status_code=status_code)


@router.get("/partners", response_class=HTMLResponse)
def partners_page(request: Request, user: Annotated[Any, Depends(partner_admin)], msg: str = "") -> Any:
    svc = alert_service(request)
    rows = [(p, svc.store.delivery_stats(p.id), len(svc.store.open_alerts(p.id))) for p in svc.store.partners()]
    return _page(request, "partners.html", {"rows": rows, "msg": msg,
                                            "default_risk": svc.settings.alerts.min_risk})


PARTNER_COLUMNS = ("id", "name", "kind", "operates", "enabled", "paused_until", "marketplaces", "standards", "verdicts",
                   "min_risk", "confirmed_only", "scopes", "webhook_url", "email", "digest", "open_alerts", "pending",
                   "delivered", "dead", "latency_p95_ms", "created_at")
DELIVERY_COLUMNS = ("msg_id", "partner_id", "type", "key", "seq", "state", "attempts", "last_status", "last_error",
                    "created_at", "first_at", "last_at", "next_at", "delivered_at", "dead_at")


@router.get("/partners/export.{fmt}")
def partners_export(request: Request, fmt: str, user: Annotated[Any, Depends(partner_admin)]) -> Any:
    """The partners table as CSV or XLSX (no key, no secret: what the page shows)."""
    from review.pages import table_response

    svc = alert_service(request)

    def rows():
        for p in svc.store.partners():
            st, f = svc.store.delivery_stats(p.id), p.filters
            yield {"id": p.id, "name": p.name, "kind": p.kind, "operates": " ".join(p.operates), "enabled": p.enabled,
                   "paused_until": p.paused_until, "marketplaces": " ".join(f.marketplaces), "standards": " ".join(f.standards),
                   "verdicts": " ".join(f.verdicts), "min_risk": f.min_risk, "confirmed_only": f.confirmed_only,
                   "scopes": " ".join(p.scopes), "webhook_url": p.webhook_url, "email": p.email, "digest": p.digest,
                   "open_alerts": len(svc.store.open_alerts(p.id)), "pending": st.get("pending", 0),
                   "delivered": st.get("delivered", 0), "dead": st.get("dead", 0),
                   "latency_p95_ms": st.get("latency_p95_ms"), "created_at": p.created_at}

    return table_response(fmt, "partners", rows(), PARTNER_COLUMNS)


@router.get("/partners/deliveries/export.{fmt}")
def deliveries_export(request: Request, fmt: str, user: Annotated[Any, Depends(partner_admin)], state: str = "dead",
                      partner: str = "", limit: int = 100_000) -> Any:
    """The deliveries list under the page's filters (state, partner) as CSV or XLSX, newest first."""
    from review.pages import table_response

    if state not in ("pending", "delivered", "dead", ""):
        raise HTTPException(400, "state: pending, delivered or dead")
    svc = alert_service(request)
    rows = [dict(r) for r in svc.store.deliveries(partner or None, state or None, max(1, min(limit, 1_000_000)))]
    return table_response(fmt, "deliveries", rows, DELIVERY_COLUMNS)


def _actor(request: Request, user: Any) -> manage.Actor:
    return manage.Actor(user, request.client.host if request.client else None, request.app.state.appdb)


def _kind_fields(kind: str, operates: str) -> tuple[str, tuple[str, ...]]:
    k = kind.strip() or "other"
    return k, _list(operates) if k == "platform" else ()


@router.post("/partners", response_class=HTMLResponse)
def partners_add(request: Request, user: Annotated[Any, Depends(partner_admin)],
                 partner_id: Annotated[str, Form(max_length=32)], name: Annotated[str, Form(max_length=200)] = "",
                 webhook_url: Annotated[str, Form(max_length=2000)] = "", email: Annotated[str, Form(max_length=320)] = "",
                 digest: Annotated[bool, Form()] = False, marketplaces: Annotated[str, Form(max_length=2000)] = "",
                 standards: Annotated[str, Form(max_length=4000)] = "", verdicts: Annotated[list[str], Form()] = [],  # noqa: B006
                 min_risk: Annotated[int, Form(ge=0, le=100)] = 70, confirmed_only: Annotated[bool, Form()] = False,
                 scopes: Annotated[list[str], Form()] = [],  # noqa: B006
                 kind: Annotated[str, Form(max_length=20)] = "other", operates: Annotated[str, Form(max_length=2000)] = "",
                 backfill: Annotated[bool, Form()] = False) -> Any:
    svc = alert_service(request)
    k, ops = _kind_fields(kind, operates)
    try:
        c, _ = manage.add_partner(svc, _actor(request, user), partner_id, name, scopes=tuple(scopes) or DEFAULT_SCOPES,
                                  filters=Filters(_list(marketplaces), _list(standards), tuple(verdicts), min_risk, confirmed_only),
                                  webhook_url=webhook_url.strip() or None, email=email.strip() or None, digest=digest,
                                  kind=k, operates=ops, concurrency=None, backfill=backfill)
    except PartnerError as e:
        rows = [(p, svc.store.delivery_stats(p.id), len(svc.store.open_alerts(p.id))) for p in svc.store.partners()]
        return _page(request, "partners.html", {"rows": rows, "error": str(e), "default_risk": min_risk}, status_code=400)
    return _detail(request, svc, c.partner.id, {"api_key": c.api_key, "secret": c.webhook_secret,
                                                "msg": _text(request)("added")})


def _detail(request: Request, svc: Any, pid: str, extra: dict[str, Any] | None = None, status_code: int = 200) -> Any:
    p = _partner_or_404(svc, pid)
    return _page(request, "partner.html", {
        "p": p, "stats": svc.store.delivery_stats(pid), "keys": svc.store.keys(pid), "open": len(svc.store.open_alerts(pid)),
        "deliveries": svc.store.deliveries(pid, None, 50), "dead": svc.store.deliveries(pid, "dead", 200),
        **(extra or {})}, status_code=status_code)


@router.get("/partners/deliveries", response_class=HTMLResponse)
def deliveries_page(request: Request, user: Annotated[Any, Depends(partner_admin)], state: str = "dead",
                    partner: str = "") -> Any:
    svc = alert_service(request)
    if state not in ("pending", "delivered", "dead", ""):
        raise HTTPException(400, "state: pending, delivered or dead")
    return _page(request, "deliveries.html", {"rows": svc.store.deliveries(partner or None, state or None, 500),
                                              "state": state, "partner": partner, "partners": svc.store.partners()})


@router.get("/partners/deliveries/{message_id}", response_class=HTMLResponse)
def delivery_page(request: Request, message_id: int, user: Annotated[Any, Depends(partner_admin)]) -> Any:
    svc = alert_service(request)
    try:
        d = manage.delivery(svc, message_id)
    except manage.NotFound:
        raise HTTPException(404, "no such delivery") from None
    return _page(request, "delivery.html", {"d": d, "attempts": d["attempts_detail"]})


@router.get("/partners/{pid}", response_class=HTMLResponse)
def partner_page(request: Request, pid: str, user: Annotated[Any, Depends(partner_admin)], msg: str = "") -> Any:
    return _detail(request, alert_service(request), pid, {"msg": msg})


@router.post("/partners/{pid}", response_class=HTMLResponse)
def partner_save(request: Request, pid: str, user: Annotated[Any, Depends(partner_admin)],
                 name: Annotated[str, Form(max_length=200)] = "", webhook_url: Annotated[str, Form(max_length=2000)] = "",
                 email: Annotated[str, Form(max_length=320)] = "", digest: Annotated[bool, Form()] = False,
                 marketplaces: Annotated[str, Form(max_length=2000)] = "", standards: Annotated[str, Form(max_length=4000)] = "",
                 verdicts: Annotated[list[str], Form()] = [],  # noqa: B006
                 min_risk: Annotated[int, Form(ge=0, le=100)] = 70, confirmed_only: Annotated[bool, Form()] = False,
                 scopes: Annotated[list[str], Form()] = [],  # noqa: B006
                 kind: Annotated[str, Form(max_length=20)] = "", operates: Annotated[str, Form(max_length=2000)] = "",
                 concurrency: Annotated[int, Form(ge=1, le=64)] = 4) -> Any:
    svc = alert_service(request)
    before = _partner_or_404(svc, pid)
    k, ops = _kind_fields(kind or before.kind, operates)
    f = Filters(_list(marketplaces), _list(standards), tuple(verdicts), min_risk, confirmed_only)
    try:
        _, secret, _ = manage.update_partner(svc, _actor(request, user), pid, name=name.strip() or None,
                                             webhook_url=webhook_url.strip(), email=email.strip(), digest=digest, filters=f,
                                             scopes=tuple(scopes) or before.scopes, concurrency=concurrency, kind=k,
                                             operates=ops)
    except PartnerError as e:
        return _detail(request, svc, pid, {"error": str(e)}, status_code=400)
    return _detail(request, svc, pid, {"msg": _text(request)("saved"), "secret": secret})


@router.post("/partners/{pid}/rotate-key", response_class=HTMLResponse)
def rotate_key(request: Request, pid: str, user: Annotated[Any, Depends(partner_admin)],
               grace_hours: Annotated[float, Form(ge=0, le=24 * 90)] = 24) -> Any:
    svc = alert_service(request)
    _partner_or_404(svc, pid)
    key = manage.rotate_key(svc, _actor(request, user), pid, grace_hours)
    return _detail(request, svc, pid, {"api_key": key})


@router.post("/partners/{pid}/rotate-secret", response_class=HTMLResponse)
def rotate_secret(request: Request, pid: str, user: Annotated[Any, Depends(partner_admin)],
                  grace_hours: Annotated[float, Form(ge=0, le=24 * 90)] = 24) -> Any:
    svc = alert_service(request)
    _partner_or_404(svc, pid)
    try:
        secret = manage.rotate_secret(svc, _actor(request, user), pid, grace_hours)
    except PartnerError as e:
        return _detail(request, svc, pid, {"error": str(e)}, status_code=400)
    return _detail(request, svc, pid, {"secret": secret})


@router.post("/partners/{pid}/enabled")
def set_enabled(request: Request, pid: str, user: Annotated[Any, Depends(partner_admin)],
                enabled: Annotated[bool, Form()] = False) -> Any:
    svc = alert_service(request)
    _partner_or_404(svc, pid)
    manage.set_enabled(svc, _actor(request, user), pid, enabled)
    return RedirectResponse(f"/partners/{pid}", status_code=303)


@router.post("/partners/{pid}/replay")
def replay(request: Request, pid: str, user: Annotated[Any, Depends(partner_admin)],
           msg_id: Annotated[str, Form(max_length=64)] = "", back: Annotated[str, Form(max_length=20)] = "") -> Any:
    svc = alert_service(request)
    _partner_or_404(svc, pid)
    n = manage.replay(svc, _actor(request, user), pid, [msg_id] if msg_id else None)
    from urllib.parse import quote

    where = "/partners/deliveries?state=dead" if back == "deliveries" else f"/partners/{pid}"
    return RedirectResponse(f"{where}{'&' if '?' in where else '?'}msg={quote(f'{n} ' + _text(request)('replayed'))}",
                            status_code=303)


# ---- the panel on the listing page ----------------------------------------------------------------
def partner_panel(request: Request, key: str) -> Markup:
    """The partner alerts and feedback of one listing, for the review app's listing page."""
    svc = alert_service(request)
    alerts = []
    for a in svc.store.alerts_for_listing(key):
        p = svc.store.partner(a["partner_id"])
        alerts.append({"partner": p.name if p else a["partner_id"], "pid": a["partner_id"], "a": a,
                       "feedback": svc.store.feedback(alert_id=a["id"])})
    ctx = {"alerts": alerts, "a": _text(request), **_base_ctx(request)}
    return Markup(templates.env.get_template("partner_panel.html").render(ctx))


def _base_ctx(request: Request) -> dict[str, Any]:
    from review.web import context

    return context(request)


templates.env.globals["partner_panel"] = partner_panel
