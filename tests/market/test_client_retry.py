"""ChainClient over a connection that drops: a proxy in front of a real dev node closes the
client's kept-alive connection instead of answering, as a server closing an idle connection
does when a request crosses the close."""

from __future__ import annotations

import http.client
import socket
import socketserver
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from eth_account.signers.local import LocalAccount

from powerverse.market.client import ChainClient
from tests.rpc.conftest import ThreadedNode


class DroppingProxy(socketserver.ThreadingTCPServer):
    """Forwards HTTP POSTs to the node; for the next `drops` requests whose body holds
    `match`, the request still reaches the node but the client's connection is closed
    without an answer."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, target: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.match = b""
        self.drops = 0
        self.dropped: list[bytes] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def should_drop(self, body: bytes) -> bool:
        with self.lock:
            if self.drops > 0 and self.match in body:
                self.drops -= 1
                self.dropped.append(body)
                return True
            return False


class _Handler(socketserver.StreamRequestHandler):
    server: DroppingProxy

    def handle(self) -> None:
        upstream = http.client.HTTPConnection(*self.server.target, timeout=30)
        try:
            while True:
                request_line = self.rfile.readline()
                if not request_line:
                    return
                length = 0
                while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                body = self.rfile.read(length)
                upstream.request("POST", "/", body, {"Content-Type": "application/json"})
                answer = upstream.getresponse().read()
                if self.server.should_drop(body):
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(answer)}\r\n\r\n".encode()
                    + answer
                )
                self.wfile.flush()
        finally:
            upstream.close()


@pytest.fixture
def proxy(dev_node: ThreadedNode) -> Iterator[DroppingProxy]:
    server = DroppingProxy(dev_node.url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_read_is_retried_after_a_dropped_connection(
    proxy: DroppingProxy, dev_signers: list[LocalAccount]
) -> None:
    client = ChainClient(proxy.url, dev_signers[5])
    expected = client.balance()
    proxy.match, proxy.drops = b"eth_getBalance", 2
    assert client.balance() == expected
    assert len(proxy.dropped) == 2  # two dropped tries, then an answer


def test_a_send_whose_answer_was_lost_is_mined_once(
    proxy: DroppingProxy, dev_node: ThreadedNode, dev_signers: list[LocalAccount]
) -> None:
    client = ChainClient(proxy.url, dev_signers[6])
    to = dev_signers[7].address
    before_to = client.balance(to)
    nonce = client.w3.eth.get_transaction_count(client.address)
    # The node accepts the transaction but its answer never arrives; the retry is told
    # "already known" and the client goes on to wait for the same transaction.
    proxy.match, proxy.drops = b"eth_sendRawTransaction", 1
    receipt = client.send_value(to, 12345)
    assert receipt["status"] == 1
    assert len(proxy.dropped) == 1
    assert client.balance(to) == before_to + 12345  # paid once
    assert client.w3.eth.get_transaction_count(client.address) == nonce + 1
    # the client's nonce tracking still works afterwards
    assert client.send_value(to, 1)["status"] == 1
    assert client.balance(to) == before_to + 12346
