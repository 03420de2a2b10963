"""The listing store as JSON, for investigators' scripts and other systems (included in the review app).

    GET /api/v1/search?q=ปลั๊กพ่วง&verdict=unlicensed&marketplace=shopee    search with facets and "why"
    GET /api/v1/history/{marketplace:item_id}                              a listing's timeline
    GET /api/v1/sellers?q=...                                              seller accounts across marketplaces
    GET /api/v1/seller-history/{marketplace}/{seller_id}                   what happened to their listings

Officers and investigators (review app accounts or API tokens) may read them. The parameters are
the same as `tiswatch search` (`from`/`to`: a day YYYY-MM-DD in Asia/Bangkok or an ISO date-time).
Listing text in the answers is seller-written data: escape it wherever it is shown.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from listings import timeline as T
from listings.model import VERDICTS
from listings.store import REVIEW_STATUSES, SEARCH_ORDERS, SearchQuery
from review.auth import INTERNAL, require_role

router = APIRouter(prefix="/api/v1", tags=["listings"])
reader = require_role(*INTERNAL)


def _bad(msg: str) -> HTTPException:
    return HTTPException(400, msg)


@router.get("/search", summary="Search listings: Thai words and substrings, filters, facets, why each matched")
def search(request: Request, _user: Any = Depends(reader),
           q: str = Query("", max_length=500, description="words to find; every one must match (a word, or 3+ letters inside one)"),
           seller: str | None = Query(None, max_length=200, description="a seller id, or part of a seller's name"),
           marketplace: str | None = Query(None, max_length=64), verdict: str | None = Query(None),
           tis: str | None = Query(None, max_length=40, description="a TIS standard, any edition: 2432 or 2432-2555"),
           date_from: str | None = Query(None, alias="from", description="seen on or after (YYYY-MM-DD in Bangkok, or ISO time)"),
           date_to: str | None = Query(None, alias="to", description="seen on or before"),
           price_min: float | None = Query(None), price_max: float | None = Query(None),
           flagged: bool = Query(False, description="only unlicensed, mislabeled, needs_review"),
           status: str | None = Query(None, description="active or delisted"),
           review_status: str | None = Query(None), order: str = Query("relevance", description=", ".join(SEARCH_ORDERS)),
           limit: int = Query(50, ge=0, le=500), offset: int = Query(0, ge=0, le=100_000),
           facets: bool = Query(True)) -> dict[str, Any]:
    if verdict and verdict not in VERDICTS:
        raise _bad(f"verdict: one of {', '.join(VERDICTS)}")
    if order not in SEARCH_ORDERS:
        raise _bad(f"order: one of {', '.join(SEARCH_ORDERS)}")
    if status and status not in ("active", "delisted"):
        raise _bad("status: active or delisted")
    if review_status and review_status not in REVIEW_STATUSES:
        raise _bad(f"review_status: one of {', '.join(REVIEW_STATUSES)}")
    try:
        sq = SearchQuery(text=q, seller=seller, marketplace=marketplace, verdict=verdict, tis=tis,
                         date_from=T.parse_when(date_from), date_to=T.parse_when(date_to, end=True), price_min=price_min,
                         price_max=price_max, flagged_only=flagged, status=status, review_status=review_status, order=order,
                         limit=limit, offset=offset, facets=facets)
    except ValueError as e:
        raise _bad(str(e)) from None
    r = request.app.state.store.search(sq)
    return {"total": r.total, "terms": r.terms, "limit": limit, "offset": offset,
            "facets": {k: [[v, n] for v, n in vals] for k, vals in r.facets.items()}, "hits": r.hits}


@router.get("/history/{key:path}", summary="A listing's timeline: views, changes, verdicts, evidence")
def history(request: Request, key: str, _user: Any = Depends(reader)) -> dict[str, Any]:
    st = request.app.state.store
    keys = st.resolve(key)
    if len(keys) != 1:
        raise HTTPException(404 if not keys else 409, "no such listing" if not keys else f"{len(keys)} listings: {', '.join(keys[:10])}")
    d = st.get(keys[0])
    h = st.history(keys[0])
    ev = st.evidence(keys[0])
    return {"listing": d, "timeline": T.listing_timeline(d, h, ev), "history": h, "evidence": ev}


@router.get("/sellers", summary="Seller accounts across marketplaces matching an id, a shop id or part of a name")
def sellers(request: Request, q: str = Query(..., min_length=1, max_length=200), limit: int = Query(20, ge=1, le=500),
            _user: Any = Depends(reader)) -> dict[str, Any]:
    found = request.app.state.store.sellers(q, limit=limit)
    return {"accounts": found, "summary": T.seller_summary(found)}


@router.get("/seller-history/{marketplace}/{seller_id:path}", summary="What happened to a seller's listings, oldest first")
def seller_history(request: Request, marketplace: str, seller_id: str, limit: int = Query(1000, ge=1, le=10_000),
                   _user: Any = Depends(reader)) -> dict[str, Any]:
    st = request.app.state.store
    p = st.seller(marketplace, seller_id)
    if p is None:
        raise HTTPException(404, "no such seller")
    p.pop("items", None)
    return {"seller": p, "timeline": st.seller_history(marketplace, seller_id, limit)}
