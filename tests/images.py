"""Firmware images for tests, built at test time with the real ARM toolchain.

`build_firmware` compiles a C file holding the given blobs as named symbols (in .rodata, .data or a
far flash region) with arm-none-eabi-gcc for a Cortex-M33, links it at flash 0x0 with a UICR
section at 0x00FF8000, and converts it with arm-none-eabi-objcopy into ELF, Intel HEX (several
segments, a gap, extended addresses: a merged.hex) and a raw .bin. `mcuboot_image` wraps a
payload the way imgtool does (header, TLV area; optionally flagged encrypted with an AES-CTR
payload), `dfu_zip` packs an NCS-style dfu_application.zip. One compile per call: test modules
build their images once, in module- or session-scoped fixtures.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

GCC = "arm-none-eabi-gcc"
OBJCOPY = "arm-none-eabi-objcopy"
NM = "arm-none-eabi-nm"
OBJDUMP = "arm-none-eabi-objdump"

HAVE_TOOLCHAIN = all(shutil.which(tool) for tool in (GCC, OBJCOPY, NM, OBJDUMP))

FAR_FLASH = 0x00030000  # a second flash region: the HEX has a gap before it
UICR = 0x00FF8000  # nRF91 UICR, as in an NCS merged.hex

LINKER_SCRIPT = """\
MEMORY
{
	FLASH (rx)  : ORIGIN = 0x00000000, LENGTH = 0x30000
	FAR (r)     : ORIGIN = 0x00030000, LENGTH = 0x10000
	UICR (r)    : ORIGIN = 0x00FF8000, LENGTH = 0x1000
	RAM (rwx)   : ORIGIN = 0x20000000, LENGTH = 64K
}
ENTRY(reset_handler)
SECTIONS
{
	.text : { KEEP(*(.vectors)) *(.text*) } > FLASH
	.rodata : { *(.rodata*) } > FLASH
	.data : { __data_start = .; *(.data*) __data_end = .; } > RAM AT > FLASH
	__data_load = LOADADDR(.data);
	.bss (NOLOAD) : { *(.bss*) *(COMMON) } > RAM
	.far : { KEEP(*(.far*)) } > FAR
	.uicr : { KEEP(*(.uicr*)) } > UICR
	__stack_top = ORIGIN(RAM) + LENGTH(RAM);
}
"""

MAIN_C = """\
#include <stddef.h>
#include <stdint.h>

extern uint32_t __data_start, __data_end, __data_load, __stack_top;
void reset_handler(void);
volatile uint32_t sink;

__attribute__((section(".vectors"), used)) static const uintptr_t vectors[2] = {
	(uintptr_t)&__stack_top, (uintptr_t)reset_handler,
};

static uint32_t crc(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++) {
			c = (c >> 1) ^ (0xedb88320u & -(c & 1u));
		}
	}
	return ~c;
}

