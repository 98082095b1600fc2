"""Known keys at factory scale (issue 10): the index, bulk key sets, and every key of a file.

Expected bytes are derived here with cryptography's own serialization, never from the registry
under test; the cost test counts how often a candidate is compared with a known key (the index
counts its confirmations), which does not depend on the machine's speed.
"""

from __future__ import annotations

import base64
import binascii
import csv
import dataclasses
import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from provguard.cli import main
from provguard.commands.ledger import EXPORT_COLUMNS
from provguard.credentials import key_fingerprint
from provguard.scan.keyset import EntryError, load_dir, load_list, parse_credentials
from provguard.scan.known import (
    STREAM_PASSES,
    TEXT_CHUNK,
    KnownIndex,
    KnownMaterial,
    _Block,
    key_material,
    p256_material,
)
from tests import factories as f

RNG_SEED = 20261202
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def rng() -> random.Random:
    return random.Random(RNG_SEED)


def seeded_p256(r: random.Random, count: int) -> list[ec.EllipticCurvePrivateKey]:
    """P-256 keys from `r`: the same in every run (any scalar below the curve's order)."""
    below = (1 << 256) - (1 << 224)  # the order of P-256 is just above
    return [ec.derive_private_key(r.randrange(1, below), ec.SECP256R1()) for _ in range(count)]


def der(key: PrivateKey, *, pkcs8: bool = True) -> bytes:
    return f.key_der(key, pkcs8=pkcs8)


def encodings(key: PrivateKey) -> dict[str, bytes]:
    """Every layout the index promises to find, derived with cryptography's serialization."""
    traditional = "SEC1" if isinstance(key, ec.EllipticCurvePrivateKey) else "PKCS#1"
    out: dict[str, bytes] = {}
    for pkcs8, form in ((True, "PKCS#8"), (False, traditional)):
        blob = der(key, pkcs8=pkcs8)
        out[f"{form} DER"] = blob
        out[f"PEM {form}"] = f.key_pem(key, pkcs8=pkcs8)
        out[f"base64 {form} DER"] = base64.b64encode(blob)
        out[f"ASCII hex of {form} DER"] = binascii.hexlify(blob)
        out[f"ASCII hex of {form} DER "] = binascii.hexlify(blob).upper()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        value = key.private_numbers().private_value
        out["raw EC private scalar"] = value.to_bytes(32, "big")
        out["raw EC private scalar (little-endian)"] = value.to_bytes(32, "little")
    else:
        numbers = key.private_numbers()
        for label, number in (("d", numbers.d), ("p", numbers.p), ("q", numbers.q)):
            size = (number.bit_length() + 7) // 8
            name = "private exponent d" if label == "d" else f"prime {label}"
            out[f"raw RSA {name} (little-endian)"] = number.to_bytes(size, "little")
    return out


@dataclass(frozen=True)
class Planted:
    encoding: str
    start: int
    end: int


def image_with(blobs: dict[str, bytes], gap: int = 700) -> tuple[bytes, list[Planted]]:
    """Random bytes with each blob at a known offset, far enough apart to be told apart."""
    r = rng()
    image = bytearray(r.randbytes(gap))
    planted = []
    for name, blob in blobs.items():
        planted.append(Planted(name.strip(), len(image), len(image) + len(blob)))
        image += blob + r.randbytes(gap)
    return bytes(image), planted


# --- the index -------------------------------------------------------------------------------

#: The index looks windows up in a set of them, or streams them past what the image holds: both
#: must find the same (`auto` picks one by the sizes).
LOOKUPS = ("set", "stream")


def bulk_material(key: ec.EllipticCurvePrivateKey, source: str) -> KnownMaterial:
    """A P-256 key as `--key-dir`/`--keys-from` load it: without cryptography."""
    material = p256_material(der(key), source)
    assert material is not None
    return material


