"""PEM framing: find the blocks of a text file and diagnose their base64 precisely.

Decoding is `base64`'s; this module only locates what is wrong (line, column, length) so the
user learns where a file is damaged instead of reading "could not deserialize".
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

_BEGIN = re.compile(r"^-----BEGIN ([A-Z0-9 ]+)-----$")
_END = re.compile(r"^-----END ([A-Z0-9 ]+)-----$")
_LOOSE_FRAME = re.compile(r"-{2,}\s*(BEGIN|END)\b")
_HEADER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):\s*(.*)$")
_BASE64_CHARS = re.compile(r"[^A-Za-z0-9+/=]")


@dataclass(frozen=True)
class TextLine:
    number: int  # 1-based, in the file as given
    text: str  # without line terminator or surrounding whitespace


@dataclass(frozen=True)
class PemBlock:
    label: str
    begin_line: int
    headers: tuple[tuple[str, str], ...]  # RFC 1421 headers, e.g. Proc-Type: 4,ENCRYPTED
    body: tuple[TextLine, ...]

    @property
    def encrypted_legacy(self) -> bool:
        return any(k == "Proc-Type" and "ENCRYPTED" in v for k, v in self.headers)

    def normalised(self) -> str:
        """The block as stored: BEGIN, headers, body lines, END, each ending in LF.

        END repeats the BEGIN label: a block cut before its END line, or ending in another label
        (both reported), is stored closed the way it opened."""
        lines = [f"-----BEGIN {self.label}-----"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.headers:
            lines.append("")
        lines += [line.text for line in self.body]
        lines.append(f"-----END {self.label}-----")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class FramingIssue:
    """A block that cannot be used as it is: where, and why."""

    line: int | None
    message: str


@dataclass(frozen=True)
class PemText:
    blocks: tuple[PemBlock, ...]
    outside: tuple[TextLine, ...]  # non-blank text around the blocks (dropped when stored)
    issues: tuple[FramingIssue, ...]


def looks_like_pem(data: bytes) -> bool:
    return b"-----BEGIN" in data or _LOOSE_FRAME.search(data.decode("latin-1")) is not None


def split_lines(text: str) -> list[TextLine]:
    """Lines numbered as an editor shows them, whatever the line endings (LF, CRLF, CR)."""
    return [
        TextLine(number, raw.strip())
        for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1)
    ]


def parse(text: str) -> PemText:
    blocks: list[PemBlock] = []
    outside: list[TextLine] = []
    issues: list[FramingIssue] = []
    lines = split_lines(text)
    i = 0
    while i < len(lines):
        line = lines[i]
        begin = _BEGIN.match(line.text)
        if begin is None:
            if _LOOSE_FRAME.search(line.text):
                issues.append(
                    FramingIssue(
                        line.number,
                        "malformed PEM frame line: it must read exactly "
                        "'-----BEGIN <LABEL>-----' or '-----END <LABEL>-----' "
                        "(five dashes, upper-case label)",
                    )
                )
            elif line.text:
                outside.append(line)
            i += 1
            continue
        block, i, block_issues = _read_block(lines, i, begin.group(1))
        blocks.append(block)
        issues.extend(block_issues)
    return PemText(tuple(blocks), tuple(outside), tuple(issues))


def _read_block(
    lines: list[TextLine], start: int, label: str
) -> tuple[PemBlock, int, list[FramingIssue]]:
    issues: list[FramingIssue] = []
    headers: list[tuple[str, str]] = []
    body: list[TextLine] = []
    i = start + 1
    while i < len(lines):
        line = lines[i]
        end = _END.match(line.text)
        if end is not None:
            if end.group(1) != label:
                issues.append(
                    FramingIssue(
                        line.number,
                        f"END label '{end.group(1)}' does not match BEGIN label '{label}' "
                        f"of line {lines[start].number}",
                    )
                )
            block = PemBlock(label, lines[start].number, tuple(headers), tuple(body))
            return block, i + 1, issues
        if _BEGIN.match(line.text):
            break  # a new block starts: this one was never closed
        header = _HEADER.match(line.text)
        if header is not None and not body:
            headers.append((header.group(1), header.group(2)))
        elif line.text:
            body.append(line)
        i += 1
    last = lines[i - 1].number  # the BEGIN line itself when nothing follows it
    issues.append(
        FramingIssue(
            last,
            f"truncated: the '{label}' block that begins on line {lines[start].number} has no "
            f"END line (the {'next block starts' if i < len(lines) else 'file ends'} "
            f"after line {last})",
        )
    )
    return PemBlock(label, lines[start].number, tuple(headers), tuple(body)), i, issues


@dataclass(frozen=True)
class BodyDamage:
    """Where and why a block's base64 body does not decode."""

    line: int
    message: str


def decode_body(block: PemBlock) -> bytes | BodyDamage:
    """The DER inside a block, or where and why its base64 is damaged."""
    if not block.body:
        return BodyDamage(block.begin_line, "the block has no body")
    total = sum(len(line.text) for line in block.body)
    for index, line in enumerate(block.body):
        bad = _BASE64_CHARS.search(line.text)
        if bad is not None:
            char = bad.group(0)
            shown = repr(char) if char.isprintable() and char.isascii() else f"U+{ord(char):04X}"
            return BodyDamage(
                line.number,
                f"base64 body damaged at column {bad.start() + 1}: {shown} is not a base64 "
                f"character (body is {total} characters on {len(block.body)} lines; it "
                f"decodes up to line {line.number})",
            )
        if "=" in line.text.rstrip("=") or ("=" in line.text and index != len(block.body) - 1):
            return BodyDamage(
                line.number,
                "base64 padding '=' in the middle of the body: the body was cut or two "
                "bodies were joined",
            )
    joined = "".join(line.text for line in block.body)
    if len(joined) - len(joined.rstrip("=")) > 2:
        return BodyDamage(block.body[-1].number, "base64 body ends with more than two '='")
    if len(joined) % 4:
        return BodyDamage(
            block.body[-1].number,
            f"base64 body is {len(joined)} characters, not a multiple of 4: characters are "
            f"missing (the body ends on line {block.body[-1].number}; truncated or edited?)",
        )
    # Only base64 characters, '=' at the end only and at most two of them, a multiple of 4
    # characters: such a body always decodes.
    return base64.b64decode(joined)
