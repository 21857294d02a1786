"""The dependency rules of docs/architecture.md, checked on the source (imports read with ast)
and on real imports (a worker never loads FastAPI, a reader never loads Faust)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pipeline"
MAX_LINES = 400

HTTP = ("fastapi", "starlette", "uvicorn", "pipeline.api")
FRAMEWORKS = ("faust", "mode", "redis", "aiokafka", "prometheus_client", "click", *HTTP)
# Modules of a feature package that are not pure domain code.
ADAPTERS = {"__init__", "agent", "config", "read", "routes", "state"}


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found.append((".".join(parts), path))
    return found


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports in functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            # `from pipeline.features.personal import state` imports a module too.
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def violates(imported: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        name
        for name in imported
        if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)
    )


def feature_of(module: str) -> tuple[str, str] | None:
    """(feature, module name) of a module inside pipeline.features.<feature>."""
    parts = module.split(".")
    if len(parts) == 4 and parts[:2] == ["pipeline", "features"]:
        return parts[2], parts[3]
    return None


ALL = modules()


@pytest.mark.parametrize(("module", "path"), ALL, ids=[m for m, _ in ALL])
def test_module_respects_the_dependency_rules(module: str, path: Path) -> None:
    imported = imports_of(path)
    if module.startswith("pipeline.core."):
        # Contracts: nothing but the standard library, orjson, yaml, pydantic and core.
        bad = violates(imported, FRAMEWORKS) + [
            name
            for name in imported
            if name.startswith("pipeline.") and not name.startswith("pipeline.core")
        ]
        assert not bad, f"{module} (core) imports {bad}"
    elif module.startswith("pipeline.store."):
        bad = violates(
            imported, ("faust", "aiokafka", "pipeline.stream", "pipeline.features", *HTTP)
        )
        assert not bad, f"{module} (store) imports {bad}"
    elif module.startswith("pipeline.stream."):
        bad = violates(imported, HTTP) + [n for n in imported if n.endswith(".routes")]
        assert not bad, f"{module} (agent side) imports HTTP code: {bad}"
    elif module.startswith("pipeline.api."):
        bad = violates(imported, ("faust", "pipeline.stream.app", "pipeline.stream.batch"))
        bad += [n for n in imported if n.endswith(".agent")]
        assert not bad, f"{module} (HTTP side) imports agent code: {bad}"
    located = feature_of(module)
    if located is None:
        return
    feature, name = located
    if name not in ADAPTERS:
        # Pure domain code: core (but not settings) and other pure feature modules.
        bad = violates(
            imported, (*FRAMEWORKS, "pipeline.store", "pipeline.stream", "pipeline.core.settings")
        )
        bad += [
            n for n in imported if (other := feature_of(n)) is not None and other[1] in ADAPTERS
        ]
        assert not bad, f"{module} (pure) imports {bad}"
    elif name in {"agent", "state", "read", "config"}:
        bad = violates(imported, HTTP) + [n for n in imported if n.endswith(".routes")]
        assert not bad, f"{module} imports HTTP code: {bad}"
        if name in {"read", "state"}:
            bad = violates(imported, ("faust", "pipeline.stream"))
            assert not bad, f"{module} imports agent machinery: {bad}"
    # Features use each other's pure modules, reads and state, never agents or routes.
    foreign = [
        n
        for n in imported
        if (other := feature_of(n)) is not None
        and other[0] != feature
        and other[1] in {"agent", "routes"}
    ]
    assert not foreign, f"{module} imports another feature's agent or routes: {foreign}"


@pytest.mark.parametrize(("module", "path"), ALL, ids=[m for m, _ in ALL])
def test_no_module_is_over_the_size_limit(module: str, path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (split it by responsibility)"


def test_code_cites_only_documents_that_exist() -> None:
    cited = set()
    sources = [path for _, path in ALL] + sorted((ROOT / "tests").rglob("*.py"))
    for path in sources:
        cited.update(re.findall(r"\b[A-Za-z][\w./-]*\.md\b", path.read_text(encoding="utf-8")))
    missing = sorted(doc for doc in cited if not (ROOT / doc).exists())
    assert not missing, f"documents cited in the code that the repository lacks: {missing}"


def test_features_register_once_and_agent_groups_come_from_the_registry() -> None:
    from pipeline.features.registry import AGENT_GROUPS, FEATURES

    names = [feature.name for feature in FEATURES]
    assert len(names) == len(set(names))
    packages = sorted(
        p.name for p in (PACKAGE / "features").iterdir() if (p / "__init__.py").exists()
    )
    assert sorted(names) == packages
    assert AGENT_GROUPS == (
        "catalog",
        "trending",
        "personal",
        "ranking",
        "segments",
        "attribution",
        "content",
        "users",
    )


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("pipeline.stream.app", ("fastapi", "starlette", "uvicorn")),
        ("pipeline.features.personal.agent", ("fastapi", "starlette")),
        ("pipeline.api.reader", ("faust", "aiokafka")),
        ("pipeline.features.registry", ("faust", "fastapi", "redis")),
    ],
)
def test_importing_one_side_never_loads_the_other(module: str, absent: tuple[str, ...]) -> None:
    code = (
        f"import sys, {module}\n"
        f"loaded = [m for m in {absent!r} if m in sys.modules]\n"
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "", f"importing {module} loaded {result.stdout.strip()}"