@pytest.mark.parametrize("lookup", LOOKUPS)
@pytest.mark.parametrize(
    ("make", "load"),
    [(f.ec_key, key_material), (f.ec_key, bulk_material), (f.rsa_key, key_material)],
    ids=["P-256", "P-256 in bulk", "RSA-2048"],
)
def test_every_encoding_of_a_known_key_is_found_where_it_is(make, load, lookup: str) -> None:  # type: ignore[no-untyped-def]
    key = make()
    index = KnownIndex([load(key, "device.key")], lookup=lookup)
    image, planted = image_with(encodings(key))
    matches = index.search(image)
    for plant in planted:
        at = [m for m in matches if m.start <= plant.start + 40 and m.end >= plant.end - 40]
        assert at, plant.encoding
        widest = max(at, key=lambda m: (m.end - m.start, not m.encoding.startswith("frag")))
        assert widest.material.fingerprint == key_fingerprint(key)
        assert widest.encoding == plant.encoding, (plant, widest.encoding)
        if not plant.encoding.startswith("PEM"):  # a PEM match is its body (headers are found
            assert (widest.start, widest.end) == (plant.start, plant.end)  # by the detectors)


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_p256_keys_share_their_der_header_but_only_the_known_one_is_confirmed(
    lookup: str,
) -> None:
    known, foreign = f.ec_key(), f.ec_key()
    for material in (key_material(known, "device.key"), bulk_material(known, "device.key")):
        index = KnownIndex([material], lookup=lookup)
        image, _ = image_with(encodings(foreign))
        assert index.search(image) == []
        assert index.confirmations == 0  # the shared header never even reaches a comparison


def test_scalars_sharing_15_bytes_are_different_keys_and_16_are_a_fragment() -> None:
    """The fragment rule counts secret bytes: 15 shared secret bytes are coincidence."""
    base = rng().randrange(1 << 200, 1 << 250)
    prefix = base.to_bytes(32, "big")
    known = ec.derive_private_key(int.from_bytes(prefix, "big"), ec.SECP256R1())
    index = KnownIndex([key_material(known, "device.key")])
    for shared, expect in ((15, False), (16, True)):
        other_scalar = prefix[:shared] + bytes(b ^ 0x5A for b in prefix[shared:])
        other = ec.derive_private_key(int.from_bytes(other_scalar, "big"), ec.SECP256R1())
        assert other.private_numbers().private_value.to_bytes(32, "big")[:shared] == prefix[:shared]
        image, _ = image_with({"PKCS#8 DER": der(other)})
        found = index.search(image)
        assert bool(found) is expect, shared
        assert all(m.encoding.startswith("fragment") for m in found)


def test_rsa_key_sharing_a_long_public_prefix_with_a_known_key_is_not_it() -> None:
    """Header, modulus and exponent of the known key (300 bytes, nothing secret) followed by
    another key's secret: a long shared run, but no secret byte of the known key."""
    known, other = f.rsa_key(), f.rsa_key()
    known_der, other_der = der(known, pkcs8=False), der(other, pkcs8=False)
    d = known.private_numbers().d
    size = (d.bit_length() + 7) // 8
    at = known_der.find(d.to_bytes(size, "big"))  # d's first byte
    zero = int(d.bit_length() % 8 == 0)  # DER puts 00 in front of a high first byte
    content = size + zero
    cut = at - zero - (2 if content < 0x80 else 3 if content < 0x100 else 4)  # d's INTEGER
    assert known_der[cut] == 0x02
    forged = known_der[:cut] + other_der[cut:]
    index = KnownIndex([key_material(known, "device.key")])
    image, _ = image_with({"forged": forged})
    assert index.search(image) == []
    # ... while 16 bytes of d after the same prefix are a fragment of the known key
    image, _ = image_with({"leak": known_der[: at + 16] + other_der[at + 16 :]})
    found = index.search(image)
    assert found
    assert {m.encoding for m in found} <= {"fragment of PKCS#1 DER", "fragment of PKCS#8 DER"}


