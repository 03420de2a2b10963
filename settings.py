"""Configuration: one TOML file validated by pydantic, overridable by TISWATCH_* environment variables.

Order of precedence (last wins): config/default.toml, the user's file (--config / TISWATCH_CONFIG),
environment variables TISWATCH_<SECTION>__<KEY>. Values from the environment are parsed as TOML
values when they look like one (numbers, booleans, arrays), so TISWATCH_CRAWL__CONCURRENCY=4 is an int.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ROOT = Path(__file__).resolve().parent
DEFAULT_CONFIG = ROOT / "config" / "default.toml"
DEFAULT_CATALOGUE = ROOT / "config" / "standards.toml"
ENV_PREFIX = "TISWATCH_"


class ConfigError(Exception):
    """A configuration value is wrong; the message names the key, the source and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSettings(_Section):
    backend: Literal["sqlite", "elasticsearch"] = "sqlite"
    es_url: str = ""
    es_prefix: str = Field("tiswatch", pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$")
    es_client: Literal["auto", "opensearch", "elasticsearch"] = "auto"
    es_username: str = ""
    es_password: str = ""
    es_api_key: str = ""
    es_ca_certs: str = ""
    es_verify_certs: bool = True
    es_timeout: float = Field(30, gt=0, le=3600)
    es_shards: int = Field(1, ge=1, le=64)
    es_replicas: int = Field(1, ge=0, le=10)
    es_rollover: Literal["auto", "ilm", "ism", "client", "off"] = "auto"
    es_rollover_max_age: str = Field("30d", pattern=r"^\d+[dhms]$")
    es_rollover_max_docs: int = Field(50_000_000, ge=0)
    es_rollover_max_size: str = Field("50gb", pattern=r"^\d+(b|kb|mb|gb|tb)$")
    evidence_retention_days: int = Field(0, ge=0)
    evidence_keep_latest_flagged: bool = True
    observation_retention_days: int = Field(0, ge=0)  # 0: every observation kept (the default)


class RegistrySettings(_Section):
    catalogue: str = ""
    source: str = ""
    check_requires_key: bool = False


class CrawlSettings(_Section):
    concurrency: int = Field(8, ge=1, le=256)
    concurrency_per_domain: int = Field(4, ge=1, le=256)
    download_delay: float = Field(0.25, ge=0)
    autothrottle: bool = True
    obey_robots: bool = True
    timeout: float = Field(30, gt=0)
    retries: int = Field(3, ge=0, le=20)
    max_pages: int = Field(0, ge=0)
    time_limit: float = Field(3600, gt=0)
    user_agent: str = "tiswatch/0.1"
    browser_executable: str = "/usr/bin/chromium"
    browser_pages: int = Field(4, ge=1, le=64)
    screenshots: bool = True
    max_page_mb: float = Field(32, gt=0)
    refetch_hours: float = Field(168, gt=0)
    refetch_flagged_hours: float = Field(24, gt=0)
    revisit_limit: int = Field(500, ge=0)
    block_pause_minutes: float = Field(60, ge=0)
    browser_recycle_pages: int = Field(200, ge=0)
    browser_retire_pages: int = Field(500, ge=0)  # a new Chromium after this many pages (crawlers/browser.py)
    store_batch: int = Field(200, ge=0)
    store_batch_seconds: float = Field(1.0, gt=0)
    # check, store and evidence in a second process (crawlers/storeworker.py); "auto": with 2+ CPUs
    store_worker: bool | Literal["auto"] = "auto"


class MarketplaceSettings(_Section):
    enabled: bool = True
    base_url: str = ""
    start_urls: list[str] = []
    keywords: list[str] = []
    categories: list[str] = []
    max_search_pages: int = Field(3, ge=0)
    catalogue_keywords: bool = True   # search for every product word of the standards catalogue too
    seed_categories: bool = True      # crawl the categories of config/category_seeds.toml too
    obey_robots: bool | None = None  # None: the [crawl] setting
    download_delay: float | None = Field(None, ge=0)        # None: the [crawl] setting
    concurrency_per_domain: int | None = Field(None, ge=1, le=256)

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class SandboxSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8800, ge=0, le=65535)
    seed: int = 7
    listings: int = Field(240, ge=10, le=100_000)
    licences: int = Field(600, ge=50, le=1_000_000)
    image_only_share: float = Field(0.25, ge=0, le=1)


class ImageSettings(_Section):
    """Reading the listings' pictures in the crawl (images/): QR codes, printed text, perceptual hashes."""

    enabled: bool = True
    max_images: int = Field(6, ge=0, le=50)
    max_bytes: int = Field(5_000_000, ge=10_000, le=100_000_000)
    max_pixels: int = Field(25_000_000, ge=10_000, le=400_000_000)
    timeout: float = Field(20, gt=0)
    qr: bool = True
    ocr: bool = True
    ocr_languages: str = "tha"
    ocr_images: int = Field(2, ge=0, le=50)
    ocr_min_score: float = Field(0.2, ge=0, le=1)
    ocr_min_conf: float = Field(60, ge=0, le=100)
    ocr_timeout: float = Field(60, gt=0)
    preprocess: bool = True
    workers: int = Field(1, ge=1, le=32)
    keep: bool = True
    reuse_distance: int = Field(4, ge=0, le=16)

    @field_validator("ocr_languages")
    @classmethod
    def _langs(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"[a-z_]{3,}(?:\+[a-z_]{3,})*", v):
            raise ValueError("Tesseract languages joined by +, e.g. tha or tha+eng")
        return v


class ReviewSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    secret_key: str = ""
    language: Literal["th", "en"] = "th"
    secure_cookies: bool = False
    session_hours: float = Field(12, gt=0, le=24 * 30)
    session_idle_minutes: float = Field(30, gt=0, le=24 * 60)
    max_failed_logins: int = Field(5, ge=1, le=100)
    lockout_minutes: int = Field(15, ge=1, le=24 * 60)
    page_size: int = Field(50, ge=10, le=500)
    count_cache_seconds: float = Field(15, ge=0, le=3600)


class SmtpSettings(_Section):
    host: str = ""  # empty: no e-mail (digests are skipped with a warning)
    port: int = Field(25, ge=1, le=65535)
    username: str = ""
    password: str = ""
    security: Literal["none", "starttls", "ssl"] = "none"
    sender: str = "tiswatch@localhost"
    timeout: float = Field(30, gt=0)


class DigestGroupSettings(_Section):
    emails: list[str] = []
    marketplaces: list[str] = []
    standards: list[str] = []


class AlertSettings(_Section):
    min_risk: int = Field(70, ge=0, le=100)
    webhook_timeout: float = Field(10, gt=0)
    public_url: str = ""
    evidence_link_days: float = Field(30, gt=0, le=365)
    concurrency: int = Field(4, ge=1, le=64)
    retry_hours: float = Field(72, gt=0, le=24 * 30)
    retry_base_seconds: float = Field(5, gt=0)
    retry_max_delay_seconds: float = Field(6 * 3600, gt=0)
    circuit_after: int = Field(5, ge=1, le=1000)
    poll_seconds: float = Field(0.25, gt=0, le=60)
    delivery_worker: bool = True  # `tiswatch run` keeps `partners deliver --loop` running (ops/delivery_child.py)
    verify_http_marketplaces: list[str] = ["shop"]
    verify_days: float = Field(14, gt=0)
    digest_top: int = Field(10, ge=1, le=100)
    webhook_allow_networks: list[str] = []  # internal networks webhooks may reach (alerts/netguard.py)
    secrets_key: str = ""  # Fernet key(s) of the webhook secrets, comma-separated (alerts/secretbox.py)
    secrets_key_file: str = "alerts.key"  # else keys in this file (relative: in the data directory)
    smtp: SmtpSettings = SmtpSettings()
    groups: dict[str, DigestGroupSettings] = {}

    @field_validator("webhook_allow_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        from alerts.netguard import parse_networks

        parse_networks(v)
        return v

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_: bool = Field(False, alias="json")
    file: str = ""  # also write the service's log here (relative: in the data directory)


def _schedule(v: str) -> str:
    from ops.schedule import ScheduleError, parse_schedule

    try:
        parse_schedule(v)
    except ScheduleError as e:
        raise ValueError(str(e)) from None
    return v


class KeywordGroup(_Section):
    """[schedule.groups.NAME]: keywords and categories crawled on their own schedule."""

    marketplaces: list[str] = []  # empty: every enabled marketplace
    keywords: list[str] = []
    categories: list[str] = []
    every: str = "every 6h"
    max_search_pages: int | None = Field(None, ge=0)

    @field_validator("every")
    @classmethod
    def _every(cls, v: str) -> str:
        return _schedule(v)

    @model_validator(mode="after")
    def _some(self) -> KeywordGroup:
        if not self.keywords and not self.categories:
            raise ValueError("a keyword group needs keywords or categories")
        return self


class ScheduleSettings(_Section):
    enabled: bool = True
    timezone: str = "Asia/Bangkok"
    crawl: str = "every 6h"
    marketplaces: dict[str, str] = {}
    revisit: str = "every 1h"
    revisit_flagged_hours: float = Field(24, gt=0)
    revisit_changed_hours: float = Field(72, gt=0)
    revisit_quiet_days: float = Field(14, gt=0)
    revisit_changed_days: float = Field(7, gt=0)
    revisit_max: int = Field(200, ge=1, le=100_000)
    registry_refresh: str = "every 6h"
    recheck: str = "every 10m"
    alerts: str = "every 1m"
    digest: str = "cron 0 8 * * *"
    removals: str = "every 6h"
    retention: str = "cron 30 3 * * *"
    groups: dict[str, KeywordGroup] = {}
    shutdown_grace: float = Field(30, gt=0, le=3600)
    history_days: int = Field(90, ge=1)

    @field_validator("crawl", "revisit", "registry_refresh", "recheck", "alerts", "digest", "removals", "retention")
    @classmethod
    def _one(cls, v: str) -> str:
        return _schedule(v)

    @field_validator("marketplaces")
    @classmethod
    def _each(cls, v: dict[str, str]) -> dict[str, str]:
        for name, text in v.items():
            try:
                _schedule(text)
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
        return v

    @field_validator("groups")
    @classmethod
    def _names(cls, v: dict[str, KeywordGroup]) -> dict[str, KeywordGroup]:
        import re

        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name):
                raise ValueError(f"group name {name!r}: use letters, digits, _ and - (at most 40)")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not a time zone name (e.g. Asia/Bangkok, UTC)") from None
        return v


