"""Mutation testing of the firmware sources (app/src) against the host C unit tests.

    python tests/mutation/c_mutate.py [--min-score 90] [--only FILE] [--list]

Copies app/src to a scratch directory, configures tests/unit once with PROVGUARD_APP_SRC pointing
at the copy (so the real files are never touched), then for each mutant: writes the mutated file
into the copy, rebuilds with Ninja, runs ctest, and restores the file. A mutant is *killed* when a
test fails or times out, *survived* when every test passes, *stillborn* when it does not compile
(not counted in the score). Survivors listed in tests/mutation/equivalent-c.md (with the reason
they cannot be killed) are reported as equivalent and not counted either.

Operators, one change per mutant, on code only (never in comments, strings, preprocessor lines
or BUILD_ASSERT):
  swap-comparison   == <-> !=, < <-> >=, > <-> <=
  negate-condition  if (X) -> if (!(X)), while (X) -> while (!(X))
  drop-call         a statement that is only a call (also `(void)f(...)`, `x = f(...)`) removed;
                    LOG_* calls are not mutated (their messages are asserted where they matter)
  change-constant   an integer literal n -> n + 1, and 0 -> 1 / 1 -> 0

Exit: 0 when the score (killed / (killed + survived)) is at least --min-score, 1 below it, 2 when
the tests do not pass on the unmutated sources or the tools are missing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP_SRC = ROOT / "app" / "src"
UNIT = ROOT / "tests" / "unit"
EQUIVALENT_FILE = Path(__file__).resolve().parent / "equivalent-c.md"
TEST_TIMEOUT_S = 20

COMPARISON_SWAPS = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
COMPARISON = re.compile(r"==|!=|<=|>=|(?<![<>-])[<>](?![<>=])")
CONDITION = re.compile(r"\b(if|while)\s*\(")
CALL_STATEMENT = re.compile(
    r"^(?P<indent>\s*)(?:\(void\)\s*|[A-Za-z_][\w.\->\[\]]*\s*=\s*)?"
    r"(?P<name>[A-Za-z_]\w*)\s*\(.*\);\s*$"
)
INTEGER = re.compile(r"(?<![\w.])(\d+)(U|u|UL|ul)?(?![\w.])")
NOT_CALLS = frozenset({"if", "while", "for", "switch", "return", "sizeof", "BUILD_ASSERT"})


@dataclass(frozen=True)
class Mutant:
    """One change to one line of one source file."""

    file: str
    line: int
    operator: str
    original: str
    mutated: str

    @property
    def key(self) -> str:
        """Stable across line moves: file, operator and both versions of the line."""
        return f"{self.file} | {self.operator} | {self.original.strip()} | {self.mutated.strip()}"


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    status: str  # killed | survived | stillborn | equivalent


def mask_code(line: str, in_comment: bool) -> tuple[str, bool]:
    """The line with comments and string/char literals blanked, and whether a comment goes on."""
    out: list[str] = []
    i = 0
    while i < len(line):
        if in_comment:
            end = line.find("*/", i)
            if end < 0:
                out.append(" " * (len(line) - i))
                return "".join(out), True
            out.append(" " * (end + 2 - i))
            i = end + 2
            in_comment = False
            continue
        ch = line[i]
        if line.startswith("/*", i):
            in_comment = True
            out.append("  ")
            i += 2
            continue
        if line.startswith("//", i):
            out.append(" " * (len(line) - i))
            break
        if ch in "\"'":
            j = i + 1
            while j < len(line) and line[j] != ch:
                j += 2 if line[j] == "\\" else 1
            out.append(ch + " " * (min(j, len(line)) - i - 1) + (ch if j < len(line) else ""))
            i = j + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out), in_comment


def code_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """(index, line, masked line) of the lines that may be mutated."""
    in_comment = False
    in_directive = False
    in_assert = False
    for index, line in enumerate(text.splitlines()):
        masked, in_comment = mask_code(line, in_comment)
        stripped = masked.strip()
        directive = in_directive or stripped.startswith("#")
        in_directive = directive and line.rstrip().endswith("\\")
        if stripped.startswith("BUILD_ASSERT"):
            in_assert = True
        skip = directive or in_assert or not stripped
        if in_assert and stripped.endswith(");"):
            in_assert = False
        if not skip:
            yield index, line, masked


def line_mutants(file: str, index: int, line: str, masked: str) -> Iterator[Mutant]:
    def make(operator: str, mutated: str) -> Mutant:
        return Mutant(file, index + 1, operator, line, mutated)

    for match in COMPARISON.finditer(masked):
        op = match.group(0)
        start, end = match.span()
        yield make("swap-comparison", line[:start] + COMPARISON_SWAPS[op] + line[end:])

    for match in CONDITION.finditer(masked):
        open_at = match.end() - 1
        depth = 0
        for pos in range(open_at, len(masked)):
            depth += {"(": 1, ")": -1}.get(masked[pos], 0)
            if depth == 0:
                inner = line[open_at + 1 : pos]
                yield make("negate-condition", line[: open_at + 1] + f"!({inner})" + line[pos:])
                break

    call = CALL_STATEMENT.match(masked)
    if call and call.group("name") not in NOT_CALLS and not call.group("name").startswith("LOG_"):
        yield make("drop-call", call.group("indent") + ";")

    if "case " not in masked:
        for match in INTEGER.finditer(masked):
            value = int(match.group(1))
            suffix = match.group(2) or ""
            start, end = match.span()
            replacements = {value + 1}
            if value in (0, 1):
                replacements = {1 - value}
            for new in sorted(replacements):
                yield make("change-constant", line[:start] + f"{new}{suffix}" + line[end:])


def generate(file: str, text: str) -> list[Mutant]:
    """Every mutant of one source file, in line order."""
    return [
        mutant
        for index, line, masked in code_lines(text)
        for mutant in line_mutants(file, index, line, masked)
    ]


def apply(text: str, mutant: Mutant) -> str:
    lines = text.splitlines(keepends=True)
    ending = "\n" if lines[mutant.line - 1].endswith("\n") else ""
    lines[mutant.line - 1] = mutant.mutated + ending
    return "".join(lines)


def read_equivalents(path: Path) -> frozenset[str]:
    """Keys of explained equivalent mutants: lines `- key` in the file's list."""
    if not path.exists():
        return frozenset()
    keys = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("- `") and line.rstrip().endswith("`"):
            keys.append(line.strip()[3:-1])
    return frozenset(keys)


