"""Redis with a password and TLS (PIPELINE_REDIS_PASSWORD, rediss://, PIPELINE_REDIS_SSL_CAFILE)
through connect(), the function every worker, reader and collector builds its store with,
against a real redis-server that requires both (certificates made by openssl for the test)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from pipeline.core.settings import load_settings
from pipeline.store.base import Reads, Writes
from pipeline.store.redis import connect
from pipeline.tools.local import free_port, redis_binary, spawn, wait_for_port

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class SecureRedis:
    plain_port: int
    tls_port: int
    ca_file: Path
    other_ca_file: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _certificate_authority(directory: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
        cwd=directory,
    )  # fmt: skip


@pytest.fixture(scope="module")
def secure_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRedis]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("redis-tls")
    _certificate_authority(directory, "ca")
    _certificate_authority(directory, "other-ca")
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
        cwd=directory,
    )  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.cnf",
        cwd=directory,
    )  # fmt: skip
    plain_port, tls_port = free_port(), free_port()
    server = spawn(
        "redis-secure",
        [
            redis_binary(), "--bind", "127.0.0.1", "--port", str(plain_port),
            "--tls-port", str(tls_port), "--tls-cert-file", str(directory / "server.pem"),
            "--tls-key-file", str(directory / "server.key"),
            "--tls-ca-cert-file", str(directory / "ca.pem"), "--tls-auth-clients", "no",
            "--requirepass", PASSWORD, "--save", "", "--appendonly", "no",
        ],
        directory / "redis.log",
    )  # fmt: skip
    try:
        wait_for_port("127.0.0.1", plain_port, 15.0, server.process)
        wait_for_port("127.0.0.1", tls_port, 15.0, server.process)
        yield SecureRedis(plain_port, tls_port, directory / "ca.pem", directory / "other-ca.pem")
    finally:
        server.stop()


async def _round_trip(**overrides: str) -> None:
    """A fenced write and a read through the store that connect() builds."""
    store = connect(load_settings(key_prefix="sec", **overrides), timeout_s=5.0)
    try:
        await store.ping()
        writes = Writes()
        writes.set("sec:probe", "42")
        await store.apply(writes)
        reads = Reads()
        reads.get("sec:probe")
        assert await store.read(reads) == [b"42"]
    finally:
        await store.close()


async def test_tls_and_password_from_settings(secure_redis: SecureRedis) -> None:
    await _round_trip(
        redis_url=f"rediss://127.0.0.1:{secure_redis.tls_port}/0",
        redis_password=PASSWORD,
        redis_ssl_cafile=str(secure_redis.ca_file),
    )


async def test_password_without_tls_keeps_the_fast_connection(secure_redis: SecureRedis) -> None:
    await _round_trip(
        redis_url=f"redis://127.0.0.1:{secure_redis.plain_port}/0", redis_password=PASSWORD
    )


async def test_password_in_the_url_wins(secure_redis: SecureRedis) -> None:
    await _round_trip(
        redis_url=f"rediss://:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{secure_redis.tls_port}/0",
        redis_password="not the password",
        redis_ssl_cafile=str(secure_redis.ca_file),
    )


async def test_no_password_is_refused(secure_redis: SecureRedis) -> None:
    # redis-py's AuthenticationError is a ConnectionError: the store's callers treat it as
    # Redis being unavailable (readiness 503 with the reason, workers wait and log it).
    with pytest.raises(AuthenticationError):
        await _round_trip(redis_url=f"redis://127.0.0.1:{secure_redis.plain_port}/0")


async def test_server_signed_by_another_ca_is_refused(secure_redis: SecureRedis) -> None:
    with pytest.raises(RedisConnectionError, match="(?i)certificate"):
        await _round_trip(
            redis_url=f"rediss://127.0.0.1:{secure_redis.tls_port}/0",
            redis_password=PASSWORD,
            redis_ssl_cafile=str(secure_redis.other_ca_file),
        )