class OpsSettings(_Section):
    metrics: Literal["app", "listener", "off"] = "app"
    metrics_listen: str = "127.0.0.1:9464"  # host:port of the separate listener when metrics = "listener"
    metrics_token: str = ""  # when set, /metrics on the app needs `Authorization: Bearer <token>`
    browser_check: bool = True  # /readyz checks that Chromium starts (when a browser marketplace is enabled)


class DistributedSettings(_Section):
    """[distributed]: many crawler and worker processes on any machines, sharing one Redis (the crawl
    frontier and the listing streams, cluster/) and one Elasticsearch/OpenSearch index ([store])."""

    enabled: bool = False  # true: `tiswatch crawl` and scheduled crawls run on the shared Redis frontier
    redis_url: str = "redis://127.0.0.1:6379/0"
    namespace: str = Field("tiswatch", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    lease_seconds: float = Field(120, ge=1, le=86_400)
    max_attempts: int = Field(3, ge=1, le=100)
    dupefilter: Literal["exact", "bloom"] = "exact"
    expected_requests: int = Field(1_000_000, ge=1_000, le=10_000_000_000)
    bloom_error_rate: float = Field(1e-7, gt=0, lt=0.1)
    run_ttl_hours: float = Field(168, gt=0)
    max_backlog: int = Field(200_000, ge=100)
    worker_batch: int = Field(100, ge=1, le=10_000)
    claim_idle_seconds: float = Field(60, ge=0.1)
    max_deliveries: int = Field(5, ge=1, le=1000)
    poll_seconds: float = Field(1.0, gt=0, le=60)

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v


class Settings(_Section):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    home: Path = Path("tiswatch-home")
    store: StoreSettings = StoreSettings()
    registry: RegistrySettings = RegistrySettings()
    crawl: CrawlSettings = CrawlSettings()
    marketplaces: dict[str, MarketplaceSettings] = {}
    sandbox: SandboxSettings = SandboxSettings()
    review: ReviewSettings = ReviewSettings()
    alerts: AlertSettings = AlertSettings()
    images: ImageSettings = ImageSettings()
    log: LogSettings = LogSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    ops: OpsSettings = OpsSettings()
    distributed: DistributedSettings = DistributedSettings()

    # ---- paths in the data directory -------------------------------------------------------
    @property
    def listings_db(self) -> Path:
        return self.home / "listings.sqlite"

    @property
    def registry_db(self) -> Path:
        return self.home / "registry.sqlite"

    @property
    def app_db(self) -> Path:
        return self.home / "app.sqlite"

    @property
    def jobs_db(self) -> Path:
        return self.home / "jobs.sqlite"

    @property
    def images_db(self) -> Path:
        return self.home / "images.sqlite"

    @property
    def evidence_dir(self) -> Path:
        return self.home / "evidence"

    @property
    def crawl_dir(self) -> Path:
        return self.home / "crawl"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def catalogue_path(self) -> Path:
        return Path(self.registry.catalogue) if self.registry.catalogue else DEFAULT_CATALOGUE

    def ensure_home(self) -> Path:
        for d in (self.home, self.evidence_dir, self.crawl_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self.home


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _env_overrides(environ: dict[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    data: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in (ENV_PREFIX + "CONFIG", ENV_PREFIX + "HOME"):
            continue
        path = tuple(p.lower() for p in name[len(ENV_PREFIX):].split("__") if p)
        if not path or (path[0] not in Settings.model_fields and path[0] != "log"):
            continue  # unrelated TISWATCH_* variables (e.g. TISWATCH_ES_URL for tests) are ignored
        node = data
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = _env_value(raw)
        origin[path] = f"environment variable {name}"
    return data, origin


def load_settings(
    config: str | Path | None = None,
    home: str | Path | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Load and validate the configuration; raises ConfigError naming the key, the source and why."""
    env = dict(os.environ if environ is None else environ)
    data = _read_toml(DEFAULT_CONFIG)
    origin_file = {(): str(DEFAULT_CONFIG)}
    config = config or env.get(ENV_PREFIX + "CONFIG")
    if config:
        data = _deep_merge(data, _read_toml(Path(config)))
        origin_file[()] = str(config)
    env_data, env_origin = _env_overrides(env)
    data = _deep_merge(data, env_data)
    data = _deep_merge(data, overrides)
    data["home"] = Path(home or env.get(ENV_PREFIX + "HOME") or data.get("home") or "tiswatch-home")
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = tuple(str(p) for p in err["loc"])
            key = ".".join(loc)
            src = env_origin.get(loc, origin_file[()])
            lines.append(f"config key `{key}` ({src}): {err['msg']}")
        raise ConfigError("\n".join(lines)) from None
