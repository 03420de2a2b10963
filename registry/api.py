"""The licence check API for platforms: `GET /api/v1/licences/check`.

Platforms must check a listing against TISI's licence database before it goes live. The check reads
an in-memory index of the registry built once per app and rebuilt when the registry changes (an
import bumps `RegistryStore.version()`, which is read on each request: one small SQLite query).

Access: open by default. With `[registry] check_requires_key = true` every route of this router needs
a partner API key holding the `licences:check` scope (`tiswatch partners add NAME --scope
licences:check`), sent as `X-API-Key: twk_…` or `Authorization: Bearer twk_…`; the key check is the
alerts package's `require_partner`. Both headers are declared already, so the OpenAPI document and
clients stay the same when keys are switched on. An app can also replace the dependency
`licence_check_access` (`app.dependency_overrides`) with its own.
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from registry.check import LicenceCheck, NothingToCheck, check_licence
from registry.index import Registry

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="partner key",
                              description="A partner API key (scope licences:check). Needed only when the "
                                          "server sets [registry] check_requires_key.")
bearer = HTTPBearer(auto_error=False, scheme_name="partner key (bearer)",
                    description="The same partner key as `Authorization: Bearer twk_…`.")


def licence_check_access(
    request: Request,
    api_key: Annotated[str | None, Security(api_key_header)] = None,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
) -> object | None:
    """Who may call the licence check: anyone, unless the settings require a partner key; then the
    partner (401 without a valid key, 403 without the licences:check scope)."""
    settings = request.app.state.settings
    if not settings.registry.check_requires_key:
        return None
    from alerts.api import require_partner

    authorization = f"Bearer {credentials.credentials}" if credentials else None
    return require_partner("licences:check")(request, authorization, api_key)


router = APIRouter(prefix="/api/v1", tags=["licence check"], dependencies=[Depends(licence_check_access)])


class RegistryCache:
    """One Registry per app, rebuilt when the stored registry's version (or the catalogue) changes.

    Readers never wait for a rebuild they do not need: the version check is a single query, and only
    the request that finds a new version builds the new index (others keep using the old one meanwhile
    unless there is none yet)."""

    def __init__(self, settings) -> None:
        from registry.store import RegistryStore

        self.settings = settings
        self.store = RegistryStore(settings.registry_db)
        self._lock = threading.Lock()
        self._build = threading.Lock()
        self.registry: Registry | None = None
        self.count = 0

    def version(self) -> str:
        with self._lock:
            return self.store.version()

    def get(self) -> Registry:
        v = self.version()
        reg = self.registry
        if reg is not None and reg.version == v:
            return reg
        if reg is not None and not self._build.acquire(blocking=False):
            return reg  # another request is rebuilding; answer from the previous index meanwhile
        if reg is None:
            self._build.acquire()
        try:
            if self.registry is None or self.registry.version != v:
                from registry.catalogue import load_catalogue

                cat = load_catalogue(self.settings.catalogue_path)
                with self._lock:
                    self.registry = Registry.from_store(self.store, cat)
                    self.count = len(self.registry)
            return self.registry
        finally:
            self._build.release()

    def close(self) -> None:
        self.store.close()


def registry_cache(request: Request) -> RegistryCache:
    """The app's RegistryCache, made on first use (settings from app.state.settings)."""
    cache = getattr(request.app.state, "registry_cache", None)
    if cache is None:
        with _create_lock:
            cache = getattr(request.app.state, "registry_cache", None)
            if cache is None:
                cache = RegistryCache(request.app.state.settings)
                request.app.state.registry_cache = cache
    return cache


_create_lock = threading.Lock()


def current_registry(cache: Annotated[RegistryCache, Depends(registry_cache)]) -> Registry:
    reg = cache.get()
    if len(reg) == 0:
        raise HTTPException(503, "the licence registry is empty: an administrator must import TISI's licence "
                                 "file first (tiswatch registry import PATH)")
    return reg


class Problem(BaseModel):
    detail: str = Field(examples=["give tis_no, licence_no or both"])


@router.get(
    "/licences/check", response_model=LicenceCheck, summary="Is a TIS claim backed by a licence?",
    responses={422: {"model": Problem, "description": "neither tis_no nor licence_no was given"},
               503: {"model": Problem, "description": "the registry has not been loaded yet"}},
)
def check(
    registry: Annotated[Registry, Depends(current_registry)],
    tis_no: Annotated[str | None, Query(max_length=100, description="the TIS (มอก.) number the listing shows, any "
                                        "spelling: `2879-2560`, `มอก. 2879-2560`, Thai digits, a CE year",
                                        examples=["2879-2560"])] = None,
    licence_no: Annotated[str | None, Query(max_length=100, description="the licence number the listing shows",
                                            examples=["ท5137-2/10"])] = None,
    brand: Annotated[str | None, Query(max_length=200, description="the brand, Latin or Thai script",
                                       examples=["Eloop"])] = None,
    model: Annotated[str | None, Query(max_length=200, description="the model code; case, spaces and hyphens "
                                       "do not matter", examples=["E-29"])] = None,
    on: Annotated[date | None, Query(description="check as of this day (ISO date) instead of the registry as "
                                     "it stands: was the licence active then?", examples=["2025-06-01"])] = None,
) -> LicenceCheck:
    """Whether the claim is backed: an **active** licence under the standard (any edition of it) that
    carries the brand, and lists the model when the licence lists models and a model is given.

    Give `licence_no` to check a licence the listing names, or `tis_no` and `brand` to find one.
    The answer names the licence, its status and dates, whether brand and model are covered, the
    standard's Thai and English names, and, when the claim is not backed, why (`reasons` as codes,
    `messages_th` / `messages_en` as sentences)."""
    try:
        return check_licence(registry, tis_no, licence_no, brand, model, on)
    except NothingToCheck as e:
        raise HTTPException(422, str(e)) from None


class RegistryStatus(BaseModel):
    version: str = Field(description="changes whenever an import changes the registry", examples=["r12"])
    licences: int = Field(description="licences in the registry", examples=[29183])
    last_import: str | None = Field(None, description="the day the newest imported file describes", examples=["2025-11-30"])
    catalogue: str = Field(description="the standards catalogue's version", examples=["2025-11"])
    standards: int = Field(description="compulsory standards in the catalogue", examples=[149])


@router.get("/licences/registry", response_model=RegistryStatus, summary="How fresh the licence registry is")
def registry_status(cache: Annotated[RegistryCache, Depends(registry_cache)]) -> RegistryStatus:
    reg = cache.get()
    with cache._lock:
        last = cache.store.newest_as_of()
    return RegistryStatus(version=reg.version, licences=len(reg), last_import=last,
                          catalogue=reg.catalogue.version, standards=len(reg.catalogue.standards))
