"""examples/implicit-als/train_and_serve.py runs in CI, so the README's worked example stays true:
train implicit ALS in numpy, build, publish, then Rank and Related with grpcio (~5 s)."""

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, rankd_binary


def test_worked_example_trains_builds_publishes_and_serves():
    script = ROOT / "examples" / "implicit-als" / "train_and_serve.py"
    result = subprocess.run([sys.executable, str(script), "--bin-dir", os.path.dirname(rankd_binary())],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Related to sku-3" in result.stdout and result.stdout.rstrip().splitlines()[-1].startswith("ok")
