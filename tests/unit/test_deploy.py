"""The Kubernetes manifests (deploy/k8s) agree with docker-compose.yml, the settings and the
registry: the same roles, image, settings and ports; a worker Deployment for every agent
group, never more replicas than its topics have partitions; probes on the real health
endpoints; the topics/scenarios ConfigMap rendered from the committed files; no secret in
the example Secret. No cluster is needed: the files are read as YAML."""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.core.settings import ENV_PREFIX, Settings, load_settings
from pipeline.core.topics import load_topics
from pipeline.features.registry import AGENT_GROUPS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "docker-compose.yml"
SETTING_OF_ENV = {ENV_PREFIX + name.upper(): name for name in Settings.model_fields}
# Settings only the Kubernetes pods set: files mounted from the pipeline-files ConfigMap, and
# the connection security compose leaves at its defaults.
K8S_ONLY_SETTINGS = {
    "PIPELINE_TOPICS_FILE",
    "PIPELINE_SCENARIOS_FILE",
    "PIPELINE_KAFKA_SECURITY_PROTOCOL",
}
# Compose services with no Kubernetes counterpart: synthetic demo traffic.
COMPOSE_ONLY = {"generate"}
HTTP = {"reader": "PIPELINE_READER_PORT", "collector": "PIPELINE_COLLECTOR_PORT"}


@functools.cache
def manifests() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is None:
                continue
            assert {"apiVersion", "kind", "metadata"} <= set(document), path.name
            documents.append({**document, "_file": path.name})
    return documents


def of_kind(kind: str, include_examples: bool = False) -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["name"]: doc
        for doc in manifests()
        if doc["kind"] == kind and (include_examples or "example" not in doc["_file"])
    }


