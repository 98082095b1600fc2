"""Loaded by every Python process a test starts during `make mutation` (run.py links it into
the directory it puts first on PYTHONPATH).

mutmut tells its trampolines what to do through MUTANT_UNDER_TEST, which child processes
inherit. A mutant name (provguard.<module>.x_...) must reach them: a test that runs
`python -m provguard` then runs the mutant. mutmut's own phases ("stats", "list_all_tests",
"mutant_generation") must not: the trampolines would record calls through mutmut's
configuration, which a child started in another directory cannot find. The child then runs the
unmutated code, and only calls made in mutmut's own process attribute tests to functions.
"""

from __future__ import annotations

import os

if not os.environ.get("MUTANT_UNDER_TEST", "").startswith(("provguard.", "fail")):
    os.environ.pop("MUTANT_UNDER_TEST", None)
