"""The listing page's pictures panel (review/templates/_pictures.html): each kept picture with the
places where a claim was read drawn over it, and the other listings that use the same photo.

Everything is computed here, on the server: the template draws an SVG whose rectangles come from the
boxes stored with the verdict (no script, no inline style: the app's CSP forbids both). Pictures are
shown from the evidence (the app serves only its own files); a picture that was not kept (the listing
was not flagged when it was seen) is named by its URL instead.
"""

from __future__ import annotations

from typing import Any

WORDS = {
    "th": {"title": "ภาพของประกาศ", "picture": "ภาพที่", "not_kept": "ไม่ได้เก็บภาพนี้ไว้เป็นหลักฐาน",
           "open": "เปิดภาพต้นฉบับ", "same": "ภาพเดียวกันในประกาศอื่น", "distance": "ต่างกัน", "bits": "บิต",
           "tis": "มอก.", "licence": "ใบอนุญาต", "qr": "คิวอาร์โค้ด", "ocr": "ข้อความในภาพ", "none": "ไม่พบการอ้างในภาพนี้",
           "qr_elsewhere": "คิวอาร์โค้ดชี้ไปที่", "qr_lookalike": "คิวอาร์โค้ดเลียนแบบ สมอ.:", "qr_tisi": "คิวอาร์โค้ด สมอ.:",
           "vague": "อ้างว่ามี มอก."},
    "en": {"title": "The listing's pictures", "picture": "Picture", "not_kept": "this picture was not kept as evidence",
           "open": "open the original", "same": "The same photo in other listings", "distance": "differs by", "bits": "bits",
           "tis": "TIS", "licence": "licence", "qr": "QR code", "ocr": "printed", "none": "no claim read in this picture",
           "qr_elsewhere": "QR code pointing to", "qr_lookalike": "QR code imitating TISI:", "qr_tisi": "TISI QR code:",
           "vague": "claims a TIS mark"},
}


def _label(c: dict[str, Any], w: dict[str, str]) -> str:
    kind = c.get("kind", "")
    if kind in ("tis", "licence"):
        return f"{w[kind]} {c.get('value', '')} ({w['qr'] if c.get('source') == 'qr' else w['ocr']})"
    if kind in ("qr_elsewhere", "qr_lookalike", "qr_tisi"):
        return f"{w[kind]} {c.get('value', '')}"
    return w.get(kind, kind)


def _box(c: dict[str, Any], width: int, height: int) -> dict[str, int] | None:
    b = c.get("box")
    if not (isinstance(b, list | tuple) and len(b) == 4):
        return None
    try:
        x0, y0, x1, y1 = (int(v) for v in b)
    except (TypeError, ValueError):
        return None
    x0, x1 = max(0, min(x0, width)), max(0, min(x1, width))
    y0, y1 = max(0, min(y0, height)), max(0, min(y1, height))
    if x1 <= x0 or y1 <= y0:
        return None
    pad = max(2, (y1 - y0) // 6)
    x0, y0 = max(0, x0 - pad), max(0, y0 - pad)
    x1, y1 = min(width, x1 + pad), min(height, y1 + pad)
    return {"x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0}


def picture_panel(store: Any, key: str, evidence: list[dict[str, Any]], claims: list[dict[str, Any]],
                  lang: str = "th", max_distance: int = 4) -> dict[str, Any]:
    """What the pictures panel shows: {"words": ..., "pictures": [{index, eid, url, width, height,
    stroke, boxes: [{x, y, w, h, label}], labels, same: [...]}]}; no pictures: an empty list."""
    w = WORDS.get(lang, WORDS["en"])
    kept: dict[int, tuple[int, dict[str, Any]]] = {}  # picture index -> (evidence id, newest capture)
    for eid, e in enumerate(evidence):
        kind = e.get("kind", "")
        if kind.startswith("image:") and kind[6:].isdigit():
            n = int(kind[6:])
            if n not in kept or e.get("created_at", "") >= kept[n][1].get("created_at", ""):
                kept[n] = (eid, e)
    stored = {im["index"]: im for im in (store.images_of(key) if hasattr(store, "images_of") else [])}
    by_image: dict[int, list[dict[str, Any]]] = {}
    for c in claims:
        where = str(c.get("where", ""))
        if where.startswith("image:") and where[6:].isdigit():
            by_image.setdefault(int(where[6:]), []).append(c)
    same: dict[int, list[dict[str, Any]]] = {}
    if hasattr(store, "same_images") and stored:
        for s in store.same_images(key, max_distance=max_distance, limit=60):
            same.setdefault(s["image"], []).append(s)
    pictures = []
    for n in sorted(set(kept) | set(stored) | set(by_image)):
        cs = by_image.get(n, [])
        size = next((c.get("image_size") for c in cs if c.get("image_size")), None)
        width = int((size or [0, 0])[0] or stored.get(n, {}).get("width") or 0)
        height = int((size or [0, 0])[1] or stored.get(n, {}).get("height") or 0)
        boxes = []
        for c in cs:
            b = _box(c, width, height) if width and height else None
            if b is not None:
                boxes.append({**b, "label": _label(c, w)})
        url = stored.get(n, {}).get("url") or ""
        pictures.append({
            "index": n, "eid": kept[n][0] if n in kept else None,
            "url": url if url.startswith(("http://", "https://")) else "",
            "width": width, "height": height, "stroke": max(2, min(width, height) // 150) if width else 2,
            "boxes": boxes, "labels": [_label(c, w) for c in cs], "same": same.get(n, []),
        })
    return {"words": w, "pictures": pictures}
