"""The worker's registry lookup: schema text by id, 404 as unknown, anything else as "retry"."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest

from k2.ingest.schemas import RegistrySchemaSource, RegistryUnavailableError

USER, PASSWORD = "k2-user", "p@ss:word/secret"  # userinfo is percent-encoded in the URL
USERINFO = f"{USER}:{quote(PASSWORD, safe='')}"
SCHEMA = json.dumps({"type": "record", "name": "Trade", "fields": []})


class _Registry(BaseHTTPRequestHandler):
    """Answers `/ccompat/schemas/ids/<id>`: 1 exists, 7 fails, any other id is unknown."""

    def do_GET(self) -> None:
        expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            self._reply(401, {"error_code": 401, "message": "Unauthorized"})
        elif self.path == "/ccompat/schemas/ids/1":
            self._reply(200, {"schema": SCHEMA})
        elif self.path == "/ccompat/schemas/ids/7":
            self._reply(503, {"error_code": 50301, "message": "storage unavailable"})
        else:
            self._reply(404, {"error_code": 40403, "message": "Schema not found"})

    def _reply(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def registry_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://{USERINFO}@127.0.0.1:{server.server_port}/ccompat/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_schema_text_by_id_with_the_url_credentials(registry_url: str) -> None:
    source = RegistrySchemaSource(registry_url)
    try:
        assert source.schema_text(1) == SCHEMA
        assert source.schema_text(2) is None  # unknown: maybe registered a moment later
    finally:
        source.close()


def test_registry_errors_mean_retry_and_never_quote_the_password(registry_url: str) -> None:
    source = RegistrySchemaSource(registry_url)
    try:
        with pytest.raises(RegistryUnavailableError, match="503") as raised:
            source.schema_text(7)
    finally:
        source.close()
    assert "secret" not in str(raised.value)
    assert "storage unavailable" in str(raised.value)  # the registry's own reason


def test_wrong_credentials_mean_retry(registry_url: str) -> None:
    source = RegistrySchemaSource(registry_url.replace(USER, "nobody"))
    try:
        with pytest.raises(RegistryUnavailableError, match="401"):
            source.schema_text(1)
    finally:
        source.close()


def test_unreachable_registry_means_retry() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = RegistrySchemaSource(f"http://{USERINFO}@127.0.0.1:{port}/ccompat")
    try:
        with pytest.raises(RegistryUnavailableError, match="unreachable") as raised:
            source.schema_text(1)
    finally:
        source.close()
    assert raised.value.__cause__ is not None
    assert "secret" not in str(raised.value)


# --- several instances of one registry (`K2_SCHEMA_REGISTRY_URL` as a comma-separated list) ---
class _Counting(_Registry):
    """The same registry, counting the requests each instance served."""

    served: dict[int, int]

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        _Counting.served[port] = _Counting.served.get(port, 0) + 1
        super().do_GET()


@pytest.fixture
def two_instances() -> Iterator[tuple[str, str]]:
    _Counting.served = {}
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Counting) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        a, b = (f"http://{USERINFO}@127.0.0.1:{s.server_port}/ccompat" for s in servers)
        yield a, b
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join()


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://{USERINFO}@127.0.0.1:{port}/ccompat"


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", maxsplit=1)[0])


def test_a_dead_first_instance_fails_over_and_the_next_one_is_kept(
    two_instances: tuple[str, str],
) -> None:
    dead, (alive, _) = _dead_url(), two_instances
    source = RegistrySchemaSource(f"{dead},{alive}")
    try:
        assert source.schema_text(1) == SCHEMA
        assert source.schema_text(2) is None
        assert source.schema_text(1) == SCHEMA
    finally:
        source.close()
    assert _Counting.served == {_port(alive): 3}  # after the failover, no detour via the dead one


def test_a_failing_instance_fails_over_but_a_404_is_the_answer(
    two_instances: tuple[str, str],
) -> None:
    a, b = two_instances
    source = RegistrySchemaSource(f"{a},{b}")
    try:
        assert source.schema_text(2) is None  # unknown id: the first answer is final
        assert _Counting.served == {_port(a): 1}
        with pytest.raises(RegistryUnavailableError, match="503") as raised:
            source.schema_text(7)  # both fail: retry later
    finally:
        source.close()
    assert _Counting.served == {_port(a): 2, _port(b): 1}
    assert str(raised.value).count("storage unavailable") == 2
    assert "secret" not in str(raised.value)


def test_every_instance_down_means_retry() -> None:
    source = RegistrySchemaSource(f"{_dead_url()},{_dead_url()}")
    try:
        with pytest.raises(RegistryUnavailableError, match="unreachable") as raised:
            source.schema_text(1)
    finally:
        source.close()
    assert str(raised.value).count("unreachable") == 2
    assert raised.value.__cause__ is not None
    assert "secret" not in str(raised.value)
