"""Report writers: text for people, JSON for scripts, SARIF 2.1.0 for GitHub code scanning.

None of them ever carries key material: a finding is named by file, address, encoding and the
SHA-256 fingerprint of the key's public key info (or of the certificate).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any
from urllib.parse import quote

from provguard import __version__
from provguard.scan.model import (
    AddressRange,
    Coverage,
    Finding,
    Kind,
    ScanResult,
    State,
    Unchecked,
    Verdict,
)

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

RULES: dict[str, dict[str, Any]] = {
    "provguard/private-key": {
        "name": "PrivateKeyInImage",
        "shortDescription": {"text": "A private key is embedded in a firmware image"},
        "fullDescription": {
            "text": "The image holds a private key (PEM, DER, base64, hex or raw), confirmed by "
            "parsing it or by matching a key given with --key/--from. Anyone with the image has "
            "the key."
        },
        "help": {
            "text": "Provision the key into the modem (provguard provision) and build the release "
            "without it; allowlist it by fingerprint only if it is meant to be there."
        },
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security"], "security-severity": "9.0"},
    },
    "provguard/certificate": {
        "name": "CertificateInImage",
        "shortDescription": {"text": "A certificate is embedded in a firmware image"},
        "fullDescription": {
            "text": "The image carries an X.509 certificate; a release built without "
            "provisioning should not carry the client certificate either."
        },
        "help": {"text": "Build the release without compiled-in credentials."},
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": ["security"]},
    },
    "provguard/unchecked": {
        "name": "ImageNotCheckable",
        "shortDescription": {"text": "Part of an image cannot be checked"},
        "fullDescription": {
            "text": "An encrypted MCUboot payload (or encrypted archive member) cannot be "
            "searched for keys: scan the unencrypted build output instead."
        },
        "help": {"text": "Scan zephyr.elf or merged.hex from the same build."},
        "defaultConfiguration": {"level": "error"},
    },
}


_CONTROL = (
    {i: f"\\x{i:02x}" for i in [*range(0x20), *range(0x7F, 0xA0)]}  # C0, DEL and C1 controls
    | {0x5C: "\\\\"}
    # line and paragraph separators, and the bidi controls that reorder a line as it is shown
    | {i: f"\\u{i:04x}" for i in (0x2028, 0x2029, 0x061C, 0x200E, 0x200F)}
    | {i: f"\\u{i:04x}" for i in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}
)
_UNDECODED = re.compile("[\udc80-\udcff]")  # the surrogate escapes of undecodable bytes


def escape(name: str) -> str:
    """A file or member name as one safe line: control characters (C0, DEL, C1: newlines and
    terminal escapes), the backslash, line separators and bidi controls escaped, undecodable
    bytes (surrogate escapes of a non-UTF-8 name) as \\xNN."""
    text = name.translate(_CONTROL)
    if _UNDECODED.search(text):  # in C, not a loop over every character of every name
        text = "".join(
            f"\\x{ord(c) - 0xDC00:02x}" if "\udc80" <= c <= "\udcff" else c for c in text
        )
    return text


def _where(finding: Finding) -> str:
    parts = []
    if finding.address is not None:
        parts.append(f"0x{finding.address:08X}")
    elif finding.file_offset is not None:
        parts.append(f"file offset {finding.file_offset}")
    if finding.partition:
        parts.append(f"in partition {finding.partition}")
    if finding.section:
        parts.append(f"in {finding.section}" if parts else finding.section)
    if finding.symbol:
        parts.append(f"symbol {finding.symbol}")
    if finding.line is not None:
        parts.append(f"(line {finding.line})")
    return " ".join(parts)


def describe(finding: Finding) -> str:
    known = f", known from {escape(finding.known)}" if finding.known else ""
    allowed = f", allowed by `{escape(finding.allowed_by)}`" if finding.allowed_by else ""
    return (
        f"{finding.kind.value} {finding.encoding}, {finding.length} bytes at "
        f"{escape(_where(finding))}, "
        f"{'key' if finding.kind is Kind.PRIVATE_KEY else 'certificate'} {finding.key}"
        f"{known}{allowed}"
    )


def _ranges_text(ranges: tuple[AddressRange, ...], limit: int = 6) -> str:
    shown = [
        f"0x{r.start:08X}-0x{r.end:08X}" + (f" {r.label}" if r.label else "")
        for r in ranges[:limit]
    ]
    more = f", +{len(ranges) - limit} more" if len(ranges) > limit else ""
    return ", ".join(shown) + more


def coverage_line(item: Coverage) -> str:
    what = f"{item.format}, {item.size} bytes, {item.examined} searched"
    if item.ranges:
        what += f", ranges {_ranges_text(item.ranges)}"
    if item.members:
        what += f", {len(item.members)} member(s)"
    for note in item.notes:
        what += f"; {note}"
    return f"{escape(item.path)}: {item.state.value}: {escape(what)}"


def write_text(result: ScanResult, fail_on: Kind) -> str:
    lines = []
    for finding in result.findings:
        flag = "FAIL" if finding.kind.rank >= fail_on.rank else "note"
        lines.append(f"{escape(finding.path)}: {flag}: {describe(finding)}")
    for finding in result.allowed:
        lines.append(f"{escape(finding.path)}: allowed: {describe(finding)}")
    for item in result.unchecked:
        where = (
            f" (line {item.line})" if item.line is not None and "line" not in item.reason else ""
        )
        lines.append(f"{escape(item.path)}: UNCHECKED: {escape(item.reason)}{where}")
    lines += ["coverage:"] + ["  " + coverage_line(c) for c in result.coverage]
    lines += [f"  {escape(s.path)}: skipped: {escape(s.reason)}" for s in result.skipped]
    keys = sum(1 for f in result.findings if f.kind is Kind.PRIVATE_KEY)
    certs = len(result.findings) - keys
    verdict = result.verdict(fail_on)
    summary = verdict.value
    if verdict is Verdict.NOT_CLEAN:
        summary += f" ({len(result.unchecked)} part(s) unchecked)"
    elif verdict is Verdict.FAIL and result.unchecked:
        summary += f", and {len(result.unchecked)} part(s) unchecked"
    unread = sum(1 for c in result.coverage if c.state is State.UNCHECKED)
    lines.append(
        f"scanned {len(result.coverage)} file(s) and archive member(s), "
        f"{sum(c.size for c in result.coverage)} bytes ({unread} not read in full): "
        f"{keys} private key(s), {certs} certificate(s), {len(result.allowed)} allowed; "
        f"fail on {fail_on.value}: {summary}"
    )
    return "\n".join(lines) + "\n"


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "path": finding.path,
        "kind": finding.kind.value,
        "encoding": finding.encoding,
        "address": finding.address,
        "length": finding.length,
        "section": finding.section,
        "symbol": finding.symbol,
        "partition": finding.partition,
        "key": finding.key,
        "known": finding.known,
        "fileOffset": finding.file_offset,
        "line": finding.line,
        "allowedBy": finding.allowed_by,
    }


def _unchecked_json(item: Unchecked) -> dict[str, Any]:
    return {"path": item.path, "reason": item.reason, "line": item.line, "offset": item.offset}


def _range_json(item: AddressRange) -> dict[str, Any]:
    return {"start": item.start, "end": item.end, "label": item.label}


def _coverage_json(item: Coverage) -> dict[str, Any]:
    return {
        "path": item.path,
        "state": item.state.name.lower(),
        "format": item.format,
        "size": item.size,
        "examined": item.examined,
        "ranges": [_range_json(r) for r in item.ranges],
        "members": list(item.members),
        "unchecked": [_unchecked_json(u) for u in item.unchecked],
        "notes": list(item.notes),
        "partitions": [_range_json(r) for r in item.partitions],
        "findings": item.findings,
    }


def write_json(result: ScanResult, fail_on: Kind) -> str:
    document = {
        "verdict": result.verdict(fail_on).value,
        "findings": [_finding_json(f) for f in result.findings],
        "allowed": [_finding_json(f) for f in result.allowed],
        "unchecked": [_unchecked_json(u) for u in result.unchecked],
        "coverage": [_coverage_json(c) for c in result.coverage],
        "skipped": [{"path": s.path, "reason": s.reason} for s in result.skipped],
        # `result.scanned`, without a `Scanned` object for each of thousands of files
        "scanned": [{"path": c.path, "format": c.format, "size": c.size} for c in result.coverage],
        "failOn": fail_on.value,
    }
    # a non-UTF-8 file name is kept as its surrogate escapes, written as \udcNN
    return dumps(document)


def _artifact(path: str, coverage: dict[str, str]) -> tuple[str, str | None]:
    """(file on disk, archive member) for a path such as `dfu.zip!app_update.bin`: the file is
    the shortest prefix that is an archive with members listed (a member of a nested archive is
    `inner.zip!app.bin` of the outer file), else the part before the first '!' when it was
    scanned (an archive none of whose members was listed); a file whose name holds '!' is
    itself."""
    if path in coverage and "!" not in path:
        return path, None
    cut = 0
    while (cut := path.find("!", cut + 1)) > 0:
        if coverage.get(path[:cut]) == "archive":
            return path[:cut], path[cut + 1 :]
    cut = path.find("!")
    if cut > 0 and path[:cut] in coverage:
        return path[:cut], path[cut + 1 :]
    return path, None


def _uri(path: str) -> str:
    raw = path.replace("\\", "/").encode("utf-8", "surrogateescape")
    return quote(raw, safe="/:")


def _location(path: str, finding: Finding | None, coverage: dict[str, str]) -> dict[str, Any]:
    outer, member = _artifact(path, coverage)
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(outer)}}
    region: dict[str, Any] = {}
    if finding is not None and member is None:
        if finding.line is not None:
            region["startLine"] = finding.line  # a text file: Intel HEX, source, key file
        if finding.file_offset is not None:  # a binary file: bytes only, never lines (§3.30)
            region["byteOffset"] = finding.file_offset
            region["byteLength"] = finding.length
    if region:
        physical["region"] = region
    if finding is not None and finding.address is not None:
        physical["address"] = {"absoluteAddress": finding.address, "length": finding.length}
    location: dict[str, Any] = {"physicalLocation": physical}
    logical = []
    if member:
        logical.append({"name": member, "kind": "member"})
    if finding is not None and finding.symbol:
        logical.append({"name": finding.symbol, "kind": "variable"})
    if logical:
        location["logicalLocations"] = logical
    return location


def write_sarif(result: ScanResult, fail_on: Kind) -> str:
    rule_ids = list(RULES)
    formats = {c.path: ("archive" if c.members else c.format) for c in result.coverage}
    results: list[dict[str, Any]] = []
    for finding in result.findings:
        rule = f"provguard/{finding.kind.value}"
        results.append(
            {
                "ruleId": rule,
                "ruleIndex": rule_ids.index(rule),
                "level": "error" if finding.kind.rank >= fail_on.rank else "warning",
                "message": {"text": f"{escape(finding.path)}: {describe(finding)}"},
                "locations": [_location(finding.path, finding, formats)],
                "partialFingerprints": {"provguardKey/v1": f"{finding.kind.value}:{finding.key}"},
            }
        )
    notifications = []
    for item in result.unchecked:
        text = f"{escape(item.path)}: {escape(item.reason)}"
        results.append(
            {
                "ruleId": "provguard/unchecked",
                "ruleIndex": rule_ids.index("provguard/unchecked"),
                "level": "error",
                "message": {"text": text},
                "locations": [_location(item.path, None, formats)],
            }
        )
        notifications.append(
            {
                "level": "error",
                "message": {"text": text},
                "locations": [_location(item.path, None, formats)],
                "descriptor": {"id": "provguard/unchecked"},
            }
        )
    verdict = result.verdict(fail_on)
    document = {
        "version": "2.1.0",
        "$schema": SARIF_SCHEMA,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "provguard",
                        "version": __version__,
                        "rules": [{"id": rule_id, **rule} for rule_id, rule in RULES.items()],
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not result.unchecked,
                        "toolExecutionNotifications": notifications,
                        "properties": {"verdict": verdict.value},
                    }
                ],
                "results": results,
            }
        ],
    }
    return dumps(document)


def dumps(document: Any) -> str:
    """`json.dumps(document, indent=2)` and a newline, the same text in a third of the time (the
    standard library indents in pure Python: for a tree of thousands of files that is a good part
    of a scan). Strings are escaped by the standard library's own C encoder."""
    out: list[str] = []
    try:
        text = _scalar(document)
        if text is None:
            _emit(document, "\n", out)
        else:
            out.append(text)
    except TypeError:  # a value this writer does not know (a float): the standard library's
        return json.dumps(document, indent=2) + "\n"
    out.append("\n")
    return "".join(out)


