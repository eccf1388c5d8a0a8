#!/usr/bin/env python
"""mlr-bench entry point: ``python run_all.py --table 1`` (see README). Thin by design."""

import sys

from benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
