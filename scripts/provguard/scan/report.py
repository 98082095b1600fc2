"""Report writers: text for people, JSON for scripts, SARIF 2.1.0 for GitHub code scanning.

None of them ever carries key material: a finding is named by file, address, encoding and the
SHA-256 fingerprint of the key's public key info (or of the certificate).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from provguard import __version__
from provguard.scan.model import Finding, Kind, ScanResult

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


def describe(finding: Finding) -> str:
    where = [f"0x{finding.address:08X}"]
    if finding.section:
        where.append(f"in {finding.section}")
    if finding.symbol:
        where.append(f"symbol {finding.symbol}")
    known = f", known from {finding.known}" if finding.known else ""
    return (
        f"{finding.kind.value} {finding.encoding}, {finding.length} bytes at {' '.join(where)}, "
        f"{'key' if finding.kind is Kind.PRIVATE_KEY else 'certificate'} {finding.key}{known}"
    )


def write_text(result: ScanResult, fail_on: Kind) -> str:
    lines = []
    for finding in result.findings:
        flag = "FAIL" if finding.kind.rank >= fail_on.rank else "note"
        lines.append(f"{finding.path}: {flag}: {describe(finding)}")
    for finding in result.allowed:
        lines.append(f"{finding.path}: allowed: {describe(finding)}")
    for item in result.unchecked:
        lines.append(f"{item.path}: UNCHECKED: {item.reason}")
    failing = len(result.failing(fail_on))
    keys = sum(1 for f in result.findings if f.kind is Kind.PRIVATE_KEY)
    certs = len(result.findings) - keys
    verdict = (
        "FAIL" if failing else ("NOT CLEAN (unchecked content)" if result.unchecked else "clean")
    )
    if failing and result.unchecked:
        verdict += f", and {len(result.unchecked)} part(s) unchecked"
    lines.append(
        f"scanned {len(result.scanned)} file(s) and archive member(s), "
        f"{sum(s.size for s in result.scanned)} bytes: "
        f"{keys} private key(s), {certs} certificate(s), {len(result.allowed)} allowed; "
        f"fail on {fail_on.value}: {verdict}"
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
        "key": finding.key,
        "known": finding.known,
        "fileOffset": finding.file_offset,
    }


def write_json(result: ScanResult, fail_on: Kind) -> str:
    document = {
        "findings": [_finding_json(f) for f in result.findings],
        "allowed": [_finding_json(f) for f in result.allowed],
        "unchecked": [{"path": u.path, "reason": u.reason} for u in result.unchecked],
        "scanned": [{"path": s.path, "format": s.format, "size": s.size} for s in result.scanned],
        "failOn": fail_on.value,
    }
    return json.dumps(document, indent=2) + "\n"


def _artifact(path: str) -> tuple[str, str | None]:
    """(file on disk, archive member) for a path such as `dfu.zip!app_update.bin`."""
    outer, _, member = path.partition("!")
    return outer, member or None


def _location(path: str, finding: Finding | None) -> dict[str, Any]:
    outer, member = _artifact(path)
    region: dict[str, Any] = {"startLine": 1}
    if finding is not None:
        if finding.line is not None:
            region["startLine"] = finding.line
        if finding.file_offset is not None and member is None:
            region["byteOffset"] = finding.file_offset
            region["byteLength"] = finding.length
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": quote(outer.replace("\\", "/"))},
        "region": region,
    }
    if finding is not None:
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
    results: list[dict[str, Any]] = []
    for finding in result.findings:
        rule = f"provguard/{finding.kind.value}"
        results.append(
            {
                "ruleId": rule,
                "ruleIndex": rule_ids.index(rule),
                "level": "error" if finding.kind.rank >= fail_on.rank else "warning",
                "message": {"text": f"{finding.path}: {describe(finding)}"},
                "locations": [_location(finding.path, finding)],
                "partialFingerprints": {"provguardKey/v1": f"{finding.kind.value}:{finding.key}"},
            }
        )
    for item in result.unchecked:
        results.append(
            {
                "ruleId": "provguard/unchecked",
                "ruleIndex": rule_ids.index("provguard/unchecked"),
                "level": "error",
                "message": {"text": f"{item.path}: {item.reason}"},
                "locations": [_location(item.path, None)],
            }
        )
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
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"


WRITERS: dict[str, Callable[[ScanResult, Kind], str]] = {
    "text": write_text,
    "json": write_json,
    "sarif": write_sarif,
}
