"""`python -m benchmarks`: run every bench_*.py in turn."""

import runpy
import sys
from pathlib import Path

for path in sorted(Path(__file__).parent.glob("bench_*.py")):
    print(f"\n=== {path.stem} ===", flush=True)
    sys.argv = [str(path)]
    runpy.run_path(str(path), run_name="__main__")
