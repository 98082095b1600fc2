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


#: Times a SIGINT against a child process's AT exchange: under mutmut (a slower, instrumented
#: copy of the package, two workers on a loaded machine) the child misses its 3 s answer window
#: and the test fails without any mutant, which stops the whole run.
CTRL_C_TIMING = (
    "tests/test_provision_faults.py::test_ctrl_c_mid_write_says_what_was_written_and_the_mode"
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
        name="scan",
        mutate=("scan/*.py",),
        tests=("tests/test_scan*.py", "tests/test_cli.py"),
        # Bounds a child's peak RSS: the instrumented copy mutmut runs is larger than the
        # package, so the bound fails without any mutant and stops the whole run.
        deselect=("tests/test_scan_archive.py::test_zip_bomb_is_read_in_bounded_memory",),
    ),
)


def part_named(name: str) -> Part:
    for part in PARTS:
        if part.name == name:
            return part
    known = ", ".join(p.name for p in PARTS)
    raise KeyError(f"unknown MODULE {name!r}; known: {known}")
