"""One finding per object in an image with thousands of objects (issue 10: the cost must not grow
with image content squared): the hits of one segment are merged comparing each only with the hits
of the same key, with the result the all-pairs rule gives."""

from __future__ import annotations

import dataclasses
import random
import re

import pytest

from provguard.scan import engine
from provguard.scan.engine import Hit, _merge
from provguard.scan.model import Kind


def _all_pairs(hits: list[Hit]) -> list[Hit]:
    """The rule, comparing every pair: a fragment holding a whole encoding of the same key is
    dropped; then, by start (longest first, known first, whole first), a hit inside a kept hit of
    the same key is dropped and gives it what it knew (known file, algorithm)."""
    whole = [h for h in hits if not h.fragment]
    hits = [h for h in hits if not h.fragment or not any(w.inside(h) for w in whole)]
    hits.sort(key=lambda h: (h.start, h.start - h.end, h.known is None, h.fragment))
    kept: list[Hit] = []
    for hit in hits:
        container = next((i for i, k in enumerate(kept) if hit.inside(k)), None)
        if container is None:
            kept.append(hit)
            continue
        other = kept[container]
        kept[container] = dataclasses.replace(
            other, known=other.known or hit.known, algorithm=other.algorithm or hit.algorithm
        )
    return kept


def _random_hits(rng: random.Random) -> list[Hit]:
    keys = [f"SHA256:{i:064x}" for i in range(rng.randrange(1, 5))]
    hits = []
    for _ in range(rng.randrange(0, 40)):
        start = rng.randrange(0, 300)
        end = start + rng.randrange(1, 120)
        hits.append(
            Hit(
                start,
                end,
                rng.choice((Kind.PRIVATE_KEY, Kind.CERTIFICATE)),
                rng.choice(("DER", "PEM", "fragment of base64", "fragment of DER")),
                rng.choice(keys),
                rng.choice((None, "keys/a.key", "keys/b.key")),
                rng.choice((None, "EC secp256r1")),
            )
        )
    if hits and rng.random() < 0.3:  # the same span found twice (a known key and a detector)
        twin = rng.choice(hits)
        hits.append(dataclasses.replace(twin, known=None, encoding="DER"))
    return hits


def test_merging_by_key_gives_what_comparing_every_pair_gives() -> None:
    rng = random.Random(20261203)
    for _ in range(5000):
        hits = _random_hits(rng)
        assert _merge(list(hits)) == _all_pairs(list(hits))


@pytest.mark.parametrize("distinct", [True, False])
def test_thousands_of_objects_are_not_compared_pairwise(
    monkeypatch: pytest.MonkeyPatch, distinct: bool
) -> None:
    """4,000 certificates (a large trust store), or one certificate 4,000 times: each hit is
    compared with at most a couple of others, and every object is kept."""
    compared = 0
    real = Hit.inside

    def counting(self: Hit, other: Hit) -> bool:
        nonlocal compared
        compared += 1
        return real(self, other)

    monkeypatch.setattr(engine.Hit, "inside", counting)
    count = 4000
    key = "SHA256:{:064x}".format
    hits = [
        Hit(i * 1000, i * 1000 + 900, Kind.CERTIFICATE, "DER", key(i if distinct else 0))
        for i in range(count)
    ]
    kept = _merge(hits)  # comparing every pair: 8 million comparisons
    assert [(h.start, h.key) for h in kept] == [(h.start, h.key) for h in hits]
    assert compared <= 2 * count


# --- line numbers for SARIF, for thousands of findings ------------------------------------------


def test_line_numbers_of_many_places_are_counted_as_from_the_start() -> None:
    """`_line_breaks_before`: for each place, the line endings before it (CR LF, CR and LF each
    one), even where a place falls between the CR and the LF of a line ending."""
    from provguard.scan.engine import _line_breaks_before  # noqa: PLC0415

    rng = random.Random(7)
    for _ in range(2000):
        data = bytes(rng.choice(b"ab\r\n") for _ in range(rng.randrange(0, 60)))
        places = [rng.randrange(0, len(data) + 1) for _ in range(rng.randrange(1, 8))]
        expected = {p: len(re.findall(rb"\r\n|\r|\n", data[:p])) for p in places}
        assert _line_breaks_before(data, places) == expected, (data, places)


def test_hex_record_lines_of_many_addresses() -> None:
    """`lines_of_addresses`: the line of the first data record holding each address, in a HEX
    whose records (written here) come in any order, across extended-address records."""
    from provguard.scan.hexfile import lines_of_addresses  # noqa: PLC0415

    def record(kind: int, address: int, payload: bytes) -> bytes:
        body = bytes([len(payload), address >> 8, address & 0xFF, kind]) + payload
        return b":" + body.hex().upper().encode() + b"%02X" % (-sum(body) & 0xFF)

    rng = random.Random(11)
    records = [(0x10000 * (i // 4096) + 16 * (i % 4096), 16) for i in range(6000)]
    rng.shuffle(records)
    lines, expected_line = [], {}
    for start, size in records:
        lines.append(record(4, 0, (start >> 16).to_bytes(2, "big")))
        lines.append(record(0, start & 0xFFFF, bytes(size)))
        expected_line[start] = len(lines)  # 1-based: the data record just written
    lines.append(b":00000001FF")
    wanted = rng.sample([start + rng.randrange(16) for start, _ in records], 3000)
    expected = {a: expected_line[a - a % 16] for a in wanted}
    assert lines_of_addresses(b"\n".join(lines) + b"\n", wanted) == expected