def run(command: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)


def build_and_test(build: Path) -> str:
    """killed | survived | stillborn for the sources currently in the scratch copy."""
    if run(["cmake", "--build", str(build)]).returncode != 0:
        return "stillborn"
    tests = run(["ctest", "--test-dir", str(build), "--timeout", str(TEST_TIMEOUT_S), "-j2", "-Q"])
    return "survived" if tests.returncode == 0 else "killed"


def mutate_all(
    sources: Sequence[Path], copy: Path, build: Path, equivalents: frozenset[str]
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for source in sources:
        original = source.read_text(encoding="utf-8")
        target = copy / source.name
        for mutant in generate(source.name, original):
            target.write_text(apply(original, mutant), encoding="utf-8")
            status = build_and_test(build)
            if status == "survived" and mutant.key in equivalents:
                status = "equivalent"
            outcomes.append(Outcome(mutant, status))
            print(f"  {status:10} {mutant.file}:{mutant.line} {mutant.operator}", flush=True)
        target.write_text(original, encoding="utf-8")
    return outcomes


def report(outcomes: Sequence[Outcome], min_score: float) -> int:
    counts = dict.fromkeys(("killed", "survived", "stillborn", "equivalent"), 0)
    for outcome in outcomes:
        counts[outcome.status] += 1
    scored = counts["killed"] + counts["survived"]
    score = 100.0 * counts["killed"] / scored if scored else 100.0
    print(
        f"\nC mutants: {len(outcomes)}: {counts['killed']} killed, {counts['survived']} survived, "
        f"{counts['equivalent']} equivalent (explained in {EQUIVALENT_FILE.name}), "
        f"{counts['stillborn']} did not compile"
    )
    print(f"score: {score:.1f}% killed (target {min_score:.0f}%)")
    survivors = [o.mutant for o in outcomes if o.status == "survived"]
    if survivors:
        print("\nsurvivors (kill with a test, or explain in equivalent-c.md as `- `key``):")
        for mutant in survivors:
            print(f"  {mutant.file}:{mutant.line}: {mutant.operator}")
            print(f"    - {mutant.original.strip()}")
            print(f"    + {mutant.mutated.strip()}")
            print(f"    key: {mutant.key}")
    return 0 if score >= min_score else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-score", type=float, default=90.0, help="percent killed to pass")
    parser.add_argument("--only", action="append", default=[], help="mutate only this file")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    args = parser.parse_args(argv)

    sources = sorted(APP_SRC.glob("*.c"))
    if args.only:
        sources = [s for s in sources if s.name in set(args.only)]
        if not sources:
            print(f"c_mutate: no file of app/src matches {args.only}", file=sys.stderr)
            return 2
    if args.list:
        for source in sources:
            for mutant in generate(source.name, source.read_text(encoding="utf-8")):
                print(f"{mutant.file}:{mutant.line}: {mutant.operator}: {mutant.mutated.strip()}")
        return 0
    for tool in ("cmake", "ninja", "ctest", "cc"):
        if shutil.which(tool) is None:
            print(f"c_mutate: {tool} not found", file=sys.stderr)
            return 2

    with tempfile.TemporaryDirectory(prefix="provguard-c-mutants-") as scratch:
        copy = Path(scratch) / "src"
        build = Path(scratch) / "build"
        shutil.copytree(APP_SRC, copy)
        configured = run(
            ["cmake", "-S", str(UNIT), "-B", str(build), "-G", "Ninja",
             f"-DPROVGUARD_APP_SRC={copy}"]
        )  # fmt: skip
        if configured.returncode != 0 or build_and_test(build) != "survived":
            print("c_mutate: the unit tests do not pass on the unmutated sources", file=sys.stderr)
            print(configured.stdout + configured.stderr, file=sys.stderr)
            return 2
        print(f"mutating {', '.join(s.name for s in sources)} (scratch copy in {scratch})")
        outcomes = mutate_all(sources, copy, build, read_equivalents(EQUIVALENT_FILE))
    return report(outcomes, args.min_score)


if __name__ == "__main__":
    sys.exit(main())