def test_fragments_need_16_secret_bytes_in_32_shared_bytes() -> None:
    key = f.ec_key()
    blob = der(key)  # PKCS#8: the scalar is the 32 bytes after `04 20`
    scalar = blob.find(key.private_numbers().private_value.to_bytes(32, "big"))
    index = KnownIndex([key_material(key, "device.key")])

    def cut(start: int, end: int) -> bytes:
        """The key's bytes [start, end), between bytes that are not its own: random filler
        next to them would continue the shared run once in 256 keys."""
        return bytes([blob[start - 1] ^ 0xFF]) + blob[start:end] + bytes([blob[end] ^ 0xFF])

    cases = {
        "16 secret of 32": (cut(scalar - 16, scalar + 16), True),
        "15 secret of 32": (cut(scalar - 17, scalar + 15), False),
        "30 bytes": (cut(scalar, scalar + 30), False),
        "base64, 16 secret": (base64.b64encode(blob)[40:80], True),
    }
    for name, (piece, expect) in cases.items():
        image, _ = image_with({name: piece})
        found = index.search(image)
        assert bool(found) is expect, name
        if expect:
            assert found[0].encoding.startswith("fragment of"), name


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_matching_cost_does_not_grow_with_the_number_of_known_keys(lookup: str) -> None:
    """200 foreign P-256 keys (DER, PEM, base64, hex) and a trust store in the image, one known key
    planted: exactly as many comparisons with 1 known key as with 600.

    The keys are seeded: a window with 3 bytes of a key's own names it (MIN_UNIQUE), and with
    random keys one of the 200 foreign keys shares such a window with one of the 600 about once
    in 30 runs, which costs one comparison more (by design: 1 in 2**24 per pair of keys)."""
    r = random.Random(RNG_SEED + 1)  # not the filler's stream
    foreign = seeded_p256(r, 200)
    ca_key = f.ec_key()
    store = [f.cert_pem(f.make_cert(f"ca {i}", ca_key, ca=True)) for i in range(20)]
    (planted,) = seeded_p256(r, 1)
    blobs: dict[str, bytes] = {}
    for i, key in enumerate(foreign):
        form = i % 4
        blob = der(key, pkcs8=bool(i % 2))
        blobs[f"foreign {i}"] = [
            blob,
            f.key_pem(key),
            base64.b64encode(blob),
            binascii.hexlify(blob),
        ][form]
    for i, pem in enumerate(store):
        blobs[f"ca {i}"] = pem
    blobs["planted"] = f.key_pem(planted)
    image, _ = image_with(blobs, gap=200)
    many = seeded_p256(r, 599)

    def comparisons(keys: list[ec.EllipticCurvePrivateKey]) -> tuple[int, int]:
        materials = [p256_material(der(k), f"k{i}") for i, k in enumerate(keys)]
        index = KnownIndex([m for m in materials if m is not None], lookup=lookup)
        assert len(index) == len(keys)
        found = index.search(image)
        assert {m.material.fingerprint for m in found} == {key_fingerprint(planted)}
        return index.confirmations, len(found)

    one = comparisons([planted])
    assert one == comparisons([*many[:300], planted, *many[300:]])
    assert one[0] <= 8  # a handful for the planted key's windows, none for the 200 foreign


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_the_shortest_base64_fragment_is_found_at_every_byte_of_a_longer_text(lookup: str) -> None:
    """24 bytes of a key's DER holding 16 secret bytes (32 characters of base64) inside the
    base64 of a larger blob, at each of 48 byte offsets: whatever the decoded words sampled."""
    key = f.ec_key()
    blob = der(key)
    scalar = blob.find(key.private_numbers().private_value.to_bytes(32, "big"))
    piece = blob[scalar - 8 : scalar + 16]
    index = KnownIndex([bulk_material(key, "device.key")], lookup=lookup)
    filler = rng().randbytes(300)
    for shift in range(48):
        text = base64.encodebytes(filler[: 60 + shift] + piece + filler[: 90 - shift])
        image = filler[:100] + b"asset:\n" + text + filler[:100]
        found = index.search(image)
        assert found, shift
        assert all(m.encoding == "fragment of base64 PKCS#8 DER" for m in found), shift


