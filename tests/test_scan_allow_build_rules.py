"""The allowlist file and the build directory, rule by rule.

The allowlist (`provguard.scan.allow`): its format (comments, blank lines, fingerprints in either
case), its errors naming the file and line, the refusal of a wildcard symbol unless forced, and
which finding an entry resolved through an ELF allows (the file it was resolved for, flash
address or file offset, `[start, end)`). The build directory (`provguard.scan.build`): the
partitions of a partition manager `partitions.yml`, and the flash bytes of an allowed symbol in an
ELF and in the raw image objcopy made of it (after the MCUboot header when signed).

Expected values come from what the test wrote (addresses, sizes, header fields) or from an
independent tool (PyYAML's own error, arm-none-eabi-nm/objdump); no key material is involved.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from provguard.errors import InputError
from provguard.scan import build
from provguard.scan.allow import Allowlist, SymbolRange, load_allowlist, parse_allowlist
from provguard.scan.model import AddressRange, Finding, Kind
from tests import images

FINGERPRINT = "SHA256:" + hashlib.sha256(b"a public key info").hexdigest()
WILDCARD_REFUSED = (
    "`symbol mcuboot_*` is a wildcard: it would allow every private key in a matching symbol; "
    "name each symbol, or pass --force-allow-wildcard"
)

# --- the allowlist file ----------------------------------------------------------------------


def test_comments_blank_lines_and_fingerprint_case_are_read(tmp_path: Path) -> None:
    """A comment may itself hold `#`; a fingerprint may be written in upper case with a
    lower-case prefix, and is kept as the report prints it."""
    text = (
        "# MCUboot's image-decryption key lives in the bootloader # on purpose\n"
        "\n"
        f"key sha256:{FINGERPRINT[7:].upper()}   # bootloader # see the README\n"
        "   symbol enc_priv_key#no space before the comment\n"
    )
    allow = parse_allowlist(text, "allow.txt")
    assert allow == Allowlist(frozenset({FINGERPRINT}), ("enc_priv_key",))
    path = tmp_path / "allow.txt"
    path.write_text(text, encoding="utf-8")
    assert load_allowlist(path) == allow


def test_a_wildcard_symbol_is_refused_unless_forced(tmp_path: Path) -> None:
    text = "# every bootloader symbol\nsymbol mcuboot_*\n"
    with pytest.raises(InputError) as caught:
        parse_allowlist(text, "allow.txt")
    assert str(caught.value) == f"allow.txt:2: {WILDCARD_REFUSED}"
    path = tmp_path / "allow.txt"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_allowlist(path)
    assert str(caught.value) == f"{path}:2: {WILDCARD_REFUSED}"
    forced = Allowlist(frozenset(), ("mcuboot_*",))
    assert parse_allowlist(text, "allow.txt", force_wildcard=True) == forced
    assert load_allowlist(path, force_wildcard=True) == forced


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("symbol\n", 1, "expected `key SHA256:<64 hex>` or `symbol NAME`"),
        ("# x\nsymbol a b\n", 2, "expected `key SHA256:<64 hex>` or `symbol NAME`"),
        (
            "symbol a\n\nkey SHA256:abc\n",
            3,
            "a key entry needs a fingerprint SHA256:<64 hex digits>",
        ),
        (f"key {FINGERPRINT[7:]}\n", 1, "a key entry needs a fingerprint SHA256:<64 hex digits>"),
        ("secret enc_priv_key\n", 1, "unknown entry 'secret': use `key` or `symbol`"),
    ],
    ids=["one-word", "three-words", "short-fingerprint", "no-prefix", "unknown-entry"],
)
def test_a_bad_line_is_refused_with_the_file_and_its_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        parse_allowlist(text, "release/allow.txt")
    assert (caught.value.path, caught.value.line) == ("release/allow.txt", line)
    assert str(caught.value) == f"release/allow.txt:{line}: {message}"


def test_an_allowlist_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "allow.txt"
    with pytest.raises(InputError) as caught:
        load_allowlist(missing)
    assert str(caught.value) == f"{missing}: no such allowlist file"

    with pytest.raises(InputError) as caught:
        load_allowlist(tmp_path)
    assert str(caught.value) == f"{tmp_path}: not a regular file (FIFO, device or directory)"

    latin1 = tmp_path / "latin1.txt"
    data = "# Schlüssel des Bootloaders\nsymbol enc_priv_key\n".encode("latin-1")
    latin1.write_bytes(data)
    with pytest.raises(UnicodeDecodeError) as expected:
        data.decode("utf-8")
    with pytest.raises(InputError) as caught:
        load_allowlist(latin1)
    assert str(caught.value) == f"{latin1}: cannot read the allowlist: {expected.value}"


def test_an_allowlist_is_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    """A UTF-8 comment reads the same under an ASCII (C) locale as under a UTF-8 one."""
    path = tmp_path / "allow.txt"
    path.write_text("# Schlüssel des Bootloaders\nsymbol enc_priv_key\n", encoding="utf-8")
    env = dict(os.environ, LC_ALL="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from provguard.scan.allow import load_allowlist\n"
        "print(load_allowlist(Path(sys.argv[1])).symbols)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "('enc_priv_key',)\n", "")


# --- which finding an entry resolved through an ELF allows -----------------------------------

ELF = "build/mcuboot/zephyr/zephyr.elf"
RESOLVED = f"symbol enc_priv_key (resolved through {ELF})"
HEX = "build/merged.hex"
BIN = "build/mcuboot/zephyr/zephyr.bin"
OTHER = "build/app/zephyr/zephyr.hex"
SYMBOL_AT, SYMBOL_SIZE = 0x1000, 0x79  # flash bytes of enc_priv_key
BIN_AT = 0x200  # its file offset in the raw image


def hit(path: str, *, address: int | None, file_offset: int | None) -> Finding:
    """A key found outside any ELF symbol (a HEX or raw image carries none)."""
    return Finding(
        path=path,
        kind=Kind.PRIVATE_KEY,
        encoding="DER",
        address=address,
        length=SYMBOL_SIZE,
        section=None,
        symbol=None,
        key=FINGERPRINT,
        file_offset=file_offset,
    )


@pytest.fixture
def resolved() -> Allowlist:
    """`symbol enc_priv_key`, resolved for a HEX of another image (listed first), merged.hex (by
    flash address) and the raw .bin (by file offset)."""
    return Allowlist(
        frozenset(),
        ("enc_priv_key",),
        (
            (OTHER, (SymbolRange("enc_priv_key", 0x9000, 0x9000 + SYMBOL_SIZE, ELF),)),
            (HEX, (SymbolRange("enc_priv_key", SYMBOL_AT, SYMBOL_AT + SYMBOL_SIZE, ELF),)),
            (
                BIN,
                (SymbolRange("enc_priv_key", BIN_AT, BIN_AT + SYMBOL_SIZE, ELF, offsets=True),),
            ),
        ),
    )


def test_a_resolved_symbol_allows_its_flash_bytes_first_to_last(resolved: Allowlist) -> None:
    end = SYMBOL_AT + SYMBOL_SIZE
    assert resolved.entry_for(hit(HEX, address=SYMBOL_AT, file_offset=None)) == RESOLVED
    assert resolved.entry_for(hit(HEX, address=end - 1, file_offset=None)) == RESOLVED
    assert resolved.entry_for(hit(HEX, address=end, file_offset=None)) is None
    assert resolved.entry_for(hit(HEX, address=SYMBOL_AT - 1, file_offset=None)) is None
    # the range is for merged.hex: the same address in another file is not allowed by it
    assert resolved.entry_for(hit(OTHER, address=SYMBOL_AT, file_offset=None)) is None
    assert resolved.entry_for(hit("elsewhere.hex", address=SYMBOL_AT, file_offset=None)) is None


def test_a_flash_range_never_allows_a_finding_without_a_flash_address(
    resolved: Allowlist,
) -> None:
    """A finding not loaded anywhere (no address) is not allowed by a flash range, even when
    its file offset falls in it."""
    assert resolved.entry_for(hit(HEX, address=None, file_offset=SYMBOL_AT)) is None


def test_a_raw_image_range_is_matched_by_file_offset_not_address(resolved: Allowlist) -> None:
    base = 0x10000  # --base-address: the finding's address is its offset + base
    at = hit(BIN, address=base + BIN_AT, file_offset=BIN_AT)
    assert resolved.entry_for(at) == RESOLVED
    past = hit(BIN, address=base + BIN_AT + SYMBOL_SIZE, file_offset=BIN_AT + SYMBOL_SIZE)
    assert resolved.entry_for(past) is None
    # an address equal to the offset range, at a file offset outside it, is not allowed
    assert resolved.entry_for(hit(BIN, address=BIN_AT, file_offset=0)) is None


# --- partitions.yml --------------------------------------------------------------------------

PARTITIONS = """\
pm_version: "3"
placeholder:
  placement: {after: [app]}
