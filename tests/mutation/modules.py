"""What `make mutation` mutates, and which tests it runs against each part.

Each entry names the files mutated (relative to scripts/provguard) and the test files run
against its mutants (glob patterns, expanded at run time so new test files are picked up).

The selection is the tests that exercise the part in-process. It leaves out the suites that
cross-compile firmware with arm-none-eabi-gcc or configure CMake projects (test_firmware_*),
the demo (test_demo.py) and west (test_west.py): they take minutes per run, and they only
call provguard through a subprocess, which mutmut cannot attribute to a function (it maps
tests to functions by tracing calls inside its own process). test_cli.py is in every
selection because the commands are thin wrappers that reach every part.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    name: str
    mutate: tuple[str, ...]
    tests: tuple[str, ...]
    #: Tests left out (pytest node ids), each for a reason given beside it.
    deselect: tuple[str, ...] = ()
    #: A part too large for one run is run as these parts, one mutmut run each (`runs`); its
    #: own `mutate` and `tests` are then what they mutate and select together.
    pieces: tuple[Part, ...] = ()


#: Times a SIGINT against a child process's AT exchange: under mutmut (a slower, instrumented
#: copy of the package, two workers on a loaded machine) the child misses its 3 s answer window
#: and the test fails without any mutant, which stops the whole run.
CTRL_C_TIMING = (
    "tests/test_provision_faults.py::test_ctrl_c_mid_write_says_what_was_written_and_the_mode"
)


#: Bounds a child's peak RSS: the instrumented copy mutmut runs is larger than the package, so
#: the bound fails without any mutant and stops the whole run.
ZIP_BOMB_RSS = "tests/test_scan_archive.py::test_zip_bomb_is_read_in_bounded_memory"
#: Tests written for the survivors of scan's pieces.
SCAN_NEW_TESTS = (
    "tests/test_scan_mutation_*.py",
    "tests/test_scan_*_rules.py",
    # the scale and speed tests pin results too (HEX in any record order, line mapping, the pool)
    "tests/test_scan_scale.py",
    "tests/test_scan_perf_*.py",
)


def _split(name: str, *pieces: Part) -> Part:
    """A part run as `pieces` (`make mutation MODULE=scan` runs them all): too many mutants for
    one run, and each piece needs only the tests that reach its files."""
    return Part(
        name=name,
        mutate=tuple(m for p in pieces for m in p.mutate),
        tests=tuple(dict.fromkeys(t for p in pieces for t in p.tests)),
        deselect=tuple(dict.fromkeys(d for p in pieces for d in p.deselect)),
        pieces=pieces,
    )


PARTS: tuple[Part, ...] = (
    Part(
        name="at",
        mutate=("at.py",),
        tests=("tests/test_at*.py", "tests/test_provision*.py", "tests/test_cli.py"),
        deselect=(CTRL_C_TIMING,),
    ),
    Part(
        name="credentials",
        mutate=("credentials/*.py",),
        tests=(
            "tests/test_credentials*.py",
            "tests/test_check*.py",
            "tests/test_json_export*.py",
            "tests/test_render*.py",
            "tests/test_at*.py",
            "tests/test_cli.py",
        ),
    ),
    Part(
        name="render",
        mutate=("render.py",),
        tests=(
            "tests/test_render*.py",
            "tests/test_header*.py",
            "tests/test_scan_hooks.py",
            "tests/test_cli.py",
        ),
    ),
    Part(
        name="provision",
        mutate=("provision.py",),
        tests=("tests/test_provision*.py", "tests/test_modem*.py", "tests/test_cli.py"),
        deselect=(CTRL_C_TIMING,),
    ),
    Part(
        name="probe",
        mutate=("probe.py",),
        tests=("tests/test_probe*.py", "tests/test_mqtt*.py", "tests/test_cli.py"),
    ),
    Part(
        name="enroll",  # production enrollment: the key born in the modem, the CSR, the ledger
        mutate=("enroll/*.py", "ledger.py"),
        tests=(
            "tests/test_enroll*.py",
            "tests/test_ledger*.py",
            "tests/test_modemsim.py",
            "tests/test_cli.py",
        ),
    ),
    _split(
        "scan",
        # Each piece runs the tests that reach its files in-process; the new tests written for
        # its survivors are test_scan_mutation_*.py and test_scan_*_rules.py.
        Part(
            name="scan-keys",  # what decides whether a key or certificate is found
            mutate=("scan/known.py", "scan/keyset.py", "scan/detectors.py"),
            tests=(
                "tests/test_scan.py",
                "tests/test_scan_keyset_*.py",  # the parallel loader's tests too
                "tests/test_scan_formats.py",
                "tests/test_scan_gate.py",
                *SCAN_NEW_TESTS,
                "tests/test_cli.py",
            ),
        ),
        Part(
            name="scan-readers",
            mutate=("scan/hexfile.py", "scan/elf.py", "scan/mcuboot.py", "scan/readers.py"),
            tests=(
                "tests/test_scan.py",
                "tests/test_scan_formats.py",
                "tests/test_scan_gate.py",
                "tests/test_scan_mcuboot.py",
                "tests/test_scan_sysbuild.py",
                *SCAN_NEW_TESTS,
                "tests/test_cli.py",
            ),
        ),
        Part(
            name="scan-containers",
            mutate=("scan/archive.py", "scan/walk.py"),
            tests=(
                "tests/test_scan_archive.py",
                "tests/test_scan_walk.py",
                "tests/test_scan_formats.py",
                "tests/test_scan_gate.py",
                *SCAN_NEW_TESTS,
                "tests/test_cli.py",
            ),
            deselect=(ZIP_BOMB_RSS,),
        ),
        Part(
            name="scan-engine",  # from files to findings and the verdict, on one core or many
            mutate=(
                "scan/__init__.py",
                "scan/model.py",
                "scan/engine.py",
                "scan/allow.py",
                "scan/build.py",
                "scan/parallel.py",
            ),
            tests=("tests/test_scan*.py", "tests/test_cli.py"),
            deselect=(ZIP_BOMB_RSS,),
        ),
        Part(
            name="scan-report",  # what a person and a CI system read: text, JSON, SARIF, HTML
            mutate=("scan/report.py", "scan/html.py", "scan/progress.py"),
            tests=("tests/test_scan*.py", "tests/test_cli.py"),
            deselect=(ZIP_BOMB_RSS,),
        ),
    ),
)


def runs(part: Part) -> tuple[Part, ...]:
    """The parts mutmut runs for `part`: its pieces, or itself."""
    return part.pieces or (part,)


def part_named(name: str) -> Part:
    """A part of PARTS, or one piece of a part that is split (`scan-keys`)."""
    for part in PARTS:
        for named in (part, *part.pieces):
            if named.name == name:
                return named
    known = ", ".join(n.name for p in PARTS for n in (p, *p.pieces))
    raise KeyError(f"unknown MODULE {name!r}; known: {known}")
