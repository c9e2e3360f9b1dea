"""The package is layered: no module imports, even inside a function, one that imports it."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import careerbot

PACKAGE = Path(careerbot.__file__).parent


def imports_of(path: Path) -> set[str]:
    """The careerbot modules a module imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name.split(".")[1] for name in names if name.startswith("careerbot.")}
    return found


def test_no_module_imports_one_that_imports_it() -> None:
    modules = {path.stem: path for path in PACKAGE.glob("*.py")}
    graph = {name: imports_of(path) & set(modules) - {name} for name, path in modules.items()}
    assert graph["cli"] and graph["api"]  # the walk finds imports at all
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None
    assert order.index("version") < order.index("reuse") < order.index("index")
