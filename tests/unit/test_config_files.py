"""The committed deployment and config files agree with the code that reads them.

docker-compose.yml, deploy/Dockerfile and topics.yaml cannot be run in a unit test (no Docker
engine, no broker), so these tests read them: every PIPELINE_* variable is a real setting
and parses, every command is a real subcommand, ports stay on loopback, topics.yaml loads
through the app's own loader and comments every key (config files are documentation).
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.core.settings import ENV_PREFIX, Settings, load_settings
from pipeline.core.topics import load_topics
from pipeline.features.registry import AGENT_GROUPS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
TOPICS = ROOT / "topics.yaml"

DOCKERFILE_REF = "deploy/Dockerfile"
INFRA_SERVICES = {"kafka", "redis"}
APP_SERVICES = {
    "topics",
    "worker-trending",
    "worker-catalog",
    "worker-personal",
    "worker-ranking",
    "worker-segments",
    "reader",
    "collector",
}
SUBCOMMANDS = {"worker", "reader", "collector", "topics", "generate"}
# HTTP services: (service, host setting, port setting).
HTTP_SERVICES = [
    ("reader", "reader_host", "reader_port"),
    ("collector", "collector_host", "collector_port"),
]

SETTING_OF_ENV = {ENV_PREFIX + name.upper(): name for name in Settings.model_fields}


# --- helpers ---------------------------------------------------------------------------------


@functools.cache
def compose_doc() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict), "docker-compose.yml is not a mapping"
    assert isinstance(document.get("services"), dict), "docker-compose.yml has no services"
    return document


def built_services(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services whose image is built from deploy/Dockerfile: the pipeline's own roles."""
    found = {}
    for name, service in document["services"].items():
        build = (service or {}).get("build")
        if not isinstance(build, dict):
            continue
        if str(build.get("dockerfile", "")).removeprefix("./") == DOCKERFILE_REF:
            found[name] = service
    return found


def app_service_names() -> list[str]:
    """Parametrisation ids; falls back to the required set if the file cannot be read, so
    the tests (not collection) report the problem."""
    try:
        return sorted(set(built_services(compose_doc())) | APP_SERVICES)
    except Exception:
        return sorted(APP_SERVICES)


