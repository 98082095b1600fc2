"""What keeps `provguard scan` fast at factory scale without changing what it reports (issue 10):
a start-up that imports only what the scan uses, the JSON report written without the standard
library's pure-Python indenting, and file names escaped without a loop per character."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from provguard.scan.archive import escape_name
from provguard.scan.report import dumps

#: Modules a scan of a clean file must not import: each costs start-up time on every build.
HEAVY = (
    "cryptography",
    "cryptography.x509",
    "provguard.credentials",
    "yaml",
    "multiprocessing",
    "concurrent.futures",
    "provguard.scan.html",
    "jinja2",
    "sqlalchemy",
)

_PROBE = """
import sys
from provguard.cli import main
code = main(sys.argv[1:])
print(" ".join(sorted(sys.modules)))
sys.exit(code)
"""


def _modules_after(*args: str | Path) -> tuple[int, set[str]]:
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )
    return run.returncode, set(run.stdout.splitlines()[-1].split())


def test_a_clean_scan_imports_no_cryptography_yaml_or_process_pool(tmp_path: Path) -> None:
    image = tmp_path / "app.bin"
    image.write_bytes(bytes(range(256)) * 64)  # no key, no certificate, no header of one
    (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
    (tmp_path / "lib.o").write_bytes(bytes(range(255, -1, -1)) * 64)
    for target, jobs in ((image, "1"), (tmp_path, "1"), (tmp_path, "2")):
        code, modules = _modules_after("scan", "--quiet", "--jobs", jobs, target)
        assert code == 0
        assert "provguard.scan.engine" in modules  # it did scan
        assert sorted(m for m in HEAVY if m in modules) == []


def test_a_scan_that_meets_a_key_still_confirms_it_with_cryptography(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    image = tmp_path / "app.bin"
    image.write_bytes(b"\xff" * 100 + der + b"\xff" * 100)
    code, modules = _modules_after("scan", "--quiet", "--format", "json", image)
    assert code == 1
    assert "cryptography" in modules


# --- the JSON report --------------------------------------------------------------------------


def _document(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 4 or roll < 0.5:
        return rng.choice(
            [
                None,
                True,
                False,
                0,
                -7,
                2**70,
                "",
                "plain",
                'quote " backslash \\ newline \n tab \t nul \x00',
                "caf\u00e9 \u65e5\u672c \U0001f511",
                "surrogate \udc80 of a non-UTF-8 name",
                "line separator \u2028",
            ]
        )
    if roll < 0.75:
        keys = ["path", "caf\u00e9", "a\nb", ""]
        return {
            f"{rng.choice(keys)}{i}": _document(rng, depth + 1) for i in range(rng.randrange(4))
        }
    return [_document(rng, depth + 1) for _ in range(rng.randrange(4))]


def test_json_report_text_is_what_the_standard_library_writes() -> None:
    rng = random.Random(20261203)
    for _ in range(3000):
        document = _document(rng)
        assert dumps(document) == json.dumps(document, indent=2) + "\n"


def test_json_report_falls_back_to_the_standard_library_for_other_values() -> None:
    documents: list[Any] = [{"ratio": 1.5}, [float("inf")], {1: "an int key"}, {"t": (1, (2, []))}]
    for document in documents:
        assert dumps(document) == json.dumps(document, indent=2) + "\n"


# --- file names -------------------------------------------------------------------------------


#: Unicode's Bidi_Control property (PropList.txt): marks, embeddings, overrides, isolates.
BIDI_CONTROL = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202E + 1), *range(0x2066, 0x2069 + 1)}


def _expected_escape(char: str) -> str:
    """Control characters (Cc), surrogates (Cs: undecodable bytes), the backslash, line and
    paragraph separators and the bidirectional controls are escaped; nothing else is."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    if unicodedata.category(char) in ("Cc", "Cs"):
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
    if char == "\\":
        return "\\\\"
    if unicodedata.category(char) in ("Zl", "Zp") or code in BIDI_CONTROL:
        return f"\\u{code:04x}"
    return char


def test_every_character_of_a_name_is_escaped_or_kept_as_the_report_rules_say() -> None:
    """Including the bidi isolates (U+2066..U+2069, "Trojan Source"), which reorder a report line
    as the embeddings and overrides do."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        expected = _expected_escape(char)
        assert escape_name(char) == expected, hex(code)
        assert escape_name(f"dir/{char}.bin") == f"dir/{expected}.bin", hex(code)


def test_every_public_name_of_the_scan_package_is_there_when_asked_for() -> None:
    """The package imports its modules when a name is first used; each name in `__all__` is still
    the defining module's own object, and `import *` gives them all."""
    import importlib  # noqa: PLC0415

    import provguard.scan as package  # noqa: PLC0415

    namespace: dict[str, Any] = {}
    exec("from provguard.scan import *", namespace)  # noqa: S102 - the import form users write
    for name in package.__all__:
        value = getattr(package, name)
        assert namespace[name] is value
        module = importlib.import_module(f"provguard.scan.{package._WHERE[name]}")
        assert getattr(module, name) is value
    assert sorted(package._WHERE) == sorted(package.__all__)
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018


def test_every_character_of_a_report_line_is_escaped_as_the_text_report_says() -> None:
    """`report.escape` keeps a name on one line that shows as it is: control characters (Cc: C0,
    DEL and C1, such as the 8-bit CSI that starts a terminal escape) as \\xNN, the backslash
    doubled, line and paragraph separators and Unicode's Bidi_Control characters as \\uNNNN, a
    byte that did not decode (its surrogate escape) as \\xNN of the byte; every other character
    as it is."""
    from provguard.scan.report import escape  # noqa: PLC0415

    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if 0xDC80 <= code <= 0xDCFF:
            expected = f"\\x{code - 0xDC00:02x}"
        elif unicodedata.category(char) == "Cc":
            expected = f"\\x{code:02x}"
        elif char == "\\":
            expected = "\\\\"
        elif unicodedata.category(char) in ("Zl", "Zp") or code in BIDI_CONTROL:
            expected = f"\\u{code:04x}"
        else:
            expected = char
        assert escape(f"a{char}b") == f"a{expected}b", hex(code)
