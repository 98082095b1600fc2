"""`provguard scan --format html -o report.html`, looked at in a real browser.

Debian's chromium runs headless under Selenium with the system chromedriver given explicitly (so
Selenium Manager never downloads anything). The tests assert what a person sees: the verdict, one
marker per finding on the flash map, a marker's tooltip (its SVG <title>) naming the address, and
that the page fetched nothing. A screenshot of each page is kept under build/test-artifacts/.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from intelhex import IntelHex
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from provguard.cli import main
from provguard.scan.html import write_html
from provguard.scan.model import AddressRange, Coverage, Finding, Kind, ScanResult, Unchecked
from tests import factories as f

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "build" / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
UICR = 0x00FF8000

PARTITIONS = """\
mcuboot:
  address: 0x0
  end_address: 0xc000
  region: flash_primary
  size: 0xc000
app:
  address: 0xc000
  end_address: 0xf0000
  region: flash_primary
  size: 0xe4000
settings_storage:
  address: 0xf8000
  end_address: 0x100000
  region: flash_primary
  size: 0x8000
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver are required in CI (.ci/install-deps)")
        pytest.skip("needs Debian's chromium and chromium-driver")
    # Service(executable_path) makes Selenium skip Selenium Manager: nothing is downloaded
    # (selenium/webdriver/common/driver_finder.py, "Skipping Selenium Manager").
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1400")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def look(browser: object, page: Path, name: str) -> object:
    """Open the page as a person would (file://) and keep a screenshot of it."""
    assert isinstance(browser, WebDriver)
    browser.get(page.resolve().as_uri())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"scan-report-{name}.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    return browser


def scan_html(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: object) -> Path:
    report = tmp_path / "report.html"
    capsys.readouterr()  # what the test printed before
    code = main(["scan", "--format", "html", "-o", str(report), "--quiet", *map(str, args)])
    out = capsys.readouterr()
    assert out.out == ""  # the page went to the file
    assert report.exists(), out.err
    report.with_suffix(".code").write_text(str(code))
    return report