app:
  address: 0x8000
  end_address: 0x20000
mcuboot_pad:
  address: 0x20000
littlefs_storage:
  address: 0x30000
  size: 0x6000
empty:
  address: 0x40000
  size: 0x0
settings_storage:
  address: 0x0
  size: 0x8000
"""


def test_partitions_by_end_address_or_size_placeholders_left_out() -> None:
    """An entry with no address, no end or size, or nothing in it is left out; every other one
    is kept whatever comes before it, sorted by address."""
    assert build.parse_partitions(PARTITIONS.encode(), "build/partitions.yml") == (
        AddressRange(0x0, 0x8000, "settings_storage"),
        AddressRange(0x8000, 0x20000, "app"),
        AddressRange(0x30000, 0x36000, "littlefs_storage"),
    )


def test_a_damaged_partitions_yml_is_named_with_yamls_first_line() -> None:
    text = b"app:\n  address: [0x8000\n"
    with pytest.raises(yaml.YAMLError) as expected:
        yaml.safe_load(text)
    first = str(expected.value).splitlines()[0]
    assert first
    assert first != str(expected.value)  # YAML said more, on further lines
    with pytest.raises(InputError) as caught:
        build.parse_partitions(text, "build/partitions.yml")
    assert str(caught.value) == f"build/partitions.yml: not a partitions.yml: {first}"


@pytest.mark.parametrize("text", [b"- app\n- mcuboot\n", b"just a string\n", b""])
def test_a_partitions_yml_that_is_not_a_mapping_is_refused(text: bytes) -> None:
    with pytest.raises(InputError) as caught:
        build.parse_partitions(text, "build/partitions.yml")
    assert str(caught.value) == (
        "build/partitions.yml: not a partitions.yml: expected a mapping of partitions"
    )


# --- an allowed symbol's flash bytes, through the ELF ----------------------------------------

needs_toolchain = pytest.mark.skipif(
    not images.HAVE_TOOLCHAIN and not os.environ.get("CI"), reason="needs arm-none-eabi-gcc"
)

ORIGIN = 0x8000  # where .rodata (the only loaded section) is linked
BLOBS_C = """\
__attribute__((section(".build_info"), used)) static const char build_info[] = "version 1";
const unsigned char padding_blob[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
const unsigned char allowed_blob[32] = {1};
"""
# A section that is not loaded (INFO) comes before the loaded one in the section table.
LINKER_SCRIPT = f"""\
SECTIONS
{{
	.build_info 0 (INFO) : {{ KEEP(*(.build_info)) }}
	.rodata {ORIGIN:#x} : {{ KEEP(*(.rodata*)) }}
}}
"""


@dataclass(frozen=True)
class Elf:
    path: Path
    symbols: dict[str, int]  # flash address of each blob, from nm and objdump


@pytest.fixture(scope="module")
def elf(tmp_path_factory: pytest.TempPathFactory) -> Elf:
    path = images.link_elf(tmp_path_factory.mktemp("elf"), BLOBS_C, LINKER_SCRIPT)
    return Elf(path, images.flash_addresses(path))


@needs_toolchain
def test_only_the_named_symbols_flash_bytes_are_resolved(elf: Elf) -> None:
    """Each blob at its own flash address (the second one is not at its section's start), and
    no other symbol; a symbol after a section that is not loaded is still found."""
    padding, allowed = elf.symbols["padding_blob"], elf.symbols["allowed_blob"]
    assert ORIGIN in (padding, allowed)
    assert padding != allowed
    assert build.symbol_ranges(elf.path, ["allowed_blob"]) == (
        SymbolRange("allowed_blob", allowed, allowed + 32, str(elf.path)),
    )
    assert build.symbol_ranges(elf.path, ["padding_blob"]) == (
        SymbolRange("padding_blob", padding, padding + 16, str(elf.path)),
    )
    assert build.symbol_ranges(elf.path, ["enc_priv_key"]) == ()


@needs_toolchain
def test_an_elf_of_exactly_the_size_limit_is_read_one_byte_more_is_not(
    elf: Elf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit (MAX_ELF, 256 MiB) set to this ELF's size: at the limit it is resolved and a
    raw image maps through it; one byte under the limit it is left alone."""
    size = elf.path.stat().st_size
    raw = tmp_path / "zephyr.bin"
    raw.write_bytes(bytes(64))
    allowed = elf.symbols["allowed_blob"]
    monkeypatch.setattr(build, "MAX_ELF", size)
    assert build.symbol_ranges(elf.path, ["allowed_blob"]) == (
        SymbolRange("allowed_blob", allowed, allowed + 32, str(elf.path)),
    )
    assert build._bin_shift(raw, elf.path) == ORIGIN
    monkeypatch.setattr(build, "MAX_ELF", size - 1)
    assert build.symbol_ranges(elf.path, ["allowed_blob"]) == ()
    assert build._bin_shift(raw, elf.path) is None


@needs_toolchain
def test_a_signed_raw_image_maps_after_its_header_size(elf: Elf, tmp_path: Path) -> None:
    """objcopy's .bin starts at the lowest load address; an MCUboot image is hdr_size later
    (read from its header, not the protected TLV size that follows it)."""
    magic, load_addr, hdr_size, protect_tlv_size = images.MCUBOOT_MAGIC, 0, 0x200, 0x30
    header = struct.pack("<IIHHI", magic, load_addr, hdr_size, protect_tlv_size, 64)
    signed = tmp_path / "zephyr.signed.bin"
    signed.write_bytes(header.ljust(hdr_size, b"\0") + bytes(64))
    assert build._bin_shift(signed, elf.path) == ORIGIN - hdr_size
    raw = tmp_path / "zephyr.bin"
    raw.write_bytes(bytes(64))
    assert build._bin_shift(raw, elf.path) == ORIGIN


# --- the package's names ---------------------------------------------------------------------


def test_dir_of_the_scan_package_lists_its_lazy_exports_with_its_own_names_sorted() -> None:
    """Every public name (`__all__`) is listed by dir() before it is first imported (tab
    completion, help()), together with what the package module itself holds."""
    package = importlib.import_module("provguard.scan")
    assert package.Allowlist is not None  # a lazy name used once is then a global too
    names = dir(package)
    assert names == sorted(set(vars(package)) | set(package.__all__))  # each once
    assert {"__getattr__", "__dir__", "scan_paths", "Allowlist", "WRITERS"} <= set(names)
    assert names == sorted(names)
