"""`provguard scan --format html`: what a person reads in the page's tables, without a browser.

The page is built from `ScanResult` values made in each test and parsed with `html.parser` into a
small tree. The tests assert the verdict (text and the class that colours it), the counts line,
the header and every cell of the findings and coverage tables, the unchecked list, and that no
text stands where a browser would show it outside any element meant to hold it (before the
doctype, between table rows, after the page). Expected values come from the values built here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

from provguard.scan.html import write_html
from provguard.scan.model import AddressRange, Coverage, Finding, Kind, ScanResult, Unchecked

VOID = {"meta", "br", "img", "link", "input", "hr", "col", "area", "base", "wbr", "source"}
#: elements whose own text a browser moves elsewhere or shows outside any box (stray text)
NO_TEXT = {"html", "head", "body", "table", "thead", "tbody", "tr", "ul", "svg", "g"}

FINDINGS_HEADER = [
    "status",
    "file",
    "partition",
    "address",
    "file offset",
    "section / symbol",
    "kind",
    "encoding",
    "key fingerprint",
    "known from",
    "allowed by",
]
COVERAGE_HEADER = ["input", "state", "format", "bytes", "searched", "flash ranges", "notes"]


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def all(self, tag: str) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag:
                    found.append(child)
                found += child.all(tag)
        return found

    def by_id(self, ident: str) -> Node:
        (node,) = [n for n in self.walk() if n.attrs.get("id") == ident]
        return node

    def walk(self) -> list[Node]:
        nodes = []
        for child in self.children:
            if isinstance(child, Node):
                nodes += [child, *child.walk()]
        return nodes


class Page(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__()
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.stray: list[str] = []
        self.doctype: str | None = None
        self.first = page.split("\n", 1)[0]
        self.feed(page)
        self.close()

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert any(n.tag == tag for n in self.stack[1:]), f"</{tag}> closes nothing"
        while self.stack.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        top = self.stack[-1]
        if data.strip() and (top is self.root or top.tag in NO_TEXT):
            self.stray.append(data)
        top.children.append(data)


def table(page: Page, ident: str) -> tuple[list[str], list[tuple[str | None, list[str]]]]:
    """The header cells and, for each body row, its class and cell texts."""
    node = page.root.by_id(ident)
    (thead,) = node.all("thead")
    (tbody,) = node.all("tbody")
    header = [th.text() for th in thead.all("th")]
    rows = [(tr.attrs.get("class"), [td.text() for td in tr.all("td")]) for tr in tbody.all("tr")]
    return header, rows


def render(result: ScanResult, fail_on: Kind = Kind.PRIVATE_KEY) -> Page:
    page = Page(write_html(result, fail_on))
    assert page.stray == []  # every piece of text is inside an element that shows it
    assert page.stack == [page.root]  # every element was closed
    assert page.doctype is not None
    assert page.doctype.lower() == "doctype html"
    assert page.first.lower() == "<!doctype html>"  # first thing on the page: standards mode
    return page


def fingerprint(n: int) -> str:
    return "SHA256:" + f"{n:02x}" * 32


def hexa(value: int) -> str:
    return f"0x{value:08X}"


# --- the page: verdict, title, counts, policy ---------------------------------------------------


def verdict(page: Page) -> tuple[str, str | None]:
    node = page.root.by_id("verdict")
    return node.text(), node.attrs.get("class")


def counts(page: Page) -> str:
    (h1,) = page.root.all("h1")
    assert h1.text() == "provguard scan"
    body = page.root.all("body")[0]
    paragraphs = [n for n in body.children if isinstance(n, Node) and n.tag == "p"]
    return paragraphs[0].text()


def test_failing_page_says_fail_in_red_and_counts_keys_certificates_allowed_unchecked() -> None:
    keys = [
        Finding(f"img{i}.hex", Kind.PRIVATE_KEY, "PKCS#8 DER", 0x1000 * (i + 1), 138, None, None,
                fingerprint(i))
        for i in range(2)
    ]  # fmt: skip
    cert = Finding("img0.hex", Kind.CERTIFICATE, "DER", 0x9000, 400, None, None, fingerprint(9))
    allowed = Finding(
        "img1.hex", Kind.PRIVATE_KEY, "PEM", 0xA000, 241, None, None, fingerprint(7),
        allowed_by="key " + fingerprint(7),
    )  # fmt: skip
    gap = Unchecked("img1.hex", "a record that is not a record", line=4)
    coverage = (
        Coverage("img0.hex", "intel-hex", 1234, 1000, findings=2),
        Coverage("img1.hex", "intel-hex", 4321, 4000, unchecked=(gap,), findings=1),
        Coverage("notes.txt", "text", 55, 55),
    )
    result = ScanResult((*keys, cert), (allowed,), coverage)
    page = render(result)

    assert verdict(page) == ("FAIL", "verdict fail")
    (title,) = page.root.all("title")
    assert title.text() == "provguard scan: FAIL"
    total = 1234 + 4321 + 55
    assert counts(page) == (
        f"3 file(s) and archive member(s), {total} bytes; "
        f"{len(keys)} private key(s), 1 certificate(s), 1 allowed, 1 part(s) unchecked; "
        "fails on private-key."
    )
    h2 = [n.text() for n in page.root.all("h2")]
    assert h2 == ["Findings (3, 1 allowed)", "Unchecked (1)", "Coverage", "Flash maps"]


def test_not_clean_and_clean_pages_say_so_in_their_colours() -> None:
    gap = Unchecked("zephyr.hex", "the file is empty")
    unchecked = ScanResult((), (), (Coverage("zephyr.hex", "intel-hex", 0, 0, unchecked=(gap,)),))
    page = render(unchecked)
    assert verdict(page) == ("NOT CLEAN (unchecked)", "verdict unchecked")
    (title,) = page.root.all("title")
    assert title.text() == "provguard scan: NOT CLEAN (unchecked)"

    # a certificate does not fail a gate that fails on private keys: the page is clean
    cert = Finding("app.bin", Kind.CERTIFICATE, "DER", None, 400, None, None, fingerprint(3))
    clean = ScanResult((cert,), (), (Coverage("app.bin", "raw", 4096, 4096, findings=1),))
    page = render(clean)
    assert verdict(page) == ("clean", "verdict clean")
    (title,) = page.root.all("title")
    assert title.text() == "provguard scan: clean"
    assert counts(page) == (
        "1 file(s) and archive member(s), 4096 bytes; 0 private key(s), 1 certificate(s), "
        "0 allowed, 0 part(s) unchecked; fails on private-key."
    )
    _, rows = table(page, "findings")
    assert [(cls, cells[0]) for cls, cells in rows] == [("note", "note")]
    # the same certificate fails a gate that fails on certificates
    page = render(clean, Kind.CERTIFICATE)
    assert verdict(page) == ("FAIL", "verdict fail")
    _, rows = table(page, "findings")
    assert [(cls, cells[0]) for cls, cells in rows] == [("fail", "FAIL")]


def test_page_forbids_every_fetch_with_its_content_security_policy() -> None:
    page = render(ScanResult((), (), (Coverage("a.bin", "raw", 1, 1),)))
    (html,) = page.root.all("html")
    assert html.attrs == {"lang": "en"}
    metas = page.root.all("meta")
    assert {"charset": "utf-8"} in [m.attrs for m in metas]
    (csp,) = [
        m for m in metas if (m.attrs.get("http-equiv") or "").lower() == "content-security-policy"
    ]
    assert set(csp.attrs) == {"http-equiv", "content"}
    policy = {
        name: values
        for name, *values in (part.split() for part in (csp.attrs["content"] or "").split(";"))
    }
    assert policy == {
        "default-src": ["'none'"],
        "style-src": ["'unsafe-inline'"],
        "img-src": ["data:"],
    }


def test_no_finding_says_so_in_words() -> None:
    page = render(ScanResult((), (), (Coverage("a.bin", "raw", 64, 64),)))
    (h2, *_) = page.root.all("h2")
    assert h2.text() == "Findings (0, 0 allowed)"
    body = page.root.all("body")[0]
    paragraphs = [n.text() for n in body.children if isinstance(n, Node) and n.tag == "p"]
    assert "No private key or certificate was found." in paragraphs
    assert [n for n in page.root.walk() if n.attrs.get("id") == "findings"] == []
    assert [n for n in page.root.walk() if n.attrs.get("id") == "unchecked"] == []


# --- the findings table ------------------------------------------------------------------------


def test_findings_table_shows_every_column_of_every_finding_and_allowed_one() -> None:
    full = Finding(
        path='build/"merged".hex',
        kind=Kind.PRIVATE_KEY,
        encoding="PKCS#8 DER",
        address=0x0003_1000,
        length=138,
        section=".rodata",
        symbol="device_key",
        key=fingerprint(1),
        known="keys/device.key",
        file_offset=0x2_0041,
        partition="app",
    )
    bare = Finding(
        path="loose.bin",
        kind=Kind.CERTIFICATE,
        encoding="PEM",
        address=None,
        length=700,
        section=None,
        symbol="only_symbol",
        key=fingerprint(2),
    )
    section_only = Finding(
        path="app.elf",
        kind=Kind.PRIVATE_KEY,
        encoding="SEC1 DER",
        address=0x0000_C000,
        length=121,
        section=".data",
        symbol=None,
        key=fingerprint(4),
        file_offset=0,
    )
    allowed = Finding(
        path="app.elf",
        kind=Kind.CERTIFICATE,
        encoding="DER",
        address=0x0000_D000,
        length=400,
        section=None,
        symbol=None,
        key=fingerprint(3),
        allowed_by="symbol ca_cert",
        partition="settings",
    )
    coverage = (
        Coverage(full.path, "intel-hex", 0x40000, 0x40000, findings=1),
        Coverage("loose.bin", "raw", 2048, 2048, findings=1),
        Coverage("app.elf", "elf", 9000, 8000, findings=1),
    )
    page = render(ScanResult((full, bare, section_only), (allowed,), coverage))
    header, rows = table(page, "findings")
    assert header == FINDINGS_HEADER
    assert rows == [
        (
            "fail",
            ["FAIL", full.path, "app", hexa(0x0003_1000), str(0x2_0041), ".rodata / device_key",
             "private-key", "PKCS#8 DER", fingerprint(1), "keys/device.key", ""],
        ),
        (
            "note",
            ["note", "loose.bin", "", "", "", "only_symbol", "certificate", "PEM", fingerprint(2),
             "", ""],
        ),
        (
            "fail",
            ["FAIL", "app.elf", "", hexa(0xC000), "0", ".data", "private-key", "SEC1 DER",
             fingerprint(4), "", ""],
        ),
        (
            "allowed",
            ["allowed", "app.elf", "settings", hexa(0xD000), "", "", "certificate", "DER",
             fingerprint(3), "", "symbol ca_cert"],
        ),
    ]  # fmt: skip
    # a file name with a quote stays whole inside an attribute too (the map's label)
    labels = [svg.attrs.get("aria-label") for svg in page.root.all("svg")]
    assert labels == [f"flash map of {full.path}", "flash map of app.elf"]


# --- the unchecked list ------------------------------------------------------------------------


def test_unchecked_list_names_each_part_with_its_line_and_offset_when_known() -> None:
    parts = (
        Unchecked("a.hex", "bad checksum", line=7),
        Unchecked("a.hex", "truncated record", line=9, offset=312),
        Unchecked("b.zip", "member damaged", offset=4096),
        Unchecked("c.bin", "cannot read"),
    )
    coverage = (
        Coverage("a.hex", "intel-hex", 400, 300, unchecked=parts[:2]),
        Coverage("b.zip", "zip", 8192, 0, unchecked=parts[2:3]),
        Coverage("c.bin", "raw", 10, 0, unchecked=parts[3:]),
    )
    page = render(ScanResult((), (), coverage))
    ul = page.root.by_id("unchecked")
    items = [li.text() for li in ul.all("li")]
    assert items == [
        "a.hex: bad checksum (line 7)",
        "a.hex: truncated record (line 9) (offset 312)",
        "b.zip: member damaged (offset 4096)",
        "c.bin: cannot read",
    ]
    assert [b.text() for li in ul.all("li") for b in li.all("b")] == [p.path for p in parts]


# --- the coverage table ------------------------------------------------------------------------


def ranges_of(count: int) -> tuple[AddressRange, ...]:
    """`count` ranges 0x100 bytes long, 0x1000 apart; every third one without a label."""
    return tuple(
        AddressRange(0x1000 * i, 0x1000 * i + 0x100, None if i % 3 == 1 else f"run{i}")
        for i in range(count)
    )


def shown(ranges: tuple[AddressRange, ...]) -> list[str]:
    return [f"{hexa(r.start)}-{hexa(r.end)}" + (f" {r.label}" if r.label else "") for r in ranges]


@pytest.mark.parametrize("count", [1, 11, 12, 13, 14, 30])
def test_coverage_shows_the_first_twelve_ranges_and_how_many_more(count: int) -> None:
    ranges = ranges_of(count)
    page = render(ScanResult((), (), (Coverage("z.hex", "intel-hex", 100, 100, ranges=ranges),)))
    header, rows = table(page, "coverage")
    assert header == COVERAGE_HEADER
    ((_, cells),) = rows
    listed = shown(ranges[:12])
    if count > 12:
        listed.append(f"+{count - 12} more")
    assert cells[5] == ", ".join(listed)


def test_coverage_row_shows_state_format_sizes_ranges_and_every_note() -> None:
    gaps = (
        Unchecked("fw.zip", "member x.bin: damaged"),
        Unchecked("fw.zip", "member y.bin: too large"),
    )
    coverage = (
        Coverage(
            "fw.zip", "zip", 5000, 4000, members=("x.bin", "y.bin", "z.hex"),
            notes=("stored, not compressed",), unchecked=gaps,
        ),
        Coverage("z.hex", "intel-hex", 700, 256, ranges=(AddressRange(0x10, 0x110),), findings=1),
        Coverage("plain.bin", "raw", 64, 64),
    )  # fmt: skip
    key = Finding("z.hex", Kind.PRIVATE_KEY, "PEM", 0x10, 241, None, None, fingerprint(5))
    page = render(ScanResult((key,), (), coverage))
    _, rows = table(page, "coverage")
    assert rows == [
        (
            None,
            ["fw.zip", "unchecked", "zip", "5000", "4000", "",
             "stored, not compressed; member x.bin: damaged; member y.bin: too large; "
             "3 member(s)"],
        ),
        (None, ["z.hex", "found", "intel-hex", "700", "256", f"{hexa(0x10)}-{hexa(0x110)}", ""]),
        (None, ["plain.bin", "read in full", "raw", "64", "64", "", ""]),
    ]  # fmt: skip