def environment_of(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's ``environment`` as a mapping (compose accepts a mapping or KEY=VALUE list)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        env: dict[str, str | None] = {}
        for entry in raw:
            key, sep, value = str(entry).partition("=")
            env[key] = value if sep else None
        return env
    return {str(key): None if value is None else str(value) for key, value in raw.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def option_value(argv: list[str], option: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == option and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, "deploy/Dockerfile ends inside a continued line"
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "deploy/Dockerfile has no FROM"
    return instructions[starts[-1] :]


def env_assignments(arguments: str) -> dict[str, str]:
    """Parse an ENV instruction: ``K=V K2="V 2"`` or the legacy ``K V``."""
    tokens = shlex.split(arguments)
    if tokens and "=" not in tokens[0]:
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(token.split("=", 1) for token in tokens)


def image_environment() -> dict[str, str]:
    """PIPELINE_* variables the final image sets with ENV."""
    env: dict[str, str] = {}
    for keyword, arguments in final_stage(dockerfile_instructions()):
        if keyword == "ENV":
            env.update(env_assignments(arguments))
    return {key: value for key, value in env.items() if key.startswith(ENV_PREFIX)}


def settings_from_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str | None]) -> Settings:
    """Build settings exactly as a container would: from these variables and no others."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(ENV_PREFIX):
            assert value is not None, f"{key} has no value (compose would copy the host's)"
            monkeypatch.setenv(key, value)
    return load_settings()


def container_env(name: str) -> dict[str, str | None]:
    """What a container of service ``name`` sees: the image's ENV, then compose's."""
    return {**image_environment(), **environment_of(compose_doc()["services"][name])}


# --- (a) docker-compose.yml: services, settings ----------------------------------------------


def test_compose_parses_and_has_the_services() -> None:
    services = compose_doc()["services"]
    missing = (INFRA_SERVICES | APP_SERVICES) - set(services)
    assert not missing, f"docker-compose.yml lacks services {sorted(missing)}"
    not_built = APP_SERVICES - set(built_services(compose_doc()))
    assert not not_built, f"services not built from {DOCKERFILE_REF}: {sorted(not_built)}"


def test_compose_shares_settings_through_the_anchor() -> None:
    shared = compose_doc().get("x-pipeline-env")
    assert isinstance(shared, dict) and shared, "x-pipeline-env (shared settings) is missing"
    for name, service in built_services(compose_doc()).items():
        env = environment_of(service)
        lost = {key for key in shared if key not in env}
        assert not lost, f"{name} drops shared settings {sorted(lost)}"


@pytest.mark.parametrize("name", app_service_names())
def test_compose_environment_names_real_settings(name: str) -> None:
    env = environment_of(compose_doc()["services"][name])
    unknown = sorted(key for key in env if key.startswith(ENV_PREFIX) and key not in SETTING_OF_ENV)
    assert not unknown, f"{name}: {unknown} are not settings (known: {sorted(SETTING_OF_ENV)})"
    interpolated = sorted(key for key, value in env.items() if value and "${" in value)
    assert not interpolated, f"{name}: {interpolated} use interpolation; set literal values"


@pytest.mark.parametrize("name", app_service_names())
def test_compose_environment_builds_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = container_env(name)
    settings = settings_from_env(monkeypatch, env)
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX) or key not in SETTING_OF_ENV:
            continue
        value = getattr(settings, SETTING_OF_ENV[key])
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            assert float(value) == float(str(raw)), f"{name}: {key}={raw!r} was not applied"
        elif isinstance(value, str | Path):
            assert str(value) == raw, f"{name}: {key}={raw!r} was not applied"
    # Inside a container the loopback addresses of the defaults reach nothing.
    assert not settings.kafka_bootstrap.startswith(("127.", "localhost")), name
    assert "127.0.0.1" not in settings.redis_url and "localhost" not in settings.redis_url, name


@pytest.mark.parametrize(("name", "host_field", "port_field"), HTTP_SERVICES)
def test_http_services_listen_in_container_and_publish_on_loopback(
    name: str, host_field: str, port_field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = compose_doc()["services"][name]
    settings = settings_from_env(monkeypatch, container_env(name))
    port = getattr(settings, port_field)
    assert getattr(settings, host_field) == "0.0.0.0", f"{name} must bind 0.0.0.0 in its container"
    published = [str(entry) for entry in service.get("ports") or []]
    assert any(entry.endswith(f":{port}") for entry in published), (
        f"{name} listens on {port} but publishes {published}"
    )
    health = service.get("healthcheck") or {}
    test = health.get("test")
    check = " ".join(test) if isinstance(test, list) else str(test)
    assert f":{port}/readyz" in check, f"{name}: healthcheck must GET /readyz on port {port}"


def test_published_ports_bind_loopback_only() -> None:
    for name, service in compose_doc()["services"].items():
        for entry in (service or {}).get("ports") or []:
            if isinstance(entry, dict):
                host_ip = entry.get("host_ip")
            else:
                parts = str(entry).split(":")
                host_ip = parts[0] if len(parts) == 3 else None
            assert host_ip == "127.0.0.1", f"{name} publishes {entry!r} beyond loopback"


def test_infrastructure_services() -> None:
    services = compose_doc()["services"]
    kafka, redis = services["kafka"], services["redis"]
    assert str(kafka["image"]).startswith("apache/kafka:"), kafka["image"]
    kafka_env = environment_of(kafka)
    assert "controller" in str(kafka_env.get("KAFKA_PROCESS_ROLES")), "Kafka must run in KRaft mode"
    assert "kafka:9092" in str(kafka_env.get("KAFKA_ADVERTISED_LISTENERS")), (
        "Kafka must advertise the address the pipeline's PIPELINE_KAFKA_BOOTSTRAP uses"
    )
    assert str(redis["image"]).startswith("redis:"), redis["image"]
    assert "--appendonly" in command_of(redis), "Redis must persist (appendonly yes)"
    for name in ("kafka", "redis"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} needs a healthcheck"
    topics_wait = services["topics"].get("depends_on", {}).get("kafka", {})
    assert topics_wait.get("condition") == "service_healthy", "topics must wait for a healthy Kafka"


# --- (b) commands -------------------------------------------------------------------------


@pytest.mark.parametrize("name", app_service_names())
def test_compose_commands_are_subcommands(name: str) -> None:
    argv = command_of(compose_doc()["services"][name])
    assert argv, f"{name} has no command (the image's ENTRYPOINT is `pipeline`)"
    assert argv[0] in SUBCOMMANDS, f"{name}: {argv[0]!r} is not one of {sorted(SUBCOMMANDS)}"


def test_worker_agent_groups_exist_and_have_topics() -> None:
    topics = load_topics(TOPICS, AGENT_GROUPS)
    workers = 0
    for name, service in built_services(compose_doc()).items():
        argv = command_of(service)
        if not argv or argv[0] != "worker":
            continue
        workers += 1
        agents = option_value(argv, "--agents")
        assert agents, f"{name}: say which agent groups it runs (--agents)"
        for group in agents.split(","):
            assert group in AGENT_GROUPS, f"{name}: unknown agent group {group!r}"
            assert topics.for_agent(group), f"{name}: no topic in topics.yaml feeds {group!r}"
    assert workers, "docker-compose.yml runs no worker"


# --- (c) topics.yaml ------------------------------------------------------------------------


def test_topics_file_loads_through_the_app_loader() -> None:
    topics = load_topics(TOPICS, AGENT_GROUPS)
    assert topics.specs
    assert topics.dead_letter.name and topics.catalog.name


def _uncommented_keys(node: yaml.Node, lines: list[str]) -> list[str]:
    missing = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            line = key.start_mark.line
            above = lines[line - 1].strip() if line > 0 else ""
            if not above.startswith("#"):
                missing.append(f"line {line + 1}: {key.value}")
            missing += _uncommented_keys(value, lines)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            missing += _uncommented_keys(item, lines)
    return missing


def test_topics_file_comments_every_key() -> None:
    text = TOPICS.read_text(encoding="utf-8")
    root = yaml.compose(text)
    assert isinstance(root, yaml.MappingNode)
    lines = text.splitlines()
    missing = []
    for key, value in root.value:
        if key.value in ("topics", "defaults"):
            missing += _uncommented_keys(value, lines)
    assert not missing, f"topics.yaml keys without a comment line directly above: {missing}"


# --- (d) Dockerfile and .dockerignore -----------------------------------------------------------


def test_dockerfile_entrypoint_and_user() -> None:
    assert DOCKERFILE.is_file(), "deploy/Dockerfile is missing"
    stage = final_stage(dockerfile_instructions())
    entrypoints = [arguments for keyword, arguments in stage if keyword == "ENTRYPOINT"]
    assert entrypoints, "the final stage has no ENTRYPOINT"
    # Exec form: `pipeline` is the process that receives SIGTERM, not a shell.
    assert json.loads(entrypoints[-1]) == ["pipeline"]
    users = [arguments for keyword, arguments in stage if keyword == "USER"]
    assert users, "the final stage has no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"the image runs as {users[-1]!r}"


def test_dockerfile_base_image_and_no_dev_extra() -> None:
    instructions = dockerfile_instructions()
    args: dict[str, str] = {}
    bases = []
    for keyword, arguments in instructions:
        if keyword == "ARG" and "=" in arguments:
            key, value = arguments.split("=", 1)
            args.setdefault(key, value)
        elif keyword == "FROM":
            image = arguments.split()[0]
            for key, value in args.items():
                image = image.replace("${" + key + "}", value).replace("$" + key, value)
            bases.append(image)
    assert bases[-1].startswith("python:3.11-slim"), f"final stage is based on {bases[-1]}"
    runs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    assert "[dev]" not in runs, "the image must not install the dev extra"


def test_dockerfile_copies_exist_and_are_not_ignored() -> None:
    ignored = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith(("#", "!"))
    ]
    for keyword, arguments in dockerfile_instructions():
        if keyword != "COPY" or "--from=" in arguments:
            continue
        sources = [token for token in shlex.split(arguments) if not token.startswith("--")][:-1]
        for source in sources:
            path = source.rstrip("/")
            assert (ROOT / path).exists(), f"deploy/Dockerfile copies {source}, which is missing"
            hit = [pattern for pattern in ignored if fnmatch.fnmatch(path, pattern.rstrip("/"))]
            assert not hit, f".dockerignore pattern {hit} keeps {source} out of the build"


def test_dockerignore_excludes_local_state() -> None:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    patterns = {line.strip().rstrip("/") for line in lines}
    for required in (".venv", ".git", "tests", "**/__pycache__", ".pytest_cache"):
        assert required in patterns, f".dockerignore should exclude {required}"


def test_dockerfile_environment_names_real_settings() -> None:
    unknown = sorted(key for key in image_environment() if key not in SETTING_OF_ENV)
    assert not unknown, f"deploy/Dockerfile sets {unknown}, which are not settings"


# --- (e) settings ---------------------------------------------------------------------------


def test_every_setting_has_a_description() -> None:
    undocumented = [
        name
        for name, field in Settings.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert not undocumented, f"settings without a description: {undocumented}"