@pytest.mark.parametrize("count", [1, 3, 4, 5, 12])
def test_sampled_words_are_located_the_same_by_find_and_by_walking_the_block(count: int) -> None:
    """A few words are looked for with `bytes.find`, more by walking the block: both give every
    sampled position of those words, and only those (not the same bytes off the sampling)."""
    r = rng()
    words = [r.randbytes(8) for _ in range(count)]
    data = bytearray(r.randbytes(4000))
    for i in range(60):  # each word at sampled and unsampled places, overlapping too
        at = r.randrange(0, len(data) - 8)
        data[at : at + 8] = words[i % count]
    data = bytes(data)
    view = memoryview(data)
    for first, step in ((0, 24), (1, 24), (5, 8)):
        size = (len(data) - first) // 8 * 8
        block = _Block(first, step, view[first : first + size].cast("Q")[:: step // 8])
        values = {int.from_bytes(w, sys.byteorder) for w in words}
        expected = [
            q
            for q in range(first, first + len(block.words) * step, step)
            if int.from_bytes(data[q : q + 8], sys.byteorder) in values
        ]
        assert block.positions(values, data) == expected


def test_auto_lookup_finds_the_same_while_it_streams_and_once_it_built_the_set() -> None:
    """Many keys and small images: the first images are searched by streaming the keys' windows
    past them, later ones with the set (built once): every search finds what a set-only index
    finds, with as many comparisons."""
    keys = [f.ec_key() for _ in range(300)]
    known = keys[123]
    blob = der(known, pkcs8=False)
    scalar = blob.find(known.private_numbers().private_value.to_bytes(32, "big"))
    image, _ = image_with(
        {
            "PEM": f.key_pem(known),
            "fragment": blob[scalar - 16 : scalar + 16],
            "little-endian": known.private_numbers().private_value.to_bytes(32, "little"),
            "foreign": der(f.ec_key(), pkcs8=False),
        },
        gap=300,
    )
    materials = [bulk_material(k, f"k{i}") for i, k in enumerate(keys)]
    reference = KnownIndex(materials, lookup="set")
    expected = sorted(
        (m.start, m.end, m.encoding, m.material.source) for m in reference.search(image)
    )
    assert len(expected) >= 3
    auto = KnownIndex(materials)
    for _ in range(STREAM_PASSES + 2):
        before = auto.confirmations
        found = sorted((m.start, m.end, m.encoding, m.material.source) for m in auto.search(image))
        assert found == expected
        assert auto.confirmations - before == reference.confirmations


def test_p256_keys_are_taken_apart_without_cryptography_to_the_same_bytes() -> None:
    for _ in range(5):
        key = f.ec_key()
        for pkcs8 in (True, False):
            material = p256_material(der(key, pkcs8=pkcs8), "k")
            assert material == key_material(key, "k")
            assert material is not None
            assert material.forms == key_material(key, "k").forms
            f.assert_no_key_material(repr(material), key)
            with pytest.raises(dataclasses.FrozenInstanceError):
                material.source = "other.key"  # type: ignore[misc]
    assert p256_material(der(f.ec_key(ec.SECP384R1())), "k") is None  # not P-256: cryptography
    assert p256_material(der(f.rsa_key(1024)), "k") is None


def _variants() -> dict[str, tuple[PrivateKey, bytes]]:
    p256, rsa_2048, p384 = f.ec_key(), f.rsa_key(), f.ec_key(ec.SECP384R1())
    pem = f.key_pem(p256)
    return {
        "PKCS#8 PEM": (p256, pem),
        "SEC1 PEM": (p256, f.key_pem(p256, pkcs8=False)),
        "CRLF line ends": (p256, pem.replace(b"\n", b"\r\n")),
        "byte order mark": (p256, b"\xef\xbb\xbf" + pem),
        "a comment before": (p256, b"# device 7\n" + pem),
        "RSA as PRIVATE KEY": (rsa_2048, f.key_pem(rsa_2048)),
        "P-384": (p384, f.key_pem(p384)),
        "DER": (p256, der(p256)),
    }


@pytest.mark.parametrize("variant", list(_variants()))
def test_a_key_file_gives_the_key_s_forms_whatever_way_it_is_read(variant: str) -> None:
    """One unencrypted PEM key per file is read the short way; anything else (BOM, text around
    it, a key that is not P-256, DER) the long way: the same forms, as cryptography writes them."""
    key, data = _variants()[variant]
    (material,) = parse_credentials(data, "device.key").materials
    expected = key_material(key, "device.key")
    assert (material.source, material.fingerprint) == ("device.key", expected.fingerprint)
    assert material.forms == expected.forms


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda body: body[:60] + b"////" + body[64:], "does not parse (damaged or unsupported)"),
        (lambda body: body[:61] + body[62:], "the base64 body does not decode"),
        (lambda body: body.replace(b"\n", b"\nProc-Type: 4,ENCRYPTED\n", 1), "is encrypted"),
    ],
    ids=["damaged", "not base64", "encrypted"],
)
def test_a_damaged_single_key_file_is_refused_as_before(damage, says: str) -> None:  # type: ignore[no-untyped-def]
    data = damage(f.key_pem(f.ec_key()))
    with pytest.raises(EntryError) as caught:
        parse_credentials(data, "device.key")
    assert says in caught.value.message
    assert caught.value.line == 1  # where the block begins


