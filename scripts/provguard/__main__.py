"""`python -m provguard`."""

import sys

from provguard.cli import main

sys.exit(main())
