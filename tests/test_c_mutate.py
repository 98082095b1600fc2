"""tests/mutation/c_mutate.py: the C mutants it makes (`make mutation-c` builds and runs them)."""

from __future__ import annotations

from pathlib import Path

from tests.mutation import c_mutate

SNIPPET = """\
#define LIMIT 4 /* if (x == 1) */
BUILD_ASSERT(LIMIT == 4,
\t     "limit < 5");
static int f(int x)
{
\t/* x == 2 is a comment */
\tif (x == 3) {
\t\tLOG_ERR("x == %d", x);
\t\t(void)g(x);
\t}
\treturn x < 0 ? x : -1;
}
"""


def mutated(operator: str) -> list[str]:
    return [m.mutated for m in c_mutate.generate("f.c", SNIPPET) if m.operator == operator]


def test_only_code_is_mutated() -> None:
    lines = {m.line for m in c_mutate.generate("f.c", SNIPPET)}
    # Not the #define, the BUILD_ASSERT (2 lines), the comment or the LOG_ERR call.
    assert lines == {7, 9, 11}


def test_each_operator() -> None:
    assert mutated("swap-comparison") == ["\tif (x != 3) {", "\treturn x >= 0 ? x : -1;"]
    assert mutated("negate-condition") == ["\tif (!(x == 3)) {"]
    assert mutated("drop-call") == ["\t\t;"]
    assert mutated("change-constant") == [
        "\tif (x == 4) {",
        "\treturn x < 1 ? x : -1;",
        "\treturn x < 0 ? x : -0;",
    ]


def test_apply_changes_one_line_and_keeps_the_rest() -> None:
    mutant = c_mutate.generate("f.c", SNIPPET)[0]
    result = c_mutate.apply(SNIPPET, mutant).splitlines()
    original = SNIPPET.splitlines()
    assert [i for i, (a, b) in enumerate(zip(original, result, strict=True)) if a != b] == [6]


def test_equivalents_are_read_by_key(tmp_path: Path) -> None:
    mutant = c_mutate.generate("f.c", SNIPPET)[0]
    listing = tmp_path / "equivalent-c.md"
    listing.write_text(f"# Why\n\n- `{mutant.key}`\n- not a key\n", encoding="utf-8")
    assert c_mutate.read_equivalents(listing) == frozenset({mutant.key})


def test_every_listed_equivalent_is_still_a_mutant_of_app_src() -> None:
    """A stale entry (its line was edited) would silently stop covering anything."""
    keys = {
        m.key
        for source in sorted(c_mutate.APP_SRC.glob("*.c"))
        for m in c_mutate.generate(source.name, source.read_text(encoding="utf-8"))
    }
    assert c_mutate.read_equivalents(c_mutate.EQUIVALENT_FILE) <= keys
