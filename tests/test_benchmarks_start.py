"""Every benchmark script starts: its imports resolve and it answers --help. A bench is
run by hand, rarely, so a renamed helper would otherwise break it unnoticed."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent / "bench"
SCRIPTS = sorted(BENCH_DIR.glob("bench_*.py"))


def test_the_benchmarks_are_found():
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_a_benchmark_script_imports_and_prints_its_usage(script):
    result = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=BENCH_DIR.parents[1],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage:")
