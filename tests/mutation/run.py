"""`make mutation`: mutation testing of provguard's core with mutmut, one part at a time.

For each part (tests/mutation/modules.py) this builds a work directory mutants/<part>/ in which
the package sits at src/provguard: mutmut names a mutant after its file path and strips only a
leading "src.", so the names it gives (provguard.at.x_...) are the names the code is imported
under, which is how its trampolines know which mutant is active. The copy mutmut makes
(mutants/<part>/mutants/src/provguard) comes first on PYTHONPATH, so tests that start
`python -m provguard` in a subprocess run the mutant too.

Prints, per part, the score (mutants killed / all mutants) and every mutant that was not killed
with a short diff; mutants listed in tests/mutation/equivalent.md are shown as equivalent.
Exit codes: 0 every part reached the target and every survivor is explained, 1 it did not,
2 mutmut could not run (for example the selected tests fail without any mutant).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.mutation.modules import PARTS, Part, part_named, runs  # noqa: E402

WORK = ROOT / "mutants"
EQUIVALENT = ROOT / "tests" / "mutation" / "equivalent.md"
MUTMUT = Path(sys.executable).parent / "mutmut"
TARGET_PERCENT = 90.0
DETECTED = frozenset({"killed", "timeout", "caught by type check"})
# Repository entries the tests must not see twice: mutmut copies the tests and the sources itself.
NOT_LINKED = frozenset({".git", ".venv", "mutants", "build", "scripts", "tests", "pyproject.toml"})
ENTRY = re.compile(r"^- `(?P<name>provguard\.[^`]+)`: `(?P<line>[^`]*)`")


@dataclass(frozen=True)
class Mutant:
    name: str
    status: str
    diff: str

    @property
    def changed_lines(self) -> tuple[str, ...]:
        return tuple(
            line
            for line in self.diff.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        )


@dataclass(frozen=True)
class Equivalent:
    name: str
    line: str


@dataclass(frozen=True)
class Score:
    part: str
    mutants: tuple[Mutant, ...]
    equivalent: tuple[Mutant, ...]
    stale: tuple[str, ...]

    @property
    def killed(self) -> int:
        return sum(m.status in DETECTED for m in self.mutants)

    @property
    def survivors(self) -> tuple[Mutant, ...]:
        explained = {m.name for m in self.equivalent}
        return tuple(
            m for m in self.mutants if m.status not in DETECTED and m.name not in explained
        )

    @property
    def percent(self) -> float:
        judged = len(self.mutants) - len(self.equivalent)
        return 100.0 * self.killed / judged if judged else 100.0

    @property
    def passed(self) -> bool:
        return self.percent >= TARGET_PERCENT and not self.survivors and not self.stale


def read_equivalent(text: str) -> tuple[Equivalent, ...]:
    """Entries are lines `- `<mutant name>`: `<line>` <why>`, where <line> is the line the
    mutant adds (as in its diff, without the "+"), or "-" and the line it deletes."""
    return tuple(
        Equivalent(match["name"], match["line"].strip())
        for match in map(ENTRY.match, text.splitlines())
        if match
    )


def _wanted(entry: Equivalent) -> str:
    """The diff line an entry records: "-" and a deleted line, else the line the mutant adds."""
    return entry.line if entry.line.startswith("-") else "+" + entry.line


def judge(part: str, mutants: tuple[Mutant, ...], listed: tuple[Equivalent, ...]) -> Score:
    """An entry explains a surviving mutant only while its recorded line is still the mutation:
    mutmut numbers mutants per function, so an edit can give an old name to another mutant."""
    by_name = {m.name: m for m in mutants}
    equivalent: list[Mutant] = []
    stale: list[str] = []
    modules = _modules(part)
    for entry in listed:
        if not entry.name.startswith(modules):
            continue
        mutant = by_name.get(entry.name)
        if mutant is None or mutant.status in DETECTED:
            stale.append(f"{entry.name}: no longer a surviving mutant, remove the entry")
        elif _wanted(entry) not in {line[0] + line[1:].strip() for line in mutant.changed_lines}:
            stale.append(f"{entry.name}: its diff no longer has `{entry.line}`")
        else:
            equivalent.append(mutant)
    return Score(part, mutants, tuple(equivalent), tuple(stale))


def _modules(part: str) -> tuple[str, ...]:
    """The prefixes of the names mutmut gives the mutants of `part`: provguard.scan.known. for
    scan/known.py, provguard.scan.x for scan/__init__.py (mutmut names a package's functions
    after the package, each starting with "x_" or "xǁ")."""
    package = ROOT / "scripts" / "provguard"
    out = []
    for pattern in part_named(part).mutate:
        for path in sorted(package.glob(pattern)):
            module = ".".join(["provguard", *path.relative_to(package).with_suffix("").parts])
            init = module.endswith(".__init__")
            out.append(module.removesuffix(".__init__") + (".x" if init else "."))
    return tuple(out)


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() or link.exists():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def selected_tests(part: Part) -> list[str]:
    found: set[str] = set()
    for pattern in part.tests:
        found.update(str(p.relative_to(ROOT)) for p in ROOT.glob(pattern))
    return sorted(found)


def prepare(part: Part, *, keep: bool) -> Path:
    stage = WORK / part.name
    copy = stage / "mutants"
    if not keep and copy.exists():
        shutil.rmtree(copy)
    _link(stage / "src" / "provguard", ROOT / "scripts" / "provguard")
    _link(stage / "tests", ROOT / "tests")
    # The project's own pyproject.toml (tests read it) with mutmut's section added.
    config = "\n".join(
        [
            (ROOT / "pyproject.toml").read_text(encoding="utf-8").rstrip(),
            "",
            "# added by tests/mutation/run.py for one part of provguard",
            "[tool.mutmut]",
            'source_paths = ["src/provguard"]',
            f"only_mutate = {_toml_list([f'src/provguard/{m}' for m in part.mutate])}",
            "pytest_add_cli_args_test_selection = "
            + _toml_list([*selected_tests(part), *(f"--deselect={t}" for t in part.deselect)]),
            'pytest_add_cli_args = ["-p", "no:cacheprovider"]',
            "",
        ]
    )
    (stage / "pyproject.toml").write_text(config, encoding="utf-8")
    # mutmut copies tests/ over what is there; a test file deleted since must not linger.
    shutil.rmtree(copy / "tests", ignore_errors=True)
    (copy / "src").mkdir(parents=True, exist_ok=True)
    for entry in ROOT.iterdir():
        if entry.name not in NOT_LINKED:
            _link(copy / entry.name, entry)
    # Python processes started by the tests run mutants but none of mutmut's own phases.
    _link(copy / "src" / "sitecustomize.py", Path(__file__).with_name("sitecustomize.py"))
    # Tests that name ROOT/scripts (PYTHONPATH of a subprocess) get the mutated package.
    _link(copy / "scripts" / "provguard", Path("..") / "src" / "provguard")
    return stage


def run_part(part: Part, *, jobs: int, keep: bool) -> tuple[Mutant, ...] | None:
    WORK.mkdir(exist_ok=True)
    # One run per part at a time: a second one would delete the first one's work directory.
    with (WORK / f"{part.name}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"mutation: {part.name}: another run of this part is in progress; wait for it")
            return None
        return _run_locked(part, jobs=jobs, keep=keep)


def _run_locked(part: Part, *, jobs: int, keep: bool) -> tuple[Mutant, ...] | None:
    stage = prepare(part, keep=keep)
    log = stage / "mutmut.log"
    env = _environment(stage)
    print(f"mutation: {part.name}: mutmut on {', '.join(part.mutate)} (log: {log})", flush=True)
    with log.open("w", encoding="utf-8") as out:
        result = subprocess.run(
            [str(MUTMUT), "run", "--max-children", str(jobs)],
            cwd=stage,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        print(f"mutation: {part.name}: mutmut failed (exit {result.returncode}); end of {log}:")
        print("\n".join(f"    {line}" for line in tail))
        return None
    return collect_part(part)


def _environment(stage: Path) -> dict[str, str]:
    env = dict(os.environ)
    # a mutant that makes a test wait forever (a pipe never closed) uses no CPU, so mutmut's
    # CPU-time limit never ends it: tests/conftest.py ends such a test after this many seconds
    env.setdefault("PROVGUARD_TEST_TIMEOUT", "120")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(stage / "mutants" / "src"), env.get("PYTHONPATH", "")) if p
    )
    return env


def collect_part(part: Part) -> tuple[Mutant, ...] | None:
    """The results of the part's last run (after `run_part`, or as `--report-only`)."""
    stage = WORK / part.name
    if not (stage / "mutants").is_dir():
        print(f"mutation: {part.name}: no results yet; run `make mutation MODULE={part.name}`")
        return None
    env = _environment(stage)
    collected = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("collect.py"))],
        cwd=stage,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if collected.returncode != 0:
        print(f"mutation: {part.name}: could not read mutmut's results: {collected.stderr.strip()}")
        return None
    rows = json.loads(collected.stdout)
    return tuple(Mutant(r["name"], r["status"], r["diff"]) for r in rows)