void reset_handler(void)
{
	const uint32_t *src = &__data_load;
	for (uint32_t *dst = &__data_start; dst < &__data_end;) {
		*dst++ = *src++;
	}
	sink = crc((const uint8_t *)vectors, sizeof(vectors));
	for (;;) {
	}
}
"""

SECTIONS = {
    "rodata": "",
    "data": "",
    "far": '__attribute__((section(".far"))) ',
    "uicr": '__attribute__((section(".uicr"))) ',
}


@dataclass(frozen=True)
class Blob:
    """Bytes placed in the image under a symbol name."""

    symbol: str
    data: bytes
    section: str = "rodata"  # rodata, data (copied from flash to RAM), far, uicr
    string: bool = False  # emit as `static const char NAME[] = "..."` (text) instead of bytes


@dataclass(frozen=True)
class Firmware:
    elf: Path
    hex: Path
    bin: Path
    symbols: dict[str, int]  # flash address of each blob's first byte (load address)


def c_string(data: bytes) -> str:
    out = []
    for byte in data:
        char = chr(byte)
        if char == "\n":
            out.append('\\n"\n\t"')
        elif char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127 and char != "?":
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_source(blobs: list[Blob]) -> str:
    lines = ["#include <stdint.h>", ""]
    for blob in blobs:
        attrs = SECTIONS[blob.section] + "__attribute__((used)) "
        const = "" if blob.section == "data" else "const "
        if blob.string:
            lines.append(f"{attrs}static {const}char {blob.symbol}[] = {c_string(blob.data)};")
        else:
            body = ", ".join(f"0x{b:02x}" for b in blob.data)
            lines.append(f"{attrs}{const}uint8_t {blob.symbol}[{len(blob.data)}] = {{{body}}};")
    return "\n".join(lines) + "\n"


def run(*argv: str | Path) -> str:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"{argv[0]} failed: {result.stderr[-2000:]}")
    return result.stdout


def build_firmware(
    workdir: Path, name: str, blobs: list[Blob], *, flash_origin: int = 0
) -> Firmware:
    """Compile and link `blobs` into an ARM image; returns ELF, HEX (with UICR) and BIN paths.
    `flash_origin` links the code elsewhere in the first flash region (an application behind
    MCUboot, at its partition plus the image header)."""
    workdir.mkdir(parents=True, exist_ok=True)
    script = LINKER_SCRIPT.replace(
        "ORIGIN = 0x00000000, LENGTH = 0x30000",
        f"ORIGIN = {flash_origin:#010x}, LENGTH = {0x30000 - flash_origin:#x}",
    )
    (workdir / "link.ld").write_text(script)
    (workdir / "main.c").write_text(MAIN_C)
    (workdir / f"{name}_blobs.c").write_text(c_source(blobs))
    elf = workdir / f"{name}.elf"
    run(
        GCC,
        "-mcpu=cortex-m33",
        "-mthumb",
        "-Os",
        "-g",
        "-ffreestanding",
        "-nostdlib",
        "-T",
        workdir / "link.ld",
        "-o",
        elf,
        workdir / "main.c",
        workdir / f"{name}_blobs.c",
    )
    hex_path = workdir / f"{name}.hex"
    run(OBJCOPY, "-O", "ihex", elf, hex_path)
    bin_path = workdir / f"{name}.bin"
    run(OBJCOPY, "-O", "binary", "-R", ".uicr", "-R", ".far", elf, bin_path)
    return Firmware(elf, hex_path, bin_path, flash_addresses(elf))


def link_elf(workdir: Path, source: str, linker_script: str) -> Path:
    """`source` (C) linked alone by `linker_script` into `workdir/zephyr.elf`: no startup code,
    only the sections the script places (for tests that need exact symbol addresses)."""
    (workdir / "blobs.c").write_text(source)
    (workdir / "link.ld").write_text(linker_script)
    path = workdir / "zephyr.elf"
    run(
        GCC,
        "-mcpu=cortex-m33",
        "-mthumb",
        "-ffreestanding",
        "-nostdlib",
        "-Wl,-e,0",
        "-T",
        workdir / "link.ld",
        "-o",
        path,
        workdir / "blobs.c",
    )
    return path


def flash_addresses(elf: Path) -> dict[str, int]:
    """Each object symbol's flash address, from nm (VMA) and objdump's VMA/LMA of its section."""
    sections = []  # (vma, size, lma)
    for line in run(OBJDUMP, "-h", elf).splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[0].isdigit():
            sections.append((int(fields[3], 16), int(fields[2], 16), int(fields[4], 16)))
    out = {}
    for line in run(NM, "-S", elf).splitlines():
        match = re.fullmatch(r"([0-9a-f]{8}) ([0-9a-f]{8}) [a-zA-Z] (\w+)", line.strip())
        if not match:
            continue
        vma = int(match.group(1), 16)
        for start, size, lma in sections:
            if start <= vma < start + size:
                out[match.group(3)] = lma + vma - start
                break
    return out


# --- MCUboot ---------------------------------------------------------------------------------

MCUBOOT_MAGIC = 0x96F3B83D  # mcu-tools/mcuboot boot/bootutil/include/bootutil/image.h
IMAGE_F_ENCRYPTED_AES128 = 0x04
IMAGE_TLV_INFO_MAGIC = 0x6907
IMAGE_TLV_SHA256 = 0x10
IMAGE_TLV_ENC_EC256 = 0x32
HEADER_SIZE = 0x200


def mcuboot_image(payload: bytes, *, encrypted: bool = False, load_addr: int = 0) -> bytes:
    """An imgtool-style image: 32-byte header padded to 0x200, payload, unprotected TLV area."""
    flags = 0
    if encrypted:
        flags |= IMAGE_F_ENCRYPTED_AES128
        key, nonce = os.urandom(16), bytes(16)
        encryptor = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
        payload = encryptor.update(payload) + encryptor.finalize()
    header = struct.pack(
        "<IIHHIIBBHII", MCUBOOT_MAGIC, load_addr, HEADER_SIZE, 0, len(payload), flags, 1, 2, 3, 4, 0
    )
    image = header.ljust(HEADER_SIZE, b"\0") + payload
    tlvs = struct.pack("<BxH", IMAGE_TLV_SHA256, 32) + hashlib.sha256(image).digest()
    if encrypted:  # the wrapped AES key: an ephemeral public point and ciphertext, not a secret
        tlvs += struct.pack("<BxH", IMAGE_TLV_ENC_EC256, 113) + os.urandom(113)
    return image + struct.pack("<HH", IMAGE_TLV_INFO_MAGIC, 4 + len(tlvs)) + tlvs


def dfu_zip(path: Path, members: dict[str, bytes]) -> Path:
    """An NCS-style dfu_application.zip: a manifest.json and the given members."""
    manifest = {
        "format-version": 0,
        "files": [
            {"file": name, "size": len(data), "type": "application"}
            for name, data in members.items()
        ],
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        for name, data in members.items():
            archive.writestr(name, data)
    return path


# --- helpers shared by the scan tests ----------------------------------------------------------


def write_private(path: Path, data: bytes) -> Path:
    """Write a test key file readable by its owner only."""
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def pem_layouts(pem: bytes) -> dict[str, bytes]:
    """The ways a PEM block ends up in flash: line lengths, CRLF, escaped newlines, one line."""
    lines = pem.strip().splitlines()
    header, footer, body = lines[0], lines[-1], b"".join(lines[1:-1])

    def wrap(width: int, newline: bytes) -> bytes:
        rows = [body[i : i + width] for i in range(0, len(body), width)]
        return newline.join([header, *rows, footer]) + newline

    return {
        "lf64": wrap(64, b"\n"),
        "crlf64": wrap(64, b"\r\n"),
        "lf76": wrap(76, b"\n"),
        "lf16": wrap(16, b"\n"),
        "escaped": wrap(64, b"\\n"),
        "one_line": header + body + footer,
    }
