"""Host names as users type them, checked and turned into what TLS and X.509 carry.

DNS limits (RFC 1035 2.3.4: 253 characters, labels of 1 to 63) and IDNA for non-ASCII names
(Python's `idna` codec, RFC 3490): `bücher.example` is `xn--bcher-kva.example` on the wire, in SNI
and in a certificate's subjectAltName.
"""

from __future__ import annotations

import ipaddress

from provguard.errors import UsageError

NAME_MAX, LABEL_MAX = 253, 63
_FORBIDDEN = set("/\\@:[] ")


def shorten(text: str, limit: int = 40) -> str:
    """`text` as a message may quote it: at most `limit` characters."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def host_name(text: str, *, what: str = "host name") -> str:
    """An IP address as is, or the ASCII (IDNA) form of a DNS name; UsageError otherwise."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        encoded = text.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        encoded = ""
    # The codec itself refuses an empty label or one over LABEL_MAX characters.
    if (
        not encoded
        or len(encoded) > NAME_MAX
        or any(c in _FORBIDDEN or not c.isprintable() for c in encoded)
        or any(label.startswith("-") or label.endswith("-") for label in encoded.split("."))
    ):
        raise UsageError(
            f"{shorten(text)!r}: not a valid {what} (at most {NAME_MAX} characters, labels of 1 "
            f"to {LABEL_MAX} letters, digits or '-', IDNA for non-ASCII names)"
        )
    return encoded
