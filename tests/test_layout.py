"""The package's shape: small modules, one-way imports, a core that imports with only its
base dependencies, and one base64url codec behind every parser."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
MAX_LINES = 400

# Packages of the extras (server, redis, postgres) and of the frameworks: the core must not
# need any of them.
NOT_BASE = (
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "multipart",
    "python_multipart",
    "typer",
    "rich",
    "ua_parser",
    "redis",
    "asyncpg",
    "sqlalchemy",
    "flask",
    "django",
    "litestar",
    "jwt",
    "prometheus_client",
    # satchel[mfa]: imported only when a second factor is set up or checked
    "pyotp",
    "segno",
    "webauthn",
)
# Modules that are glue or optional drivers by design.
GLUE = (
    "satchel.integrations.fastapi",
    "satchel.integrations.litestar",
    "satchel.integrations.flask",
    "satchel.integrations.django",
    "satchel.server",
    "satchel.cli",
    "satchel.stores.redis",
    "satchel.stores.postgres",
    "satchel.revocation.redis",
    "satchel.revocation.postgres",
    "satchel.ops.exposition",
)


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {module_name(p, SRC): p for p in (SRC / "satchel").rglob("*.py")}
    found.update({module_name(p, ROOT): p for p in (ROOT / "benchmarks").rglob("*.py")})
    return found


def imported(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """Project modules ``path`` imports anywhere (function bodies too; not TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            targets.add(module)
            targets.update(f"{module}.{alias.name}" for alias in node.names)
    out = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        # Importing a submodule runs its parent packages first; that is not an edge back.
        if target and target != name and not name.startswith(target + "."):
            out.add(target)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_module_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_import_cycles() -> None:
    known = project_modules()
    graph = {name: imported(path, name, known) for name, path in known.items()}
    assert cycles(graph) == []


FRAMEWORK_GLUE = (
    "satchel.integrations.fastapi",
    "satchel.integrations.litestar",
    "satchel.integrations.flask",
    "satchel.integrations.django",
    "satchel.server",
    "satchel.cli",
)


def test_the_core_never_imports_framework_glue() -> None:
    """Optional store drivers may be loaded lazily by the core's factories; framework glue never."""
    known = project_modules()
    offenders = {}
    for name, path in known.items():
        if not name.startswith("satchel") or name.startswith(FRAMEWORK_GLUE):
            continue
        glue = {m for m in imported(path, name, known) if m.startswith(FRAMEWORK_GLUE)}
        if glue and name not in ("satchel", "satchel.integrations"):
            offenders[name] = sorted(glue)
    assert offenders == {}


BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not a base dependency)")
        return None
sys.meta_path.insert(0, Block())
"""

CORE_USE = """
import pkgutil, importlib, satchel
from satchel import Auth, Identity, Settings, build_auth, PasswordHasher, UserService
glue = {glue!r}
for info in pkgutil.walk_packages(satchel.__path__, "satchel."):
    if info.name.startswith(glue):
        continue
    importlib.import_module(info.name)
print("core ok")
"""


def test_the_core_imports_with_only_base_dependencies() -> None:
    script = BLOCKER.format(blocked=set(NOT_BASE)) + CORE_USE.format(glue=GLUE)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "core ok" in done.stdout


def test_one_base64url_codec() -> None:
    """Every base64url call of the package sits in jose/b64.py (security parsers exist once).

    Standard base64 (Django's PBKDF2 hashes) is a different encoding and not counted.
    """
    users = sorted(
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "urlsafe_b64" in p.read_text() or "a2b_base64" in p.read_text()
    )
    assert users == ["satchel/jose/b64.py"]
