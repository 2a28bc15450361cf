"""``python -m benchmarks``."""

import sys

from benchmarks import main

raise SystemExit(main(sys.argv[1:]))
