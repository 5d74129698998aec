"""The package's layers (docs/ARCHITECTURE.md): each imports only the layers below it, no import
circles, and no network name is compared in code outside the network's own module."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from mrsr.networks import get_spec, specs

PACKAGE = Path(__file__).resolve().parents[1] / "mrsr"

# bottom to top; a module's layer is that of its longest matching prefix
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("mrsr.errors", "mrsr.paths", "mrsr.progress", "mrsr.settings", "mrsr.validation", "mrsr.__init__")),
    ("data and transforms", ("mrsr.data", "mrsr.transforms", "mrsr.metrics", "mrsr.runtime")),
    ("networks", ("mrsr.networks",)),
    ("losses", ("mrsr.losses",)),
    (
        "inference and engines",
        (
            "mrsr.fitting",
            "mrsr.inference",
            "mrsr.adapt",
            "mrsr.selfsr",
            "mrsr.engines",
            "mrsr.checkpoint",
            "mrsr.report",
        ),
    ),
    ("bundles", ("mrsr.bundle",)),
    ("applications", ("mrsr.pipeline", "mrsr.batch", "mrsr.demo", "mrsr.benchmark", "mrsr.bundle_table")),
    ("cli", ("mrsr.cli", "mrsr.__main__")),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 2 else parts)


def _layer(module: str) -> int:
    best, level = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), i
    return level


def _sources() -> dict[str, ast.Module]:
    files = [p for p in PACKAGE.rglob("*.py") if "bundles" not in p.relative_to(PACKAGE).parts]
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in files}


def _imports(module: str, tree: ast.Module, top_level_only: bool = False) -> set[str]:
    """The mrsr modules ``module`` imports (relative imports resolved)."""
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    package = module if module.count(".") == 0 or _is_package(module) else module.rsplit(".", 1)[0]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mrsr")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("mrsr"):
                found.add(base)
    return found


def _is_package(module: str) -> bool:
    return (PACKAGE.parent / module.replace(".", "/") / "__init__.py").is_file()


SOURCES = _sources()


def test_every_module_has_a_layer():
    assert [m for m in SOURCES if _layer(m) < 0] == []


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_imports_go_down_the_layers(module):
    """Imports inside functions count too: a lazy import is still a dependency."""
    own = _layer(module)
    upward = sorted(m for m in _imports(module, SOURCES[module]) if _layer(m) > own)
    assert upward == [], f"{module} ({LAYERS[own][0]}) imports a layer above it: {upward}"


def _reexport(cycle: list[str]) -> bool:
    """A circle of a package's ``__init__`` and its own submodules (the package lazily re-exporting them)."""
    common = ".".join(os.path.commonprefix([c.split(".") for c in cycle]))
    return common in cycle and common != "mrsr"


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """The first import circle in ``graph`` (module -> modules it imports), or None. A circle inside one
    package is how its ``__init__`` re-exports its submodules, not a circle between layers."""
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt]
                if not _reexport(cycle):
                    return cycle
            elif nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    return {m: {i for i in _imports(m, t, top_level_only) if i in SOURCES and i != m} for m, t in SOURCES.items()}


def test_no_import_circles_at_module_level():
    circle = _circle(_graph(top_level_only=True))
    assert circle is None, f"import circle: {' -> '.join(circle or [])}"


def test_no_import_circles_with_lazy_imports():
    """Imports inside functions count too: a lazy import that closes a circle is still one (it only hides it)."""
    circle = _circle(_graph(top_level_only=False))
    assert circle is None, f"import circle: {' -> '.join(circle or [])}"


def test_the_circle_check_sees_a_lazy_circle():
    """The check above can fail: adapt importing inference while inference imports adapt lazily is a circle."""
    graph = {"mrsr.inference": {"mrsr.adapt"}, "mrsr.adapt": {"mrsr.inference"}}
    assert _circle(graph) == ["mrsr.adapt", "mrsr.inference", "mrsr.adapt"]


def _network_names() -> dict[str, str]:
    """Every registered name and alias -> the module that defines the network."""
    names = {}
    for spec in specs(include_auxiliary=True):
        target = spec.network
        module = target.partition(":")[0] if isinstance(target, str) else target.__module__
        for name in (spec.name, *spec.aliases):
            names[name] = module
    return names


def test_no_network_name_is_compared_outside_its_module():
    names = _network_names()
    offenders = []
    for module, tree in SOURCES.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            for const in ast.walk(node):
                if isinstance(const, ast.Constant) and const.value in names and names[const.value] != module:
                    offenders.append(f"{module}:{node.lineno} compares {const.value!r}")
    assert offenders == []


def test_the_name_check_sees_a_comparison():
    """The check above can fail: a comparison with a network name is found."""
    tree = ast.parse("if config.network == 'iconet':\n    pass\n")
    compared = [c.value for n in ast.walk(tree) if isinstance(n, ast.Compare) for c in ast.walk(n)
                if isinstance(c, ast.Constant)]  # fmt: skip
    assert compared == ["iconet"] and get_spec(compared[0]).stages


MAX_PARAMETERS = 10
# the functional core keeps flat keywords, as MONAI's sliding_window_inference does; constructors of transforms,
# networks, losses, datasets and engines take their hyperparameters one by one, as MONAI's own do
MANY_PARAMETERS_ALLOWED = {"mrsr.inference.super_resolve"}


def _long_signatures() -> list[str]:
    found = []
    for module, tree in SOURCES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "__init__":
                a = node.args
                names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
                if len(names) > MAX_PARAMETERS and f"{module}.{node.name}" not in MANY_PARAMETERS_ALLOWED:
                    found.append(f"{module}.{node.name} ({len(names)})")
    return found


def test_no_function_takes_more_than_ten_parameters():
    """Settings travel as one object (mrsr.settings), not as the same keyword list at every layer."""
    assert _long_signatures() == []
