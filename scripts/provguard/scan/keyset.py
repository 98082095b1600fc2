"""Known keys and certificates in bulk: `--key FILE`, `--key-dir DIR`, `--keys-from FILE`.

Every private key and every certificate in a file is used (a PEM file may hold several). Loading is
cheap: a P-256 key as cryptography writes it (PKCS#8 or SEC1, with its public key) is taken apart
by comparing it with what cryptography writes for a reference key (`known.p256_material`), without
a cryptography object per key; any other key is loaded with cryptography. A file that is one
unencrypted PEM key and nothing else is matched with one regular expression and decoded in one
call; anything else (a BOM, text around the block, several blocks, DER) goes through the general
reader, which names what is wrong.

Nothing derived is cached on disk. The index needs each key's bytes (the windows it looks up and
the runs it compares are key material), so a cache of one-way digests could spare only the
parsing, after the file has been read to check its digest: measured for 10,000 P-256 key files,
reading them costs about 3 µs each and parsing about 4 µs, so a warm cache would save at most
0.04 s and add a second copy of facts about the keys to keep right.

`--key-dir DIR`: every regular file under DIR (sorted, symlinks to files followed, symlinked
directories not entered). A file with a private key or certificate is used; a PEM file holding only
other blocks (a CSR, a public key) is skipped; anything else is an error naming the file.

`--keys-from FILE`, by its suffix:

- `.json`: an array whose entries are a path (string) or an object with any of `"key"`,
  `"cert"` (paths) and `"privateKey"`, `"clientCert"`, `"caCert"`, `"cert_pem"` (PEM text, as
  in a Link Monitor export or a ledger export); `"id"` (or `"deviceId"`, `"device_id"`,
  `"imei"`) names the entry in reports.
- `.csv`: a header row, then one row per device; columns `key`, `cert` (paths) and
  `privateKey`, `clientCert`, `caCert`, `cert_pem` (PEM text) are used, `id`/`deviceId`/
  `device_id`/`imei` names the row, other columns are ignored. At least one of the used columns
  must be present. `provguard ledger export --format csv|json` (enrollment's own record of a
  run: keys stay in the modems, the certificates are in `cert_pem`) is such a list.
- anything else: one path per line; blank lines and lines starting with `#` are ignored.

Relative paths are relative to the list's directory. A bad entry (missing file, no key in it, an
encrypted or damaged key, a path that is not a regular file) is an error naming the list, its line
and the entry: exit 2, nothing is scanned.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import os
import re
import signal
import stat
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from provguard.errors import InputError
from provguard.scan.known import (
    KnownMaterial,
    bulk,
    certificate_der_material,
    key_material,
    p256_material,
)
from provguard.scan.model import Kind

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

# `cryptography` is imported by the functions that need it: the usual P-256 key files are taken
# apart without it (`known.p256_material`), and a scan without keys never loads it at all.

#: A key or certificate file is a few kB; a list of keys may be large.
MAX_KEY_FILE = 1 << 20
MAX_LIST_FILE = 256 << 20
#: Each process that reads key files in parallel gets at least this many of them: fewer are read
#: faster than a fork and the pipe back cost (measured: 10,000 P-256 key files, 7 µs each).
MIN_FILES_PER_PROCESS = 1000

_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]{1,40})-----(.*?)-----END ([A-Z0-9 ]{1,40})-----", re.DOTALL
)
#: One PEM private key and nothing else (what `_PEM_BLOCK` and `_block` would find in it).
_SINGLE_KEY = re.compile(
    rb"\s*-----BEGIN ((?:EC )?PRIVATE KEY)-----(\r?\n[A-Za-z0-9+/=\r\n]*)-----END \1-----\s*"
)
_KEY_LABELS = {b"PRIVATE KEY", b"EC PRIVATE KEY", b"RSA PRIVATE KEY"}
_CERT_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE"}
_ENCRYPTED = {b"ENCRYPTED PRIVATE KEY"}
_OTHER_LABELS = {
    b"PUBLIC KEY",
    b"RSA PUBLIC KEY",
    b"EC PUBLIC KEY",
    b"CERTIFICATE REQUEST",
    b"NEW CERTIFICATE REQUEST",
    b"EC PARAMETERS",
    b"TRUSTED CERTIFICATE",
}
_BETWEEN = re.compile(r"[\s,]*")  # what separates two entries of a JSON array
_PATH_COLUMNS = ("key", "cert")
_PEM_COLUMNS = ("privateKey", "clientCert", "caCert", "cert_pem")
_ID_COLUMNS = ("id", "deviceId", "device_id", "imei")


class EntryError(ValueError):
    """What is wrong with one key or certificate (the caller adds the file); `line` is where in
    that file, when it is known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def where(self, name: str) -> str:
        """`name: message`, or `name:LINE: message`."""
        return f"{name}:{self.line}: {self.message}" if self.line else f"{name}: {self.message}"