def test_failing_build_shows_fail_a_marker_per_finding_and_the_address_on_hover(
    browser: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f.ec_key()
    key_file = tmp_path / "device.key"
    key_file.write_bytes(f.key_pem(key))
    rng = random.Random(7)
    build = tmp_path / "build"
    build.mkdir()
    (build / "partitions.yml").write_text(PARTITIONS)
    planted = {  # flash address -> what is there (the key in three encodings)
        0x00002000: f.key_der(key),  # in mcuboot
        0x00031000: f.key_der(key, pkcs8=False),  # in app
        UICR + 0x100: key.private_numbers().private_value.to_bytes(32, "little"),
    }
    image = IntelHex()
    image.frombytes(rng.randbytes(0x40000), offset=0)
    image.frombytes(rng.randbytes(0x1000), offset=UICR)
    for address, blob in planted.items():
        for i, byte in enumerate(blob):
            image[address + i] = byte
    image.write_hex_file(str(build / "merged.hex"))
    # a second input whose name a browser would take for markup
    hostile = build / 'evil<img src=x onerror=alert(1)>&"\x1b.bin'
    hostile.write_bytes(rng.randbytes(4096))

    report = scan_html(tmp_path, capsys, build, "--key", key_file)
    assert report.with_suffix(".code").read_text() == "1"
    html = report.read_text()
    f.assert_no_key_material(html, key)
    page = look(browser, report, "fail")

    assert page.find_element(By.ID, "verdict").text == "FAIL"  # type: ignore[attr-defined]
    markers = page.find_elements(By.CSS_SELECTOR, "svg.map g.marker")  # type: ignore[attr-defined]
    assert len(markers) == len(planted)
    tips = sorted(
        m.find_element(By.TAG_NAME, "title").get_attribute("textContent") for m in markers
    )
    for address, tip in zip(sorted(planted), tips, strict=True):
        assert tip.startswith(f"0x{address:08X}: FAIL private-key"), tip
    assert "partition mcuboot" not in tips[0]  # the partition is named in the text, as itself
    assert "mcuboot" in tips[0]
    assert "app" in tips[1]
    rows = page.find_elements(By.CSS_SELECTOR, "#findings tbody tr")  # type: ignore[attr-defined]
    assert len(rows) == len(planted)
    assert all(str(key_file) in row.text for row in rows)  # known from
    # the hostile name is shown as text, never run or parsed as markup
    assert page.find_elements(By.TAG_NAME, "img") == []  # type: ignore[attr-defined]
    assert (
        'evil<img src=x onerror=alert(1)>&"\\x1b.bin'
        in page.find_element(  # type: ignore[attr-defined]
            By.ID, "coverage"
        ).text
    )
    # self-contained: nothing was fetched
    fetched = page.execute_script(  # type: ignore[attr-defined]
        "return performance.getEntriesByType('resource').length"
    )
    assert fetched == 0


def test_unchecked_input_is_not_clean_and_a_clean_build_says_clean(
    browser: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = tmp_path / "build"
    build.mkdir()
    (build / "zephyr.hex").write_bytes(b"")  # an interrupted build
    report = scan_html(tmp_path, capsys, build)
    assert report.with_suffix(".code").read_text() == "2"
    page = look(browser, report, "unchecked")
    assert page.find_element(By.ID, "verdict").text == "NOT CLEAN (unchecked)"  # type: ignore[attr-defined]
    assert "zephyr.hex" in page.find_element(By.ID, "unchecked").text  # type: ignore[attr-defined]
    assert page.find_elements(By.CSS_SELECTOR, "svg.map g.marker") == []  # type: ignore[attr-defined]

    (build / "zephyr.hex").unlink()
    clean = IntelHex()
    clean.frombytes(random.Random(8).randbytes(0x8000), offset=0xC000)
    clean.write_hex_file(str(build / "zephyr.hex"))
    report = scan_html(tmp_path, capsys, build)
    assert report.with_suffix(".code").read_text() == "0"
    page = look(browser, report, "clean")
    assert page.find_element(By.ID, "verdict").text == "clean"  # type: ignore[attr-defined]
    ranges = page.find_elements(By.CSS_SELECTOR, "svg.map g.range title")  # type: ignore[attr-defined]
    assert any("0x0000C000-0x00014000" in r.get_attribute("textContent") for r in ranges)


def test_report_file_is_replaced_whole_and_a_bad_output_path_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "app.bin"
    image.write_bytes(bytes(64))
    missing = tmp_path / "no-such-dir" / "report.html"
    code = main(["scan", "--format", "html", "-o", str(missing), "--quiet", str(image)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert f"{missing}: cannot write the report" in err
    assert not missing.parent.exists()


def test_every_name_from_an_input_is_text_on_the_page() -> None:
    """File, member, section, symbol, partition, allowlist entry and reason can all be chosen by
    whoever made the input: none of them becomes markup, and the page is valid UTF-8 even for a
    file name that is not."""
    evil = 'a<img src=x onerror=alert(1)>&"\x1b\n\udce9'
    finding = Finding(
        path=f"{evil}.hex",
        kind=Kind.PRIVATE_KEY,
        encoding=f"PKCS#8 DER {evil}",
        address=0x1000,
        length=138,
        section=f".rodata{evil}",
        symbol=f"key{evil}",
        key="SHA256:" + "ab" * 32,
        known=f"keys/{evil}.key",
        partition=f"app{evil}",
    )
    allowed = Finding(
        path=f"{evil}.hex",
        kind=Kind.CERTIFICATE,
        encoding="DER",
        address=0x2000,
        length=400,
        section=None,
        symbol=None,
        key="SHA256:" + "cd" * 32,
        allowed_by=f"symbol {evil}",
    )
    coverage = Coverage(
        path=f"{evil}.hex",
        format="intel-hex",
        size=4096,
        examined=4096,
        ranges=(AddressRange(0, 0x3000, f"run{evil}"),),
        partitions=(AddressRange(0, 0x4000, f"app{evil}"),),
        unchecked=(Unchecked(f"{evil}.hex", f"line 3 is not a record {evil}", line=3),),
        notes=(f"note {evil}",),
        findings=1,
    )
    page = write_html(ScanResult((finding,), (allowed,), (coverage,)), Kind.PRIVATE_KEY)
    page.encode("utf-8")  # no lone surrogate left

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[str] = []
            self.text: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append(tag)

        def handle_data(self, data: str) -> None:
            self.text.append(data)

    parsed = Tags()
    parsed.feed(page)
    assert "img" not in parsed.tags
    assert "script" not in parsed.tags
    assert parsed.tags.count("g") == 2 + 2  # two markers (one allowed), two range boxes
    text = "".join(parsed.text)
    shown = 'a<img src=x onerror=alert(1)>&"\\x1b\\x0a\\xe9'  # as the text report shows it
    for what in (".hex", "PKCS#8 DER ", ".rodata", "key", "keys/", "symbol ", "note ", "app"):
        assert f"{what}{shown}" in text or f"{shown}{what}" in text, what
    assert "\x1b" not in page
    assert "0x00002000: allowed certificate DER" in text  # the allowed finding's marker
