"""Read one mutmut work directory's results: run with that directory as the working directory.

mutmut keeps its configuration and results relative to the current directory, and caches the
configuration for the life of the process, so run.py reads each part's results through this
script in a process of its own. Prints a JSON list of {name, status, diff} (diff only for
mutants that were not killed).
"""

from __future__ import annotations

import json
import sys

from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

DETECTED = frozenset({"killed", "timeout", "caught by type check"})


def collect() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, exit_code in sorted(data.exit_code_by_key.items()):
            status = status_by_exit_code[exit_code]
            diff = "" if status in DETECTED else get_diff_for_mutant(name, path=path)
            rows.append({"name": name, "status": status, "diff": diff})
    return rows


if __name__ == "__main__":
    json.dump(collect(), sys.stdout)
