"""The README documents every problem code `check` can report, and nothing it cannot."""

from __future__ import annotations

import re
from pathlib import Path

from provguard.credentials import checks

ROOT = Path(__file__).parents[1]


def emitted_codes() -> set[str]:
    source = Path(checks.__file__).read_text()
    raw = re.findall(r'out\.(?:error|warning|info)\(\s*(f?"[^"]+")', source)
    codes: set[str] = set()
    for literal in raw:
        text = literal.removeprefix("f").strip('"')
        if "{what}" in text:
            codes |= {text.replace("{what}", what) for what in ("ca", "cert")}
        else:
            codes.add(text)
    return codes


def documented_codes() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| code | severity | what it means |")[1].split("\n\n")[0]
    return {
        code
        for row in table.splitlines()[2:]
        for code in re.findall(r"`([a-z0-9-]+)`", row.split("|")[1])
    }


def test_every_check_code_is_documented() -> None:
    emitted = emitted_codes()
    assert len(emitted) > 30
    assert emitted == documented_codes()