def _scalar(value: Any) -> str | None:
    """A string, int, bool or None as JSON; None for anything else (a container)."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is dict or kind is list or kind is tuple:
        return None if value else ("{}" if kind is dict else "[]")
    raise TypeError(f"not written by this writer: {kind.__name__}")


def _emit(value: Any, newline: str, out: list[str]) -> None:
    """The container `value` as `json.dumps(..., indent=2)` writes it at the depth `newline` (a
    line break and the indentation of the line `value` starts on) ends with, into `out`."""
    inner = newline + "  "
    separator = ("{" if type(value) is dict else "[") + inner
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError("a key that is not a string")
            text = _scalar(item)
            if text is None:
                out.append(separator + encode_basestring_ascii(key) + ": ")
                _emit(item, inner, out)
            else:
                out.append(separator + encode_basestring_ascii(key) + ": " + text)
            separator = "," + inner
        out.append(newline + "}")
    else:
        for item in value:
            text = _scalar(item)
            if text is None:
                out.append(separator)
                _emit(item, inner, out)
            else:
                out.append(separator + text)
            separator = "," + inner
        out.append(newline + "]")


WRITERS: dict[str, Callable[[ScanResult, Kind], str]] = {
    "text": write_text,
    "json": write_json,
    "sarif": write_sarif,
}
