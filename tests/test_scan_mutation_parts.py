"""`make mutation MODULE=scan` runs scan as pieces (tests/mutation/modules.py): together they
mutate every file of scan/ that holds code, each file in one piece only, and an entry of the
list of equivalent mutants belongs to the piece that mutates its file."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.mutation import run
from tests.mutation.modules import part_named, runs

SCAN = Path(run.ROOT) / "scripts" / "provguard" / "scan"


def _has_functions(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in ast.walk(tree))


def test_scan_pieces_mutate_every_file_of_scan_once() -> None:
    pieces = runs(part_named("scan"))
    assert len(pieces) > 1
    assert all(p.name.startswith("scan-") for p in pieces)
    mutated: list[str] = []
    for piece in pieces:
        mutated += [p.name for pattern in piece.mutate for p in SCAN.parent.glob(pattern)]
        assert run.selected_tests(piece), piece.name
    with_code = sorted(p.name for p in SCAN.glob("*.py") if _has_functions(p))
    assert set(with_code) <= set(mutated)
    assert len(mutated) == len(set(mutated))  # no file is mutated by two pieces


def test_module_scan_runs_the_pieces_and_a_piece_runs_alone() -> None:
    assert [p.name for p in runs(part_named("scan"))] == [
        "scan-keys",
        "scan-readers",
        "scan-containers",
        "scan-engine",
        "scan-report",
    ]
    assert runs(part_named("scan-keys")) == (part_named("scan-keys"),)
    assert runs(part_named("at")) == (part_named("at"),)


def test_the_peak_rss_test_stays_out_of_every_piece_that_selects_it() -> None:
    bound = "tests/test_scan_archive.py::test_zip_bomb_is_read_in_bounded_memory"
    for piece in runs(part_named("scan")):
        if "tests/test_scan_archive.py" in run.selected_tests(piece):
            assert bound in piece.deselect, piece.name


def test_an_equivalent_entry_belongs_to_the_piece_that_mutates_its_file() -> None:
    diff = "--- a\n+++ b\n@@ -1 +1 @@\n-    return 1\n+    return 2"
    listed = (
        run.Equivalent("provguard.scan.known.x__judge__mutmut_1", "return 2"),
        run.Equivalent("provguard.scan.hexfile.x_f__mutmut_1", "return 2"),
    )
    keys = run.judge(
        "scan-keys",
        (run.Mutant("provguard.scan.known.x__judge__mutmut_1", "survived", diff),),
        listed,
    )
    assert [m.name for m in keys.equivalent] == ["provguard.scan.known.x__judge__mutmut_1"]
    assert keys.stale == ()  # the hexfile entry is scan-readers' business
    readers = run.judge("scan-readers", (), listed)
    assert readers.stale == (
        "provguard.scan.hexfile.x_f__mutmut_1: no longer a surviving mutant, remove the entry",
    )


def test_an_entry_of_the_package_init_belongs_to_the_piece_that_mutates_it() -> None:
    listed = (
        run.Equivalent("provguard.scan.x___getattr____mutmut_1", "return 2"),
        run.Equivalent("provguard.scan.known.x__judge__mutmut_1", "return 2"),
    )
    assert run.judge("scan-engine", (), listed).stale == (
        "provguard.scan.x___getattr____mutmut_1: no longer a surviving mutant, remove the entry",
    )
