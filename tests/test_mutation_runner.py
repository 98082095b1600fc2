"""How `make mutation` judges a run: the score, and which survivors the list of equivalent mutants
explains (tests/mutation/run.py). mutmut itself is not run here: that takes minutes."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from tests.mutation import run
from tests.mutation.modules import PARTS

DIFF = """--- src/provguard/at.py
+++ src/provguard/at.py
@@ -1,2 +1,2 @@
 def f(x):
-    return x.decode("ascii")
+    return x.decode("ASCII")"""


def mutant(name: str, status: str, diff: str = "") -> run.Mutant:
    return run.Mutant(f"provguard.at.{name}", status, diff)


def test_entries_name_the_mutant_and_the_line_it_adds() -> None:
    text = (
        "# Equivalent\n\n"
        '- `provguard.at.x_f__mutmut_1`: `return x.decode("ASCII")` codec names ignore case\n'
        "- not an entry\n"
        "    - `provguard.at.x_f__mutmut_2`: `indented` is an example, not an entry\n"
    )
    assert run.read_equivalent(text) == (
        run.Equivalent("provguard.at.x_f__mutmut_1", 'return x.decode("ASCII")'),
    )


def test_every_entry_of_the_repository_list_is_read() -> None:
    text = Path(run.EQUIVALENT).read_text(encoding="utf-8")
    written = [line for line in text.splitlines() if line.startswith("- `provguard.")]
    assert len(run.read_equivalent(text)) == len(written)


def test_score_counts_killed_and_timeouts_against_all_but_listed_equivalents() -> None:
    mutants = (
        *(mutant(f"x_f__mutmut_{i}", "killed") for i in range(1, 9)),
        mutant("x_f__mutmut_9", "timeout"),
        mutant("x_f__mutmut_10", "survived", DIFF),
        mutant("x_f__mutmut_11", "no tests", DIFF),
    )
    listed = (run.Equivalent("provguard.at.x_f__mutmut_10", 'return x.decode("ASCII")'),)
    score = run.judge("at", mutants, listed)
    assert score.killed == 9
    assert [m.name for m in score.equivalent] == ["provguard.at.x_f__mutmut_10"]
    assert [m.name for m in score.survivors] == ["provguard.at.x_f__mutmut_11"]
    assert score.percent == 90.0  # 9 of the 10 that are not equivalent
    assert not score.passed  # an unexplained survivor fails the run whatever the score
    rendered = run.render(score)
    assert "at: 9/11 mutants killed (81.8%), 1 listed as equivalent, score 90.0%" in rendered
    assert "  no tests: provguard.at.x_f__mutmut_11" in rendered
    assert '      +    return x.decode("ASCII")' in rendered


def test_an_entry_whose_mutant_changed_or_was_killed_is_stale() -> None:
    other = DIFF.replace('x.decode("ASCII")', "None")
    mutants = (
        mutant("x_f__mutmut_1", "survived", other),
        mutant("x_f__mutmut_2", "killed"),
    )
    listed = (
        run.Equivalent("provguard.at.x_f__mutmut_1", 'return x.decode("ASCII")'),
        run.Equivalent("provguard.at.x_f__mutmut_2", "anything"),
        run.Equivalent("provguard.scan.engine.x_g__mutmut_1", "another part's entry"),
    )
    score = run.judge("at", mutants, listed)
    assert score.equivalent == ()
    assert score.stale == (
        'provguard.at.x_f__mutmut_1: its diff no longer has `return x.decode("ASCII")`',
        "provguard.at.x_f__mutmut_2: no longer a surviving mutant, remove the entry",
    )
    assert [m.name for m in score.survivors] == ["provguard.at.x_f__mutmut_1"]
    assert not score.passed


def test_a_clean_part_passes() -> None:
    score = run.judge("at", (mutant("x_f__mutmut_1", "killed"),), ())
    assert (score.percent, score.passed) == (100.0, True)


def test_every_part_mutates_files_that_exist_and_selects_tests() -> None:
    package = Path(run.ROOT) / "scripts" / "provguard"
    assert {p.name for p in PARTS} == {
        "at",
        "credentials",
        "render",
        "provision",
        "probe",
        "enroll",
        "scan",
    }
    for part in PARTS:
        assert all(list(package.glob(pattern)) for pattern in part.mutate), part
        assert run.selected_tests(part), part
        for node in part.deselect:
            assert (Path(run.ROOT) / node.split("::")[0]).is_file(), node


def test_an_entry_can_name_the_line_a_mutant_deletes() -> None:
    deleting = DIFF.replace('+    return x.decode("ASCII")', "")
    mutants = (mutant("x_f__mutmut_1", "survived", deleting),)
    by_deleted_line = (run.Equivalent("provguard.at.x_f__mutmut_1", '-return x.decode("ascii")'),)
    assert [m.name for m in run.judge("at", mutants, by_deleted_line).equivalent] == [
        "provguard.at.x_f__mutmut_1"
    ]
    by_added_line = (run.Equivalent("provguard.at.x_f__mutmut_1", 'return x.decode("ascii")'),)
    assert run.judge("at", mutants, by_added_line).equivalent == ()


def test_a_part_already_running_is_not_started_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run, "WORK", tmp_path)
    part = PARTS[0]
    with (tmp_path / f"{part.name}.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert run.run_part(part, jobs=1, keep=False) is None
    assert "another run of this part is in progress" in capsys.readouterr().out
    assert not (tmp_path / part.name).exists()  # nothing of the running one was touched
