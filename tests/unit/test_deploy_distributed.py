"""deploy/distributed/: what can be checked without Docker and without installing the units: the
example configuration loads in distributed mode, the compose file's services run real tiswatch
commands with valid configuration, Redis never evicts, the systemd template units verify and the
crawler unit's instance name becomes the right marketplace."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from settings import load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DIST = DEPLOY / "distributed"
EXAMPLE = DIST / "tiswatch.distributed.example.toml"


def _compose():
    return yaml.safe_load((DIST / "docker-compose.yml").read_text("utf-8"))


def _env(service: dict) -> dict[str, str]:
    return {k: re.sub(r"\$\{[A-Z_]+(:[-?][^}]*)?\}", "x", str(v)) for k, v in service["environment"].items()}


def test_example_config_is_distributed():
    s = load_settings(config=EXAMPLE, environ={})
    assert s.distributed.enabled and s.distributed.redis_url.startswith("redis://")
    assert s.store.backend == "elasticsearch" and s.store.es_replicas >= 1


def test_compose_services_run_tiswatch_commands_with_valid_configuration():
    from cli import app

    c = _compose()
    svc = c["services"]
    assert {"es01", "es02", "es03", "redis", "tiswatch", "worker", "crawler-lazada", "crawler-shopee", "crawler-shop"} <= set(svc)
    runner = CliRunner()
    for name, s in svc.items():
        if s.get("image") != "tiswatch:latest":
            continue
        # every command exists with these options (asking it for --help parses them)
        res = runner.invoke(app, [*s["command"], "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0, (name, res.output)
        conf = load_settings(config=EXAMPLE, environ=_env(s))
        assert conf.distributed.enabled and conf.store.es_url == "http://es01:9200", name
        assert "evidence:/var/lib/tiswatch/evidence" in s["volumes"], name   # one evidence store for all
        for v in s["volumes"]:
            vol = v.split(":")[0]
            assert vol.startswith(".") or vol in c["volumes"], (name, vol)
        if name != "tiswatch":
            assert s["healthcheck"]["test"] != [] and "8000" not in str(s["healthcheck"]), name  # no web server there
    assert [s["command"] for n, s in svc.items() if n.startswith("crawler-")] == \
        [["crawl", "--distributed", "--follow", mp] for mp in ("shopee", "lazada", "shop")]
    assert svc["worker"]["deploy"]["replicas"] >= 2 and svc["tiswatch"]["command"] == ["run"]
    # the secrets the file needs are in the env example shared with deploy/docker-compose.yml
    example = dict(line.split("=", 1) for line in (DEPLOY / "env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    needed = set(re.findall(r"\$\{([A-Z_]+):\?", (DIST / "docker-compose.yml").read_text()))
    assert needed <= set(example), needed - set(example)


def test_redis_keeps_everything():
    cmd = " ".join(_compose()["services"]["redis"]["command"])
    assert "--maxmemory-policy noeviction" in cmd and "--appendonly yes" in cmd and "--requirepass" in cmd
    assert "ports" not in _compose()["services"]["redis"]


def test_the_image_has_the_shared_evidence_folder_for_its_user():
    assert "/var/lib/tiswatch/evidence" in (DEPLOY / "Dockerfile").read_text("utf-8")


def _unit(name: str) -> str:
    return (DIST / name).read_text("utf-8")


def test_the_crawler_unit_crawls_the_marketplace_of_its_instance():
    line = next(x for x in _unit("tiswatch-crawler@.service").splitlines() if x.startswith("ExecStart="))
    # what systemd runs for tiswatch-crawler@lazada.2: %i is the instance, $$ and %% are $ and %
    argv = line.removeprefix("ExecStart=").replace("%i", "lazada.2").replace("$$", "$").replace("%%", "%")
    argv = argv.replace("exec /opt/tiswatch/.venv/bin/tiswatch", "echo")
    out = subprocess.run(["sh", "-c", argv], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["crawl", "--distributed", "--follow", "lazada"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze on this machine")
@pytest.mark.parametrize("unit, instance", [("tiswatch-crawler@.service", "shopee.1"), ("tiswatch-worker@.service", "2")])
def test_units_verify(tmp_path, unit, instance):
    text = _unit(unit).replace("/opt/tiswatch/.venv/bin/tiswatch", str(Path(sys.executable).parent / "tiswatch"))
    (tmp_path / unit).write_text(text, "utf-8")
    inst = tmp_path / unit.replace("@.", f"@{instance}.")
    inst.write_text(text, "utf-8")
    for path in (tmp_path / unit, inst):
        r = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
        problems = [x for x in (r.stdout + r.stderr).splitlines() if x.strip()
                    and "Failed to connect to bus" not in x and "ignoring" not in x.lower()]
        assert r.returncode == 0 and not problems, problems
    assert "KillSignal=SIGTERM" in text and "Restart=always" in text