# --- bulk key sets on the command line -------------------------------------------------------


def scan(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, dict, str]:
    code = main(["scan", "--format", "json", "--quiet", "--jobs", "1", *map(str, args)])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else {}), out.err


@pytest.fixture
def fleet(tmp_path: Path) -> tuple[list[ec.EllipticCurvePrivateKey], Path]:
    """Four device keys and an image holding keys 1 and 3 as raw little-endian scalars (found only
    when the key is known)."""
    keys = [f.ec_key() for _ in range(4)]
    image, _ = image_with(
        {str(i): keys[i].private_numbers().private_value.to_bytes(32, "little") for i in (1, 3)}
    )
    path = tmp_path / "image" / "app.bin"
    path.parent.mkdir()
    path.write_bytes(image)
    return keys, path


def found_keys(report: dict) -> set[str]:
    return {x["key"] for x in report["findings"]}


def write_key(path: Path, *keys: PrivateKey) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(f.key_pem(k) for k in keys))
    return path


def test_every_key_of_a_key_file_is_used(
    fleet: tuple[list[ec.EllipticCurvePrivateKey], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys, image = fleet
    both = write_key(tmp_path / "two.pem", keys[1], keys[3])
    code, report, _ = scan(capsys, image, "--key", both)
    assert code == 1
    assert found_keys(report) == {key_fingerprint(keys[1]), key_fingerprint(keys[3])}
    text = both.read_text()
    second = text[: text.index("-----BEGIN", 10)].count("\n") + 1
    assert {x["known"] for x in report["findings"]} == {f"{both}:1", f"{both}:{second}"}
    for key in keys:
        f.assert_no_key_material(json.dumps(report), key)


def test_key_dir_uses_every_key_and_certificate_file_under_it(
    fleet: tuple[list[ec.EllipticCurvePrivateKey], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys, image = fleet
    store = tmp_path / "run-42"
    for i, key in enumerate(keys):
        write_key(store / f"dev{i}" / "device.key", key)
    (store / "dev0" / "device.der").write_bytes(der(keys[0], pkcs8=False))
    (store / "dev0" / "device.crt").write_bytes(f.cert_pem(f.make_cert("dev0", keys[0])))
    (store / "dev0" / "device.csr").write_bytes(
        b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
    )
    materials = load_dir(store)
    assert len(materials) == 6  # 5 keys (one twice) and a certificate; the CSR skipped
    code, report, _ = scan(capsys, image, "--key-dir", store)
    assert code == 1
    assert found_keys(report) == {key_fingerprint(keys[1]), key_fingerprint(keys[3])}
    assert {x["known"] for x in report["findings"]} == {
        str(store / "dev1" / "device.key"),
        str(store / "dev3" / "device.key"),
    }


def test_key_dir_refuses_what_is_not_a_key_naming_the_file(
    fleet: tuple[list[ec.EllipticCurvePrivateKey], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys, image = fleet
    store = tmp_path / "keys"
    write_key(store / "a.key", keys[0])
    (store / "notes.txt").write_text("device list\n")
    code, report, err = scan(capsys, image, "--key-dir", store)
    assert (code, report) == (2, {})
    assert err.count("\n") == 1
    assert f"{store / 'notes.txt'}: " in err
    (store / "notes.txt").unlink()
    os.mkfifo(store / "pipe")  # never opened: it would block
    code, _, err = scan(capsys, image, "--key-dir", store)
    assert code == 2
    assert f"{store / 'pipe'}: not a regular file" in err


def test_keys_from_a_list_json_or_csv(
    fleet: tuple[list[ec.EllipticCurvePrivateKey], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys, image = fleet
    expected = {key_fingerprint(keys[1]), key_fingerprint(keys[3])}
    for i, key in enumerate(keys):
        write_key(tmp_path / "keys" / f"dev{i}.key", key)
    listing = tmp_path / "devices.txt"
    listing.write_text(
        "# run 42\n\nkeys/dev0.key\n  keys/dev1.key  \n"
        + "".join(f"{tmp_path / 'keys' / f'dev{i}.key'}\n" for i in (2, 3))
    )
    export = tmp_path / "run.json"
    export.write_text(
        json.dumps(
            [
                "keys/dev0.key",
                {"id": "dev1", "key": "keys/dev1.key"},
                {"deviceId": "dev3", "privateKey": f.key_pem(keys[3]).decode()},
            ],
            indent=2,
        )
    )
    table = tmp_path / "run.csv"
    table.write_text(
        "imei,key,privateKey,status\n"
        "350000000000001,keys/dev1.key,,ok\n"
        f'350000000000003,,"{f.key_pem(keys[3]).decode()}",ok\n'
    )
    for source in (listing, export, table):
        code, report, _ = scan(capsys, image, "--keys-from", source)
        assert code == 1, source
        assert found_keys(report) == expected, source
        for key in keys:
            f.assert_no_key_material(json.dumps(report), key)
    inline = next(x["known"] for x in report["findings"] if x["key"] == key_fingerprint(keys[3]))
    assert inline == f"{table}:3:privateKey (350000000000003)"
    assert len(load_list(export)) == 3


@pytest.mark.parametrize(
    ("name", "content", "line", "says"),
    [
        (
            "list.txt",
            "keys/dev0.key\n# ok\nkeys/missing.key\n",
            3,
            "keys/missing.key: no such file",
        ),
        ("list.txt", "keys/dev0.key\nkeys\n", 2, "keys: is a directory"),
        ("run.json", '[\n  "keys/dev0.key",\n  {"id": 7},\n  "x"\n]', 3, "names no key"),
        ("run.json", '[\n  "keys/dev0.key",\n  {"key": 42}\n]', 3, '"key" must be a path'),
        ("run.json", '{"devices": []}', None, "expected a JSON array"),
        ("run.json", '[\n  "keys/dev0.key",\n  oops\n]', 3, "invalid JSON"),
        ("run.csv", "key\nkeys/dev0.key\nkeys/damaged.key\n", 3, "does not parse"),
        ("run.csv", 'id,privateKey\n1,"-----BEGIN PRIVATE KEY-----\nAAAA"\n', 2, "no matching END"),
        ("run.csv", "serial,status\n1,ok\n", 1, "names none of the columns"),
        ("list.txt", "# nothing\n", None, "names no key"),
    ],
)
def test_keys_from_bad_entries_are_one_line_exit_2_naming_file_and_line(
    fleet: tuple[list[ec.EllipticCurvePrivateKey], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str,
    line: int | None,
    says: str,
) -> None:
    keys, image = fleet
    write_key(tmp_path / "keys" / "dev0.key", keys[0])
    damaged = bytearray(f.key_pem(keys[1]))
    damaged[60:64] = b"////"  # inside the base64 body: decodes, does not parse
    (tmp_path / "keys" / "damaged.key").write_bytes(bytes(damaged))
    listing = tmp_path / name
    listing.write_text(content)
    code, report, err = scan(capsys, image, "--keys-from", listing)
    assert (code, report) == (2, {})
    assert err.count("\n") == 1, err
    where = f"{listing}:{line}: " if line else f"{listing}: "
    assert where in err, err
    assert says in err, err
    assert "Traceback" not in err
    for key in keys:
        f.assert_no_key_material(err, key)


def test_a_key_inside_a_long_base64_text_is_found_across_the_decoding_chunks() -> None:
    """A 1 MiB base64 asset holding the key's DER right where the text is cut into decoding
    chunks (a long run is decoded chunk by chunk, overlapping): found whole, once."""
    key = f.ec_key()
    blob = der(key)
    raw = bytearray(rng().randbytes(768 * 1024))
    # encodebytes writes 76 characters and a newline per 57 bytes: put the key's base64 across
    # the 256 KiB cut (TEXT_CHUNK) of the text
    at = (TEXT_CHUNK - 100) // 77 * 57
    raw[at : at + len(blob)] = blob
    text = b"asset = \\\n" + base64.encodebytes(bytes(raw))
    index = KnownIndex([key_material(key, "device.key")])
    whole = [m for m in index.search(text) if m.encoding == "base64 PKCS#8 DER"]
    assert len(whole) == 1
    # the match ends in the next chunk (the cut is inside it)
    first, last = whole[0].start, whole[0].end
    assert first < TEXT_CHUNK + len(b"asset = \\\n") < last
    assert index.confirmations < 20


@pytest.mark.parametrize(
    ("width", "separator", "found"),
    [(16, b"\n", True), (20, b'\\n"\n"', True), (64, b"\r\n", True), (12, b"\n", False)],
)
def test_headerless_base64_is_found_from_lines_of_16_characters(
    width: int, separator: bytes, found: bool
) -> None:
    key = f.ec_key()
    body = base64.b64encode(der(key))
    text = separator.join(body[i : i + width] for i in range(0, len(body), width))
    image, planted = image_with({"base64 PKCS#8 DER": b'"' + text + b'"'})
    index = KnownIndex([key_material(key, "device.key")])
    whole = [m for m in index.search(image) if m.encoding == "base64 PKCS#8 DER"]
    assert bool(whole) is found
    if found:  # from the first character of the body to its last
        assert (whole[0].start, whole[0].end) == (planted[0].start + 1, planted[0].end - 1)


@pytest.mark.parametrize("lookup", LOOKUPS)
@pytest.mark.parametrize("load", [key_material, bulk_material], ids=["one key", "in bulk"])
def test_the_shortest_fragment_is_found_wherever_it_lies(load, lookup: str) -> None:  # type: ignore[no-untyped-def]
    """The search samples the image: a 32-byte fragment holding 16 secret bytes (and 32 characters
    of base64 or hex) must be found at every offset, whatever falls on the sampled words, up to
    the first and the last byte of the image."""
    key = f.ec_key()
    blob = der(key)
    scalar = blob.find(key.private_numbers().private_value.to_bytes(32, "big"))
    index = KnownIndex([load(key, "device.key")], lookup=lookup)
    b64 = base64.b64encode(blob)
    pieces = {
        "DER, header side": blob[scalar - 16 : scalar + 16],
        "DER, public side": blob[scalar + 16 : scalar + 48],
        "base64": b64[4 * (scalar // 3) - 8 : 4 * (scalar // 3) + 24],
        "hex": binascii.hexlify(blob)[2 * scalar : 2 * scalar + 32],
    }
    filler = rng().randbytes(200)
    for name, piece in pieces.items():
        for shift in range(48):
            for image in (
                filler[: 100 + shift] + piece + filler[: 100 - shift],
                filler[:shift] + piece,  # the last bytes of the image
                piece + filler[:shift],
            ):
                found = index.search(image)
                assert found, (name, shift, len(image))
                assert all(m.material.fingerprint == key_fingerprint(key) for m in found)


def test_a_ledger_export_names_the_run_s_certificates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`provguard ledger export --format csv` (its own columns) as --keys-from: the devices'
    certificates are known, so a copy in an image is named by the row that holds it."""
    ca_key = f.ec_key()
    ca = f.make_cert("device CA", ca_key, ca=True)
    certs = [f.make_cert(f"dev{i}", f.ec_key(), issuer=(ca, ca_key)) for i in range(3)]
    export = tmp_path / "run-42.csv"
    with export.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        for i, cert in enumerate(certs):
            row = dict.fromkeys(EXPORT_COLUMNS, "")
            row |= {"imei": f"35000000000000{i}", "cert_pem": f.cert_pem(cert).decode()}
            writer.writerow(row)
    image, _ = image_with({"headerless copy": base64.b64encode(f.cert_der(certs[1]))})
    path = tmp_path / "app.bin"
    path.write_bytes(image)
    code, report, _ = scan(capsys, path, "--keys-from", export, "--fail-on", "certificate")
    assert code == 1
    [finding] = report["findings"]
    assert finding["kind"] == "certificate"
    text = export.read_text()
    line = text[: text.index("350000000000001")].count("\n") + 1  # the PEM cells span lines
    assert finding["known"] == f"{export}:{line}:cert_pem (350000000000001)"


def test_a_damaged_key_in_a_key_file_is_named_by_its_line(
    fleet: tuple[list[ec.EllipticCurvePrivateKey], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys, image = fleet
    good, bad = f.key_pem(keys[0]), bytearray(f.key_pem(keys[1]))
    bad[60:64] = b"////"  # decodes, does not parse
    both = tmp_path / "two.pem"
    both.write_bytes(b"# lab keys\n" + good + bytes(bad))
    code, report, err = scan(capsys, image, "--key", both)
    assert (code, report) == (2, {})
    line = 2 + good.count(b"\n")
    says = "the private key does not parse (damaged or unsupported)"
    assert err == f"provguard: error: {both}:{line}: {says}\n"
    for key in keys:
        f.assert_no_key_material(err, key)
