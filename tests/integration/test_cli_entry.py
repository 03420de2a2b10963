"""The command works the same whether started as `tiswatch` or `python -m cli`."""

import subprocess
import sys

from tests.conftest import ROOT


def test_python_dash_m_cli_honours_global_options(tmp_path):
    home = tmp_path / "h"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    p = subprocess.run([sys.executable, "-m", "cli", "--home", str(home), "registry", "stats"], cwd=cwd,
                       capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), "COLUMNS": "200"})
    assert p.returncode == 0, p.stdout + p.stderr
    assert (home / "registry.sqlite").exists()
    assert not (cwd / "tiswatch-home").exists()  # sub-commands saw --home, not the default
