"""How connect() turns the Redis settings into redis-py options (no server needed; the real
TLS and password handshakes are in tests/integration/test_redis_security.py)."""

from __future__ import annotations

from pipeline.core.settings import load_settings
from pipeline.store.redis import HiredisPackingConnection, connect, redis_options


def test_plain_url_without_credentials() -> None:
    options = redis_options(load_settings(redis_url="redis://cache:6379/0"), 0.5)
    assert options["connection_class"] is HiredisPackingConnection
    assert options["socket_timeout"] == 0.5
    assert "password" not in options and "username" not in options
    assert "ssl_ca_certs" not in options


def test_password_and_acl_user() -> None:
    settings = load_settings(
        redis_url="redis://cache:6379/0", redis_password="pw", redis_username="pipeline"
    )
    options = redis_options(settings)
    assert options["password"] == "pw" and options["username"] == "pipeline"


def test_user_name_alone_is_not_sent() -> None:
    options = redis_options(load_settings(redis_username="pipeline"))
    assert "username" not in options


def test_tls_url_with_a_ca_file() -> None:
    settings = load_settings(redis_url="rediss://cache:6380/0", redis_ssl_cafile="/etc/ca.pem")
    options = redis_options(settings)
    # rediss:// picks redis-py's TLS connection; the CA file verifies the server.
    assert "connection_class" not in options
    assert options["ssl_ca_certs"] == "/etc/ca.pem"
    pool = connect(settings).redis.connection_pool
    assert pool.connection_class.__name__ == "SSLConnection"
    assert pool.connection_kwargs["ssl_ca_certs"] == "/etc/ca.pem"


def test_password_never_in_the_store_repr() -> None:
    store = connect(load_settings(redis_password="very-secret"))
    assert "very-secret" not in repr(store.redis) and "very-secret" not in repr(store)
