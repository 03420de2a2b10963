"""`tiswatch demo --no-serve` on a fresh data directory: the whole cycle, counts equal to the sandbox truth."""

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
@pytest.mark.browser
def test_demo_cycle_matches_sandbox_truth(tmp_path):
    """The default demo world, exactly as the README's first command runs it (a smaller world once hid a
    picture-only claim that OCR missed)."""
    p = subprocess.run([sys.executable, "-m", "cli", "--home", str(tmp_path / "h"), "demo", "--no-serve", "--sandbox-port", "0"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(tmp_path)})
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    rows = dict(re.findall(r"│ (unlicensed|mislabeled|needs_review|licensed|not_controlled)\s+│\s+\d+\s+│\s+\d+\s+│ (.) │", out))
    assert rows and set(rows.values()) == {"✓"}, _why(out, tmp_path / "h")
    for mp in ("shopee", "lazada", "shop"):
        assert re.search(rf"│ {mp}\s+│\s+(\d+)\s+│\s+\1\s+│ finished", out), _why(out, tmp_path / "h")


def _why(out: str, home) -> str:
    """The demo's tables up to the top flagged listings (the mismatch table names each wrong listing), and the
    crawl logs' warnings and errors: enough to tell a missed page from a misread picture on a CI machine."""
    tables = out.split("top flagged listings")[0][-6000:]
    logs = []
    for log in sorted((home / "logs").glob("crawl-*.log")):
        bad = [ln for ln in log.read_text(errors="replace").splitlines() if " WARNING" in ln or " ERROR" in ln or "picture not" in ln or "picture refused" in ln]
        logs.append(f"--- {log.name}: {len(bad)} warnings/errors\n" + "\n".join(bad[-15:]))
    return tables + "\n" + "\n".join(logs)
