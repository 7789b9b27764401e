"""The pipeline's order holds in the imports: a module imports only from its own stage, from stages
earlier in the pipeline and from the shared modules (the layout README.md's "How it works" names).

Every import counts, at module level or inside a function, so that the layering cannot rot where
an import is lazy.  Data goes down the pipeline through the records each stage hands on; a piece
that needs a later stage's knowledge belongs to that stage, or is given the value."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import kvmlint

PACKAGE = Path(kvmlint.__file__).resolve().parent
# Records and helpers every stage may use; they import nothing but each other.
SHARED = {"kvmlint", "kvmlint.errors", "kvmlint.files", "kvmlint.findings", "kvmlint.prose", "kvmlint.store",
          "kvmlint.terminal"}
# Below every stage, above the shared modules.
INFRASTRUCTURE = ("git",)
STAGES = ("source", "scope", "index", "model", "rules", "codemods", "validation", "reporters")
# The driver runs the stages in order; the command line runs the driver and prints.
DRIVER = ("analysis",)
FRONT = ("cli", "__main__")
LAYERS = [INFRASTRUCTURE, *[(stage,) for stage in STAGES], DRIVER, FRONT]


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def rank(module: str) -> int:
    """0 for the shared modules, then one per layer in pipeline order; a module in no layer fails the test."""
    if module in SHARED:
        return 0
    top = module.split(".")[1]
    found = next((number for number, layer in enumerate(LAYERS, start=1) if top in layer), None)
    assert found is not None, f"{module} is in no layer: a stage's package, git/, cli/ or a shared module"
    return found


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every kvmlint module `module` imports, anywhere in its code."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "kvmlint"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "kvmlint":
                continue
            # `from package import module` imports that module; `from module import name`, the module.
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return found - {module}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {module: imports(module, path, known) for module, path in known.items()}


def test_every_module_is_placed_in_a_layer():
    for module in modules():
        rank(module)


def test_no_module_imports_a_later_stage():
    wrong = []
    for module, imported in graph().items():
        for target in sorted(imported):
            if rank(target) > rank(module) or (rank(module) == 0 and rank(target) != 0):
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_shared_modules_and_git_import_no_stage():
    for module, imported in graph().items():
        if rank(module) <= 1:
            assert all(rank(target) <= rank(module) for target in imported), (module, imported)


def test_no_import_cycle():
    edges = graph()
    cycles = []
    state: dict[str, int] = {}  # 1 on the path, 2 done

    for start in edges:
        if state.get(start):
            continue
        stack = [(start, iter(sorted(edges[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                cycles.append(" -> ".join(path[path.index(child):] + [child]))
            elif not state.get(child) and child in edges:
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(edges[child]))))
    assert cycles == []


def test_starting_the_command_line_loads_no_stage():
    """`import kvmlint.cli` (every command's start, the pre-commit hook's too) loads no parser and no
    stage beyond the rule registry and the list of formats: each command imports what it runs."""
    code = "import sys, kvmlint.cli; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    heavy = [name for name in loaded if name.split(".")[0] in ("tree_sitter", "tree_sitter_c", "libcst")
             or name.startswith(tuple(f"kvmlint.{stage}" for stage in ("source", "scope", "index", "model",
                                                                         "codemods", "validation", "git")))]
    assert heavy == []