class _EncryptedKeyError(EntryError):
    """A private key that needs a password: known to be a key, so never reported as "neither"."""


@dataclass(frozen=True)
class Loaded:
    materials: tuple[KnownMaterial, ...]  # empty: only other blocks (a CSR, a public key)


# --- one file --------------------------------------------------------------------------------


def read_regular(path: Path | str, limit: int) -> bytes:
    """The bytes of a regular file (a FIFO or device is refused before it is opened)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise EntryError("no such file") from None
    except OSError as exc:
        raise EntryError(f"cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise EntryError("is a directory, not a key or certificate file")
    if not stat.S_ISREG(info.st_mode):
        raise EntryError("not a regular file (FIFO, socket or device): not read")
    if info.st_size > limit:
        raise EntryError(f"larger than {limit} bytes: not a key or certificate file")
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise EntryError(f"cannot read: {exc.strerror}") from None
    try:
        want = (info.st_size or 4096) + 1  # a file that grew is read on
        chunk = os.read(handle, want)
        if len(chunk) < want:  # the end of the file: one read for a key file
            return chunk
        chunks, size = [chunk], len(chunk)
        while size <= limit:
            chunk = os.read(handle, want)
            chunks.append(chunk)
            size += len(chunk)
            if len(chunk) < want:
                break
    except OSError as exc:
        raise EntryError(f"cannot read: {exc.strerror}") from None
    finally:
        os.close(handle)
    if size > limit:
        raise EntryError(f"larger than {limit} bytes: not a key or certificate file")
    return b"".join(chunks)


def parse_credentials(data: bytes, name: str) -> Loaded:
    """Every private key and certificate in PEM text or one DER object, named `name` (and
    `name:LINE` for each block when the file holds more than one)."""
    fast = _one_p256_key(data, name)
    if fast is not None:
        return Loaded((fast,))
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        raise EntryError("the file is empty")
    blocks = list(_PEM_BLOCK.finditer(data))
    if not blocks:
        if b"-----BEGIN" in data:
            raise EntryError("a PEM block has no matching END line (truncated?)")
        return Loaded((_from_der(data, name),))
    usable = [b for b in blocks if b.group(1) not in _OTHER_LABELS]
    out = []
    for block in usable:
        line = data.count(b"\n", 0, block.start()) + 1 if len(usable) > 1 else 0
        try:
            out.append(_block(block, f"{name}:{line}" if line else name))
        except EntryError as exc:
            line = line or data.count(b"\n", 0, block.start()) + 1
            raise EntryError(exc.message, line) from None
    return Loaded(tuple(out))


def _one_p256_key(data: bytes, name: str) -> KnownMaterial | None:
    """The usual device key file, one unencrypted PEM P-256 key and nothing else, read the short
    way (a third of the time to load 10,000 of them); None for anything else, which
    `parse_credentials` reads the long way and names what is wrong with."""
    single = _SINGLE_KEY.fullmatch(data)
    if single is None:
        return None
    body = single[2]
    if b"ENCRYPTED" in body[:200]:
        return None
    try:
        return p256_material(binascii.a2b_base64(body), name)
    except binascii.Error:
        return None


def _block(block: re.Match[bytes], where: str) -> KnownMaterial:
    label = block.group(1)
    if block.group(3) != label:
        raise EntryError(f"BEGIN {label.decode()} ends with another label")
    if label in _ENCRYPTED or b"ENCRYPTED" in block.group(2)[:200]:
        raise EntryError("the private key is encrypted; decrypt it first")
    if label == b"OPENSSH PRIVATE KEY":
        return key_material(_load_openssh(block.group(0)), where)
    if label not in _KEY_LABELS and label not in _CERT_LABELS:
        raise EntryError(f"a '{label.decode()}' block is not a key or certificate")
    try:
        der = base64.b64decode(block.group(2), validate=False)
    except (binascii.Error, ValueError):
        raise EntryError("the base64 body does not decode") from None
    return _certificate(der, where) if label in _CERT_LABELS else _key(der, where)


def _from_der(der: bytes, name: str) -> KnownMaterial:
    if der[:1] != b"\x30":
        raise EntryError("neither PEM nor DER: no private key or certificate in it")
    try:
        return _key(der, name)
    except _EncryptedKeyError:
        raise  # a key for sure: say so rather than "neither a key nor a certificate"
    except EntryError:
        pass
    try:
        return _certificate(der, name)
    except EntryError:
        raise EntryError("a DER object that is neither a private key nor a certificate") from None


def _key(der: bytes, name: str) -> KnownMaterial:
    fast = p256_material(der, name)
    if fast is not None:
        return fast
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.utils import CryptographyDeprecationWarning  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            key = serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)
    except TypeError:
        raise _EncryptedKeyError("the private key is encrypted; decrypt it first") from None
    except (ValueError, UnsupportedAlgorithm):
        raise EntryError("the private key does not parse (damaged or unsupported)") from None
    return key_material(key, name)


def _load_openssh(pem: bytes) -> PrivateKeyTypes:
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    try:
        key = serialization.load_ssh_private_key(pem, None)
    except TypeError:
        raise EntryError("the OpenSSH key is encrypted; decrypt it first") from None
    except (ValueError, UnsupportedAlgorithm):
        raise EntryError("the OpenSSH key does not parse") from None
    return key


def _certificate(der: bytes, name: str) -> KnownMaterial:
    from cryptography import x509  # noqa: PLC0415

    try:
        x509.load_der_x509_certificate(der)
    except ValueError:
        raise EntryError("the certificate does not parse (damaged?)") from None
    return certificate_der_material(der, name)


def load_file(path: Path, *, need_key: bool = False) -> list[KnownMaterial]:
    """Every key and certificate of one `--key` file; InputError naming it otherwise."""
    try:
        loaded = parse_credentials(read_regular(path, MAX_KEY_FILE), str(path))
        if need_key and not any(m.kind is Kind.PRIVATE_KEY for m in loaded.materials):
            raise EntryError("no private key in it")
    except EntryError as exc:
        raise InputError(exc.message, path=path, line=exc.line) from None
    return list(loaded.materials)


# --- a directory -------------------------------------------------------------------------------


def _files_under(root: Path) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root, onerror=_walk_error):
        dirs.sort()
        for name in sorted(names):
            yield Path(folder, name)


def _walk_error(exc: OSError) -> None:
    raise InputError(f"cannot list: {exc.strerror}", path=exc.filename)


def load_dir(root: Path, jobs: int = 1) -> list[KnownMaterial]:
    """Every key and certificate in the files under `root` (read on up to `jobs` processes)."""
    if not root.is_dir():
        raise InputError("not a directory", path=root)
    out = load_all(list(_files_under(root)), _load_dir_file, jobs)
    if not out:
        raise InputError("no private key or certificate in any file under it", path=root)
    return out


def _load_dir_file(path: Path, out: list[KnownMaterial]) -> None:
    try:
        out += parse_credentials(read_regular(path, MAX_KEY_FILE), str(path)).materials
    except EntryError as exc:
        raise InputError(exc.message, path=path, line=exc.line) from None


# --- a list ----------------------------------------------------------------------------------


class _Entry(NamedTuple):  # a tuple: ten thousand of them are made in a blink
    line: int
    paths: tuple[str, ...]
    pems: tuple[tuple[str, str], ...]  # (column, PEM text)
    name: str | None


def load_list(listing: Path, jobs: int = 1) -> list[KnownMaterial]:
    """The keys and certificates a `--keys-from` list names (see the module's docstring), read
    on up to `jobs` processes."""
    try:
        raw = read_regular(listing, MAX_LIST_FILE)
    except EntryError as exc:
        raise InputError(str(exc), path=listing) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", path=listing) from None
    suffix = listing.suffix.lower()
    base = str(listing.parent)
    if suffix not in (".json", ".csv"):  # one path per line: ten thousand lines in a row
        lines = [
            (number, item)
            for number, line in enumerate(text.splitlines(), 1)
            if (item := line.strip()) and not item.startswith("#")
        ]

        def load_line(line: tuple[int, str], out: list[KnownMaterial]) -> None:
            try:
                _load_path(base, line[1], out)
            except EntryError as exc:
                raise InputError(str(exc), path=listing, line=line[0]) from None

        out = load_all(lines, load_line, jobs)
    else:
        entries = _json_entries(text, listing) if suffix == ".json" else _csv_entries(text, listing)

        def load_entry(entry: _Entry, out: list[KnownMaterial]) -> None:
            try:
                _load_entry(entry, base, listing, out)
            except EntryError as exc:
                raise InputError(str(exc), path=listing, line=entry.line) from None

        out = load_all(list(entries), load_entry, jobs)
    if not out:
        raise InputError("names no key or certificate", path=listing)
    return out


def _load_path(base: str, item: str, out: list[KnownMaterial]) -> None:
    """Every key and certificate of the file `item` names (relative to `base`) into `out`."""
    # an absolute item stays as it is (what os.path.join does, without the call for each)
    path = item if item.startswith(os.sep) else os.path.join(base, item)
    try:
        data = read_regular(path, MAX_KEY_FILE)
        fast = _one_p256_key(data, path)
        if fast is not None:
            out.append(fast)
        else:
            out += parse_credentials(data, path).materials
    except EntryError as exc:
        raise EntryError(exc.where(item)) from None


def _load_entry(entry: _Entry, base: str, listing: Path, out: list[KnownMaterial]) -> None:
    """Every key and certificate of one JSON or CSV entry into `out`."""
    for item in entry.paths:
        _load_path(base, item, out)
    for column, pem in entry.pems:
        label = f"{listing}:{entry.line}:{column}" + (f" ({entry.name})" if entry.name else "")
        try:
            loaded = parse_credentials(pem.encode("utf-8"), label)
        except EntryError as exc:
            raise EntryError(exc.where(f'"{column}"')) from None
        if not loaded.materials:
            raise EntryError(f'"{column}" holds no private key or certificate')
        out += loaded.materials


def _entry_from(value: Any, line: int, listing: Path) -> _Entry:
    if isinstance(value, str) and value.strip():
        return _Entry(line, (value.strip(),), (), None)
    if not isinstance(value, dict):
        raise InputError(
            "an entry must be a path or an object with key/cert/privateKey/clientCert/caCert/"
            "cert_pem",
            path=listing,
            line=line,
        )
    paths, pems = [], []
    for column in _PATH_COLUMNS:
        item = value.get(column)
        if item not in (None, ""):
            if not isinstance(item, str):
                raise InputError(f'"{column}" must be a path (a string)', path=listing, line=line)
            paths.append(item)
    for column in _PEM_COLUMNS:
        item = value.get(column)
        if item not in (None, ""):
            if not isinstance(item, str):
                raise InputError(f'"{column}" must be PEM text', path=listing, line=line)
            pems.append((column, item))
    if not paths and not pems:
        raise InputError(
            "the entry names no key or certificate (key, cert, privateKey, clientCert, caCert, "
            "cert_pem)",
            path=listing,
            line=line,
        )
    name = next((str(value[c]) for c in _ID_COLUMNS if value.get(c) not in (None, "")), None)
    return _Entry(line, tuple(paths), tuple(pems), _printable(name))


def _printable(name: str | None) -> str | None:
    if name is None:
        return None
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in name)[:80]


def _json_entries(text: str, listing: Path) -> Iterator[_Entry]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", path=listing, line=exc.lineno) from None
    except RecursionError:
        raise InputError("JSON nested too deep", path=listing) from None
    if not isinstance(document, list):
        raise InputError("expected a JSON array of entries", path=listing)
    # The document parsed; step through the array once more to learn each entry's line.
    decoder = json.JSONDecoder()
    at = text.index("[") + 1
    line = 1 + text.count("\n", 0, at)
    for _ in document:
        start = _BETWEEN.match(text, at).end()  # type: ignore[union-attr]
        line += text.count("\n", at, start)
        value, at = decoder.raw_decode(text, start)
        yield _entry_from(value, line, listing)
        line += text.count("\n", start, at)


def _csv_entries(text: str, listing: Path) -> Iterator[_Entry]:
    import csv  # noqa: PLC0415 - only a .csv list needs it

    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = reader.fieldnames or []
    if not set(columns) & {*_PATH_COLUMNS, *_PEM_COLUMNS}:
        raise InputError(
            "the CSV header names none of the columns key, cert, privateKey, clientCert, caCert, "
            "cert_pem",
            path=listing,
            line=1,
        )
    line = reader.line_num + 1
    try:
        for row in reader:
            cleaned = {
                k: v.strip() if k in _PATH_COLUMNS else v
                for k, v in row.items()
                if k and isinstance(v, str)
            }
            yield _entry_from(cleaned, line, listing)
            line = reader.line_num + 1
    except csv.Error as exc:
        # the line the broken record starts on (line_num has not counted it yet)
        raise InputError(f"invalid CSV: {exc}", path=listing, line=line) from None


# --- the command line ------------------------------------------------------------------------


# --- many files, on several processes -------------------------------------------------------

_Unit = TypeVar("_Unit")


def load_all(
    units: Sequence[_Unit],
    load: Callable[[_Unit, list[KnownMaterial]], None],
    jobs: int,
) -> list[KnownMaterial]:
    """`load(unit, out)` of each unit, in order; with `jobs` > 1 and thousands of units, the
    units are cut into runs in order and all but the first are read by forked processes while
    this one reads the first.

    What the workers read comes back over a pipe, in memory (a P-256 key as its scalar and point,
    any other key or certificate as its forms): nothing touches the disk. The first error in the
    units' order is raised (`load` raises InputError), as a reading in one process would; a worker
    that dies or fails in any other way has its run read again here, so its error or its keys are
    what one process would have found."""
    width = min(jobs, len(units) // MIN_FILES_PER_PROCESS)
    out: list[KnownMaterial] = []
    if width < 2 or not hasattr(os, "fork"):
        for unit in units:
            load(unit, out)
        return out
    import pickle  # noqa: F401, PLC0415 - before the fork: each worker inherits it

    size = -(-len(units) // width)
    runs = [units[i : i + size] for i in range(0, len(units), size)]
    workers: list[tuple[int, int]] = []  # (pid, read end of its pipe)
    try:
        for run in runs[1:]:
            try:
                workers.append(_fork_loader(run, load))
            except OSError:  # no process to be had: the runs left are read here
                break
        for unit in runs[0]:
            load(unit, out)
        for number, run in enumerate(runs[1:]):
            sent = receive(workers[number][1]) if number < len(workers) else None
            if sent is None:  # the worker died, or none was forked: the run is read here
                for unit in run:
                    load(unit, out)
            elif isinstance(sent, InputError):
                raise sent
            else:
                out += sent
    finally:
        for pid, pipe in workers:
            os.close(pipe)
            _reap(pid)
    return out


def _fork_loader(
    run: Sequence[_Unit], load: Callable[[_Unit, list[KnownMaterial]], None]
) -> tuple[int, int]:
    """A forked process reading `run`: (its pid, the read end of the pipe its result comes on)."""
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        raise
    if pid:
        os.close(write_end)
        return pid, read_end
    try:  # pragma: no cover - the child (its coverage is not collected); it never returns
        os.close(read_end)
        send_run(run, load, write_end)
    finally:
        os._exit(0)


def send_run(
    run: Sequence[_Unit], load: Callable[[_Unit, list[KnownMaterial]], None], pipe: int
) -> None:
    """What a worker does: `load` each unit of `run` and write to `pipe` the materials, or the
    first error, for `receive` (8 bytes of length, then the pickle)."""
    import pickle  # noqa: PLC0415

    result: list[KnownMaterial] = []
    try:
        for unit in run:
            load(unit, result)
        payload: object = [_portable(m) for m in result]
    except InputError as exc:
        payload = (exc.message, exc.path, exc.line)
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(8, "little") + data)
    while view:
        view = view[os.write(pipe, view) :]


def _portable(material: KnownMaterial) -> object:
    """What crosses the pipe for one material: a tuple for a P-256 key read in bulk (pickled
    ten times faster than the object), the material itself otherwise."""
    if material.p256 and material.kind is Kind.PRIVATE_KEY:
        return (material.source, material.fingerprint, material.p256)
    return material


def receive(pipe: int) -> list[KnownMaterial] | InputError | None:
    """A worker's materials or its error; None if it ended before it sent them whole."""
    import pickle  # noqa: PLC0415

    chunks = []
    while chunk := os.read(pipe, 1 << 20):
        chunks.append(chunk)
    data = b"".join(chunks)
    if len(data) < 8 or len(data) != 8 + int.from_bytes(data[:8], "little"):
        return None
    # written by this program's own forked worker, never by anyone else
    sent = pickle.loads(data[8:])  # noqa: S301
    if isinstance(sent, tuple):
        message, path, line = sent
        return InputError(message, path=path, line=line)
    return [
        KnownMaterial(Kind.PRIVATE_KEY, m[0], m[1], (), m[2]) if isinstance(m, tuple) else m
        for m in sent
    ]


def _reap(pid: int) -> None:
    """Wait for a worker, stopping it first if it is still reading (an error came first)."""
    try:
        if os.waitpid(pid, os.WNOHANG) == (0, 0):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    except ChildProcessError:  # pragma: no cover - already reaped
        pass


def add_arguments(group: argparse._ArgumentGroup) -> None:
    """`--key-dir` and `--keys-from`, next to `--key` in `provguard scan`."""
    group.add_argument(
        "--key-dir",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="every private key and certificate in the files under DIR (repeatable)",
    )
    group.add_argument(
        "--keys-from",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a list of key/certificate files: one path per line, or a provisioning run's "
        ".json (array of paths or {key, cert, privateKey, clientCert, caCert, id}) or .csv "
        "(header with those columns); repeatable",
    )


def from_args(args: argparse.Namespace) -> list[KnownMaterial]:
    """Every key of each `--key` file (all of them, not only the first), `--key-dir` and
    `--keys-from`."""
    jobs = getattr(args, "jobs", 1)
    out: list[KnownMaterial] = []
    with bulk():
        for path in args.key:
            out += load_file(path, need_key=True)
        for path in getattr(args, "key_dir", []):
            out += load_dir(path, jobs)
        for path in getattr(args, "keys_from", []):
            out += load_list(path, jobs)
    return out
