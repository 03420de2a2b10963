"""The crawl's image stage: a Scrapy item pipeline placed between validation and the check.

For each listing it downloads the first `[images] max_images` pictures through Scrapy's downloader
(robots.txt, throttling, retries and per-domain limits apply as to pages; size and time are capped per
request), refuses what is not an image or is too large, reads QR codes and perceptual hashes of every
picture and the printed text of the `ocr_images` pictures most likely to carry some, and hands the
claims to the check (`item["_image_claims"]`, see crawlers/pipelines.py CheckPipeline). Readings are
cached by SHA-256 (images.sqlite), so a photo re-used by many listings, or seen again next crawl, is read
once. The pictures' bytes travel with the item to the evidence stage, which keeps them for flagged
listings (`_evidence_files`), and their hashes go to the listing store (re-used photos).

A listing without pictures passes through untouched: no download, no thread, no OCR.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from crawlers.context import context_for

log = logging.getLogger(__name__)
_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}


@dataclass
class Fetched:
    index: int
    url: str
    data: bytes | None = None
    why: str | None = None  # why the picture was not read


def choose_for_ocr(readings: list[Any], budget: int, min_score: float) -> list[Any]:
    """The pictures worth OCR, most text-like first, at most `budget`. Pictures already read by OCR
    (from the cache) cost nothing and are not counted; a picture whose TISI licence QR code was read
    is not read again (the code names the licence exactly; the number printed beside it is that
    licence's standard). Pure."""
    from matching.image_claims import read_qr

    def has_licence_qr(r) -> bool:
        return any(read_qr(q.payload).kind == "tisi_licence" for q in r.findings.qr)

    todo = [r for r in readings if not r.ocr_done and r.text_score >= min_score and not has_licence_qr(r)]
    todo.sort(key=lambda r: (-r.text_score, r.findings.index))
    return todo[:max(0, budget)]


class ImagePipeline:
    def __init__(self, crawler):
        self.crawler = crawler
        self._cache = None
        self._cpu: asyncio.Semaphore | None = None
        self._listings: asyncio.Semaphore | None = None
        self._ocr_missing_logged = False

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    @property
    def ctx(self):
        return context_for(self.crawler)

    @property
    def conf(self):
        return self.ctx.settings.images

    def _options(self):
        from images.reader import ReadOptions

        c = self.conf
        return ReadOptions(qr=c.qr, ocr=c.ocr, languages=c.ocr_languages, preprocess=c.preprocess,
                           min_conf=c.ocr_min_conf, timeout=c.ocr_timeout, max_pixels=c.max_pixels)

    @property
    def cache(self):
        if self._cache is None:
            from images.cache import ReadingCache

            self._cache = ReadingCache(self.ctx.settings.images_db)
        return self._cache

    def close_spider(self, spider=None) -> None:
        if self._cache is not None:
            self._cache.close()

    def _stat(self, name: str, n: float = 1) -> None:
        self.crawler.stats.inc_value(f"tiswatch/images/{name}", n)

    # ---- the stage -----------------------------------------------------------------------------
    async def process_item(self, item: dict[str, Any], spider=None) -> dict[str, Any]:
        listing = item.get("_listing")
        conf = self.conf
        if listing is None or not conf.enabled or not listing.images or conf.max_images == 0:
            return item
        if self._listings is None:
            self._listings = asyncio.Semaphore(4)  # listings whose pictures are in memory at once
            self._cpu = asyncio.Semaphore(conf.workers)
        t0 = time.perf_counter()
        async with self._listings:
            try:
                await self._read_listing(item, listing)
            except Exception as e:  # a failure here must never lose the listing: it is checked on its text
                self._stat("errors")
                log.warning("image stage failed for %s: %s: %s", listing.url or listing.key, type(e).__name__, e)
        self._stat("seconds", time.perf_counter() - t0)
        return item

    async def _read_listing(self, item: dict[str, Any], listing) -> None:
        from matching.image_claims import claims_from_findings

        conf = self.conf
        opts = self._options()
        if opts.ocr and not self._tesseract_ok():
            opts.ocr = False
        urls = list(dict.fromkeys(listing.images))[:conf.max_images]
        self._stat("listings")
        fetched = await asyncio.gather(*(self._fetch(i, u, listing.url) for i, u in enumerate(urls, 1)))
        readings, decoded, records = [], {}, []
        for f in fetched:
            rec: dict[str, Any] = {"index": f.index, "url": f.url}
            records.append(rec)
            if f.data is None:
                rec["refused"] = f.why
                continue
            r, d = await self._look(f, opts)
            if r is None:
                rec["refused"] = d
                continue
            readings.append(r)
            if d is not None:
                decoded[r.findings.index] = d
            rec.update(sha256=r.sha256, phash=r.phash, width=r.width, height=r.height, format=r.format, size=len(f.data))
        if opts.ocr:
            for r in choose_for_ocr(readings, conf.ocr_images, conf.ocr_min_score):
                await self._ocr(r, decoded.get(r.findings.index), next(f for f in fetched if f.index == r.findings.index), opts)
        vague = self.ctx.registry.catalogue.vague_claims
        claims = claims_from_findings([r.findings for r in readings], vague, conf.ocr_min_conf)
        by_index = {r.findings.index: r for r in readings}
        for rec in records:
            r = by_index.get(rec["index"])
            if r is not None:
                rec["ocr"] = r.ocr_done
                rec["qr"] = [q.payload for q in r.findings.qr]
                rec["claims"] = [{"kind": c.kind, "value": c.value, "box": list(c.box), "source": c.source}
                                 for c in claims if c.where == f"image:{rec['index']}"]
        item["_image_claims"] = claims
        item["_images"] = records
        self._stat("claims", len([c for c in claims if c.kind in ("tis", "licence")]))
        if conf.keep:
            files = item.setdefault("_evidence_files", {})
            for f in fetched:
                r = by_index.get(f.index)
                if f.data is not None and r is not None:
                    files[f"image:{f.index}"] = (f"image-{f.index:02d}.{_EXT.get(r.format, 'img')}", f.data)
        item.setdefault("_evidence_extra", {})["images"] = records
        store = self.ctx.store
        if hasattr(store, "add_images") and readings:
            store.add_images(listing.key, [rec for rec in records if "phash" in rec], listing.observed_at)

    def _tesseract_ok(self) -> bool:
        from images.reader import tesseract_available

        if tesseract_available(self.conf.ocr_languages):
            return True
        if not self._ocr_missing_logged:
            log.warning("tesseract or its %r model is not installed: pictures are read for QR codes only "
                        "(Debian: apt install tesseract-ocr tesseract-ocr-tha)", self.conf.ocr_languages)
            self._ocr_missing_logged = True
        return False

    async def _fetch(self, index: int, url: str, referer: str | None) -> Fetched:
        from scrapy import Request

        from images.fetch import refusal

        conf = self.conf
        if not url.startswith(("http://", "https://")):
            self._stat("refused")
            return Fetched(index, url, why="not an http(s) URL")
        headers = {"Accept": "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8"}
        if referer:
            headers["Referer"] = referer
        req = Request(url, headers=headers, dont_filter=True, priority=-1,
                      meta={"download_maxsize": conf.max_bytes, "download_warnsize": 0, "download_timeout": conf.timeout,
                            "tiswatch_image": True})
        self._stat("requests")  # pictures asked of the downloader (its retries aside)
        try:
            resp = await self.crawler.engine.download_async(req)
        except Exception as e:
            self._stat("refused")
            why = str(e) or type(e).__name__
            log.info("picture not fetched: %s: %s", url, why)
            return Fetched(index, url, why=why[:300])
        ctype = resp.headers.get(b"Content-Type", b"").decode("latin-1") or None
        why = refusal(resp.status, ctype, None, conf.max_bytes) or (
            f"body is over the limit of {conf.max_bytes:,} bytes" if len(resp.body) > conf.max_bytes else None)
        if why:
            self._stat("refused")
            log.info("picture refused: %s: %s", url, why)
            return Fetched(index, url, why=why)
        self._stat("fetched")
        self._stat("bytes", len(resp.body))
        return Fetched(index, url, data=resp.body)

    async def _look(self, f: Fetched, opts):
        """(reading, decoded image or None) from the cache or the cheap pass; (None, why) if refused."""
        from images.decode import ImageRefused
        from images.reader import ImageReading, look

        assert f.data is not None
        sha = hashlib.sha256(f.data).hexdigest()
        cached = self.cache.get(sha, opts.key(), need_ocr=False)
        if cached is not None:
            self._stat("cache_hits")
            return ImageReading.from_record(cached, f.index), None
        assert self._cpu is not None
        async with self._cpu:
            t = time.perf_counter()
            try:
                reading, decoded = await asyncio.to_thread(look, f.data, f.index, opts)
            except ImageRefused as e:
                self._stat("refused")
                log.info("picture refused: %s: %s", f.url, e.why)
                return None, e.why
            finally:
                self._stat("cpu_seconds", time.perf_counter() - t)
        self._stat("read")
        if reading.findings.qr:
            self._stat("qr", len(reading.findings.qr))
        self.cache.put(sha, opts.key(), reading.record())
        return reading, decoded

    async def _ocr(self, reading, decoded, f: Fetched, opts) -> None:
        from images.decode import decode
        from images.reader import ImageReading, add_ocr

        cached = self.cache.get(reading.sha256, opts.key(), need_ocr=True)
        if cached is not None:
            self._stat("cache_hits")
            done = ImageReading.from_record(cached, reading.findings.index)
            reading.findings.words, reading.ocr_done, reading.angle = done.findings.words, True, done.angle
            return
        assert self._cpu is not None
        t = time.perf_counter()
        async with self._cpu:
            try:
                d = decoded or await asyncio.to_thread(decode, f.data or b"", opts.max_pixels)
                await asyncio.to_thread(add_ocr, reading, d, opts)
            except Exception as e:  # Tesseract timing out or failing costs this picture's text, nothing more
                self._stat("ocr_errors")
                log.warning("OCR failed for %s: %s: %s", f.url, type(e).__name__, e)
                return
        self._stat("ocr")
        self._stat("ocr_seconds", time.perf_counter() - t)
        self._stat("cpu_seconds", time.perf_counter() - t)
        self.cache.put(reading.sha256, opts.key(), reading.record())