@functools.cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def compose_apps() -> dict[str, dict[str, Any]]:
    """Compose services built from the pipeline's image."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if isinstance(service.get("build"), dict)
    }


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, workload["metadata"]["name"]
    return containers[0]


def container_env(workload: dict[str, Any]) -> dict[str, str]:
    return {entry["name"]: entry["value"] for entry in container(workload).get("env", [])}


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    return {str(key): str(value) for key, value in (service.get("environment") or {}).items()}


def settings_data() -> dict[str, str]:
    return of_kind("ConfigMap")["pipeline-settings"]["data"]


def workloads() -> dict[str, dict[str, Any]]:
    return {**of_kind("Deployment"), **of_kind("Job")}


def build_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings()


# --- roles ----------------------------------------------------------------------------------


def test_manifests_parse_and_kustomization_lists_them() -> None:
    assert manifests(), "deploy/k8s holds no manifest"
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    for name in listed:
        assert (K8S / name).is_file(), f"kustomization.yaml lists {name}, which is missing"
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == files - {"secrets.example.yaml"}, "list every manifest but the example"


@pytest.mark.parametrize("group", AGENT_GROUPS)
def test_every_agent_group_has_a_worker_deployment_and_service(group: str) -> None:
    deployment = of_kind("Deployment").get(f"worker-{group}")
    assert deployment, f"deploy/k8s/workers.yaml has no Deployment worker-{group}"
    assert container(deployment)["args"] == ["worker", "--agents", group]
    service = compose_apps().get(f"worker-{group}")
    assert service, f"docker-compose.yml has no service worker-{group}"
    assert service["command"] == ["worker", "--agents", group]


def test_compose_and_kubernetes_run_the_same_roles() -> None:
    k8s = {}
    for name, workload in workloads().items():
        k8s["topics" if name == "pipeline-topics" else name] = container(workload)["args"]
    composed = {
        name: service["command"]
        for name, service in compose_apps().items()
        if name not in COMPOSE_ONLY
    }
    assert k8s == composed


def test_worker_replicas_stay_within_the_partitions() -> None:
    topics = load_topics(ROOT / "topics.yaml", AGENT_GROUPS)
    text = (K8S / "workers.yaml").read_text(encoding="utf-8")
    assert "partition" in text.split("---")[0], "workers.yaml must say replicas are bounded"
    for name, deployment in of_kind("Deployment").items():
        if not name.startswith("worker-"):
            continue
        specs = topics.for_agent(name.removeprefix("worker-"))
        assert specs, f"{name}: no topic feeds its group"
        bound = max(spec.partitions for spec in specs)
        assert 1 <= deployment["spec"]["replicas"] <= bound, (
            f"{name}: more replicas than partitions"
        )


# --- image, settings, secrets --------------------------------------------------------------


def test_one_image_everywhere() -> None:
    images = {service["image"] for service in compose_apps().values()}
    assert len(images) == 1, f"compose builds several images: {images}"
    (image,) = images
    for name, workload in workloads().items():
        assert container(workload)["image"] == image, f"{name} runs another image than compose"
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert [entry["name"] for entry in kustomization["images"]] == [image.split(":")[0]]


def test_shared_settings_agree_with_compose(monkeypatch: pytest.MonkeyPatch) -> None:
    data = settings_data()
    unknown = sorted(key for key in data if key not in SETTING_OF_ENV)
    assert not unknown, f"settings.yaml sets {unknown}, which are not settings"
    shared = {str(key): str(value) for key, value in compose()["x-pipeline-env"].items()}
    assert {key: data.get(key) for key in shared} == shared
    assert set(data) - set(shared) <= K8S_ONLY_SETTINGS, "add it to compose or K8S_ONLY_SETTINGS"
    settings = build_settings(monkeypatch, data)
    assert str(settings.topics_file).startswith("/etc/pipeline/")
    assert str(settings.scenarios_file).startswith("/etc/pipeline/")


def test_settings_from_a_secret_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    for secret in of_kind("Secret", include_examples=True).values():
        unknown = sorted(key for key in secret["stringData"] if key not in SETTING_OF_ENV)
        assert not unknown, f"{secret['metadata']['name']}: {unknown} are not settings"


@pytest.mark.parametrize("name", sorted(set(compose_apps()) - COMPOSE_ONLY - {"topics"}))
def test_per_service_settings_agree_with_compose(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = set(compose()["x-pipeline-env"])
    own_compose = {k: v for k, v in compose_env(compose_apps()[name]).items() if k not in shared}
    own_k8s = container_env(of_kind("Deployment")[name])
    assert own_k8s == own_compose, f"{name}: settings differ from docker-compose.yml"
    unknown = sorted(key for key in own_k8s if key not in SETTING_OF_ENV)
    assert not unknown, f"{name}: {unknown} are not settings"
    build_settings(monkeypatch, {**settings_data(), **own_k8s})


def test_example_secret_holds_no_secret_and_is_referenced() -> None:
    secrets = of_kind("Secret", include_examples=True)
    for name, secret in secrets.items():
        assert "example" in secret["_file"], f"Secret {name} outside the example file"
        for key, value in secret["stringData"].items():
            assert "REPLACE ME" in value or "example" in value, f"{name}: {key} looks real"
    references: set[tuple[str, bool]] = set()
    for workload in workloads().values():
        for source in container(workload).get("envFrom", []):
            if "secretRef" in source:
                ref = source["secretRef"]
                references.add((ref["name"], bool(ref.get("optional"))))
                assert ref["name"] in secrets, f"{ref['name']} is not in secrets.example.yaml"
    # API keys are required where they are used (a missing Secret fails the rollout); the
    # Kafka/Redis passwords are optional (plaintext, password-less stacks need none).
    assert ("pipeline-api-keys", False) in references
    assert ("pipeline-api-keys", True) not in references
    assert ("pipeline-credentials", True) in references


def test_api_keys_only_where_they_are_needed() -> None:
    for name, workload in workloads().items():
        refs = {s["secretRef"]["name"] for s in container(workload)["envFrom"] if "secretRef" in s}
        assert ("pipeline-api-keys" in refs) == (name in HTTP), name
        assert "pipeline-credentials" in refs, f"{name} cannot reach a secured Kafka or Redis"


# --- ports, probes, metrics ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(HTTP))
def test_http_ports_probes_and_services(name: str) -> None:
    port = int(compose_env(compose_apps()[name])[HTTP[name]])
    deployment = of_kind("Deployment")[name]
    main = container(deployment)
    assert int(container_env(deployment)[HTTP[name]]) == port
    assert main["ports"] == [{"name": "http", "containerPort": port}]
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # The compose healthcheck probes the same endpoint on the same port.
    assert f":{port}/readyz" in " ".join(compose_apps()[name]["healthcheck"]["test"])
    service = of_kind("Service")[name]
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)


def test_health_endpoints_exist_in_the_services() -> None:
    source = (ROOT / "pipeline" / "api" / "http.py").read_text(encoding="utf-8")
    assert '"/healthz"' in source
    for name in HTTP:
        api = (ROOT / "pipeline" / "api" / f"{name}.py").read_text(encoding="utf-8")
        assert "/readyz" in api or "readiness" in api, f"{name} has no /readyz"


def test_worker_metrics_port_exposed_and_scraped() -> None:
    for name, deployment in of_kind("Deployment").items():
        if not name.startswith("worker-"):
            continue
        env = container_env(deployment)
        port = int(env["PIPELINE_WORKER_METRICS_PORT"])
        assert port and env["PIPELINE_WORKER_METRICS_HOST"] == "0.0.0.0", name
        assert {"name": "metrics", "containerPort": port} in container(deployment)["ports"]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        composed = compose_env(compose_apps()[name])
        assert composed.get("PIPELINE_WORKER_METRICS_PORT") == str(port), name


def test_pods_run_unprivileged_with_the_mounted_files() -> None:
    for name, workload in workloads().items():
        spec = workload["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        mounts = {m["mountPath"]: m["name"] for m in container(workload)["volumeMounts"]}
        assert mounts.get("/etc/pipeline") == "files", name
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["files"]["configMap"]["name"] == "pipeline-files", name


# --- the rendered ConfigMap of files ----------------------------------------------------------


def test_files_configmap_is_rendered_from_the_committed_files() -> None:
    spec = importlib.util.spec_from_file_location("render_files", K8S / "render_files.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    current = (K8S / "files.yaml").read_text(encoding="utf-8")
    assert current == module.render(ROOT), (
        "deploy/k8s/files.yaml is stale: run `python3 deploy/k8s/render_files.py`"
    )
    data = of_kind("ConfigMap")["pipeline-files"]["data"]
    for name in ("topics.yaml", "scenarios.yaml"):
        assert data[name] == (ROOT / name).read_text(encoding="utf-8")


# --- the image carries the files the services read at start ---------------------------------


def test_image_carries_topics_and_scenarios_where_the_settings_point() -> None:
    """The reader exits without scenarios.yaml and every role needs topics.yaml: the image
    copies both and its ENV points at the copies (absolute, whatever the working directory)."""
    lines = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8").splitlines()
    final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    text = "\n".join(line for line in final if not line.lstrip().startswith("#"))
    workdir = [line.split()[1] for line in final if line.startswith("WORKDIR ")][-1]
    copies = [
        line.split()[1:] for line in final if line.startswith("COPY ") and "--from" not in line
    ]
    for name, variable in (
        ("topics.yaml", "PIPELINE_TOPICS_FILE"),
        ("scenarios.yaml", "PIPELINE_SCENARIOS_FILE"),
    ):
        assert any(name in parts[:-1] for parts in copies), f"the image does not copy {name}"
        assert f"{variable}={workdir}/{name}" in text, f"the image does not set {variable}"
