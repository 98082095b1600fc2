"""What `provguard probe` reports when the TCP connection itself cannot be made.

Each way of failing is caused for real on loopback, and the expected text is built from what the
operating system says about that failure (getaddrinfo's own message, the errno's strerror), not from
provguard. Found by `make mutation MODULE=probe`: mutants of these reports (another stage, no
message, the errno's number instead of its text) passed every other test.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
from collections.abc import Iterator

import pytest

from provguard.probe import Endpoint, ProbeCredentials, ProbeResult, probe
from tests import factories as f

#: RFC 6761 6.4: ".invalid" names never resolve, anywhere.
UNRESOLVABLE = "provguard-probe-test.invalid"


@pytest.fixture(scope="module")
def credentials() -> ProbeCredentials:
    ca_key = f.ec_key()
    return ProbeCredentials(f.cert_pem(f.make_cert("connect test CA", ca_key, ca=True)), "ca.pem")


def run(endpoint: Endpoint, credentials: ProbeCredentials, timeout: float = 5.0) -> ProbeResult:
    return probe(endpoint, credentials, client_id="dev-1", timeout=timeout)


def test_a_host_name_that_does_not_resolve(credentials: ProbeCredentials) -> None:
    with pytest.raises(socket.gaierror) as lookup:
        socket.getaddrinfo(UNRESOLVABLE, 8883, type=socket.SOCK_STREAM)
    result = run(Endpoint(UNRESOLVABLE, 8883), credentials)
    assert result == ProbeResult(
        False, "connect", f"cannot resolve {UNRESOLVABLE}: {lookup.value.strerror}", ()
    )


def test_nothing_listening(credentials: ProbeCredentials) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: the kernel answers with RST
        port = closed.getsockname()[1]
        result = run(Endpoint("127.0.0.1", port), credentials)
    assert result == ProbeResult(
        False,
        "connect",
        f"connection refused by 127.0.0.1:{port} (nothing listens on that port)",
        (),
    )


@contextlib.contextmanager
def full_backlog(*, closed_after: float) -> Iterator[int]:
    """A port whose accept queue is full: Linux drops further SYNs, so a connect never ends.

    After `closed_after` seconds the listener closes, and the next SYN a client retries is
    answered with RST: a probe that does not give up on its own ends as "refused", not "timeout".
    """
    with socket.socket() as listener, contextlib.ExitStack() as held:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(8):  # fill the queue (its length is the backlog plus one)
            try:
                held.enter_context(socket.create_connection(("127.0.0.1", port), timeout=0.3))
            except TimeoutError:
                break
        else:
            pytest.fail("the listener's accept queue never filled")
        watchdog = threading.Timer(closed_after, listener.close)
        watchdog.start()
        try:
            yield port
        finally:
            watchdog.cancel()


def test_no_tcp_connection_within_the_timeout(credentials: ProbeCredentials) -> None:
    with full_backlog(closed_after=4.0) as port:
        result = run(Endpoint("127.0.0.1", port), credentials, timeout=0.4)
    assert result == ProbeResult(
        False, "connect", f"no TCP connection to 127.0.0.1:{port} within 0.4 s", ()
    )


def test_another_connect_error_is_named_by_its_text(credentials: ProbeCredentials) -> None:
    # Linux's tcp_v4_connect refuses a multicast destination with ENETUNREACH.
    result = run(Endpoint("224.0.0.1", 8883), credentials)
    assert result == ProbeResult(
        False,
        "connect",
        f"cannot connect to 224.0.0.1:8883: {os.strerror(errno.ENETUNREACH)}",
        (),
    )
