"""The modem stand-in the provisioning tests grew up with, now `provguard.modemsim` (shipped as
`provguard modem-sim`). Kept as a thin shim so tests read as before: `ModemStandIn()` is a
`ModemSim` with a fixed IMEI (352656100000000)."""

from __future__ import annotations

from typing import Any

from provguard.modemsim import ModemSim, ModemState, sha256_hex

__all__ = ["IMEI", "ModemStandIn", "assert_no_key_material", "sha256_hex"]

IMEI = "352656100000000"


class ModemStandIn(ModemSim):
    """`with ModemStandIn(cfun=1) as modem:` serves a fresh modem on `modem.port`."""

    def __init__(self, state: ModemState | None = None, **options: Any):
        super().__init__(state if state is not None else ModemState.create(imei=IMEI), **options)


def assert_no_key_material(text: str, key_pem: bytes | str) -> None:
    """Fail if `text` shows any base64 line of `key_pem`, without the failure showing it."""
    pem = key_pem.decode("ascii") if isinstance(key_pem, bytes) else key_pem
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    leaked = sum(1 for line in body if line in text)
    if leaked:
        raise AssertionError(f"the output shows {leaked} line(s) of the private key")
