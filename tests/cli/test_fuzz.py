"""A short run of the fuzz driver (bench/fuzz.py): mutated fixture trees never crash or hang kvmlint.

The long run is `python bench/fuzz.py --seconds 600`.
"""

import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parents[2] / "bench" / "fuzz.py"


def test_a_few_fuzzed_trees_give_no_crash_or_hang(tmp_path):
    result = subprocess.run(
        [sys.executable, str(FUZZ), "--seconds", "60", "--cases", "6", "--seed", "11", "--verbose", "--keep", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " 0 failed" in result.stdout