def render(score: Score) -> str:
    total = len(score.mutants)
    lines = [
        f"{score.part}: {score.killed}/{total} mutants killed"
        f" ({100.0 * score.killed / total if total else 100.0:.1f}%),"
        f" {len(score.equivalent)} listed as equivalent,"
        f" score {score.percent:.1f}% of the rest (target {TARGET_PERCENT:.0f}%)"
    ]
    for mutant in score.survivors:
        lines.append(f"  {mutant.status}: {mutant.name}")
        lines.extend(f"      {line}" for line in mutant.changed_lines[:6])
    lines.extend(f"  stale equivalent.md entry: {text}" for text in score.stale)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    names = ", ".join(n.name for p in PARTS for n in (p, *p.pieces))
    parser.add_argument("--module", help=f"one part: {names}")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument(
        "--keep", action="store_true", help="reuse mutmut's results of the last run of the part"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="judge the results of the last run again (after editing equivalent.md), run nothing",
    )
    args = parser.parse_args(argv)
    try:
        parts = (
            runs(part_named(args.module)) if args.module else [r for p in PARTS for r in runs(p)]
        )
    except KeyError as error:
        print(f"mutation: {error.args[0]}", file=sys.stderr)
        return 2
    if not MUTMUT.exists():
        print(f"mutation: {MUTMUT} not found; run `make setup`", file=sys.stderr)
        return 2
    listed = read_equivalent(EQUIVALENT.read_text(encoding="utf-8"))
    scores: list[Score] = []
    failed_to_run: list[str] = []
    for part in parts:
        mutants = (
            collect_part(part)
            if args.report_only
            else run_part(part, jobs=args.jobs, keep=args.keep)
        )
        if mutants is None:
            failed_to_run.append(part.name)
            continue
        score = judge(part.name, mutants, listed)
        scores.append(score)
        print(render(score), flush=True)
    print()
    for score in scores:
        verdict = "ok" if score.passed else "BELOW TARGET / UNEXPLAINED SURVIVORS"
        print(f"mutation: {score.part}: {score.percent:.1f}% {verdict}")
    for name in failed_to_run:
        print(f"mutation: {name}: NOT RUN")
    if failed_to_run:
        return 2
    return 0 if all(s.passed for s in scores) else 1


if __name__ == "__main__":
    sys.exit(main())
