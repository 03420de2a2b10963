"""deploy/: what can be checked without Docker and without installing the unit: the example production
configuration loads and makes its jobs, the compose file is a consistent stack whose environment is
valid tiswatch configuration, the systemd unit passes `systemd-analyze verify`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ops.schedule import job_specs
from settings import load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_example_config_loads_and_schedules():
    s = load_settings(config=DEPLOY / "tiswatch.example.toml", environ={})
    assert s.store.backend == "elasticsearch" and s.alerts.smtp.host and s.registry.source.startswith("https://")
    assert s.log.json_ and s.ops.metrics == "listener"
    specs = {j.id: j for j in job_specs(s)}
    assert specs["crawl:shopee"].schedule == "cron 30 2,14 * * *"
    assert specs["crawl:lazada:power_banks"].schedule == "every 2h" and specs["registry"].trigger is not None


def _compose():
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text("utf-8"))


def test_compose_stack_is_consistent():
    c = _compose()
    svc = c["services"]
    assert set(svc) == {"elasticsearch", "redis", "tiswatch"}
    for name, s in svc.items():
        assert "healthcheck" in s and s.get("restart") == "unless-stopped", name
        for v in s.get("volumes", []):
            vol = v.split(":")[0]
            assert vol.startswith(".") or vol in c["volumes"], (name, vol)
    tw = svc["tiswatch"]
    assert tw["depends_on"] == {"elasticsearch": {"condition": "service_healthy"}, "redis": {"condition": "service_healthy"}}
    assert tw["build"]["dockerfile"] == "deploy/Dockerfile" and (DEPLOY.parent / tw["build"]["dockerfile"]).exists()
    # the grace period docker gives covers the one tiswatch gives its crawls
    grace = int(re.fullmatch(r"(\d+)s", tw["stop_grace_period"]).group(1))
    s = load_settings(config=DEPLOY / "tiswatch.example.toml", environ={})
    assert grace >= s.schedule.shutdown_grace + 30
    # ports: the app only on loopback, Elasticsearch and Redis not published
    assert tw["ports"] == ["127.0.0.1:8000:8000"] and "ports" not in svc["elasticsearch"] and "ports" not in svc["redis"]


def test_compose_environment_is_valid_configuration():
    """The TISWATCH_* variables the compose file sets are keys tiswatch accepts, with the example file."""
    env = {}
    for k, v in _compose()["services"]["tiswatch"]["environment"].items():
        env[k] = re.sub(r"\$\{[A-Z_]+(:[-?][^}]*)?\}", "x", str(v))
    s = load_settings(config=DEPLOY / "tiswatch.example.toml", environ=env)
    assert s.store.es_url == "http://elasticsearch:9200" and s.store.es_username == "elastic"
    assert s.review.host == "0.0.0.0" and s.ops.metrics_listen == "0.0.0.0:9464"
    assert any(k.startswith("TISWATCH_") for k in env)
    example = dict(line.split("=", 1) for line in (DEPLOY / "env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    needed = set(re.findall(r"\$\{([A-Z_]+):\?", (DEPLOY / "docker-compose.yml").read_text()))
    assert needed <= set(example), needed - set(example)


def test_dockerfile_runs_the_service_under_tini():
    text = (DEPLOY / "Dockerfile").read_text("utf-8")
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "tiswatch"]' in text and 'CMD ["run"]' in text
    assert "chromium" in text and "fonts-thai-tlwg" in text and "STOPSIGNAL SIGTERM" in text
    assert "USER tiswatch" in text and "TISWATCH_HOME=/var/lib/tiswatch" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze on this machine")
def test_systemd_unit_verifies(tmp_path):
    unit = (DEPLOY / "tiswatch.service").read_text("utf-8")
    assert "ExecStart=/opt/tiswatch/.venv/bin/tiswatch run" in unit and "KillMode=mixed" in unit
    # verify the unit as it would be installed, its ExecStart pointing to a tiswatch that exists here
    tiswatch = Path(sys.executable).parent / "tiswatch"
    local = tmp_path / "tiswatch.service"
    local.write_text(unit.replace("/opt/tiswatch/.venv/bin/tiswatch", str(tiswatch)), "utf-8")
    r = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()
                and "Failed to connect to bus" not in line and "ignoring" not in line.lower()]
    assert r.returncode == 0 and not problems, problems
    stop = int(re.search(r"^TimeoutStopSec=(\d+)", unit, re.M).group(1))
    assert stop >= load_settings(config=DEPLOY / "tiswatch.example.toml", environ={}).schedule.shutdown_grace + 30
