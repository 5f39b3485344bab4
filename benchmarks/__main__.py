"""`python -m benchmarks`: run every bench_*.py in turn."""

import runpy
import sys
from pathlib import Path

failed = []
for path in sorted(Path(__file__).parent.glob("bench_*.py")):
    print(f"\n=== {path.stem} ===", flush=True)
    sys.argv = [str(path)]
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as exit:  # a bench ending with `raise SystemExit(main())` must not end the run
        if exit.code not in (0, None):
            failed.append(path.stem)
sys.exit(1 if failed else 0)
