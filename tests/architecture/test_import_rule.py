"""The import rule of docs/architecture.md, read from the source (every ``import``, also
inside functions):

    core <- {netx, nir} <- ir <- schedule <- passes <- {lava, exact, viz, export} <- api <- cli

- a module imports only from its own subpackage or from a lower layer;
- ``training`` imports only ``core`` and ``netx``; nothing imports ``cli`` (but ``cli``);
- there is no import cycle between modules;
- no module imports another module's private (``_name``) names;
- lava-nc (``lava.*`` but ``lava.lib.dl``) is imported only under ``qblif/lava/``, torch only
  in ``training``, ``exact``, ``verify`` and the commands that train or evaluate.
"""
from __future__ import annotations

import ast
import pathlib

import networkx as nx
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / "qblif"

#: layer of each top-level part of ``qblif`` (lower imports nothing higher)
LAYERS = {
    "core": 0, "netx": 1, "nir": 1, "training": 2, "ir": 2, "schedule": 3, "passes": 4,
    "lava": 5, "exact": 5, "viz": 5, "export": 5, "api": 6, "verify": 6, "cli": 7,
    "legacy": 8, "__init__": 8,
}
TRAINING_MAY_IMPORT = {"core", "netx", "training"}
TORCH_PARTS = {"training", "exact", "verify", "cli"}


def modules() -> dict:
    """{module name: parsed tree} of every module under qblif/."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        out[name] = (path, ast.parse(path.read_text(), str(path)))
    return out


MODULES = modules()


def part(module: str) -> str:
    """``qblif.exact.engine`` -> ``exact``; ``qblif`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(module: str, tree) -> list:
    """[(imported module, [names], line)] of the qblif imports in ``tree``, and others as
    (module, [], line)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if MODULES[module][0].name == "__init__.py" \
                    else module.split(".")[:-1]
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            names = [a.name for a in node.names]
            subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
            out += [(s, [], node.lineno) for s in subs]
            rest = [n for n in names if f"{base}.{n}" not in MODULES]
            if rest or not subs:
                out.append((base, rest, node.lineno))
    return out


def project_edges():
    for mod, (path, tree) in MODULES.items():
        for target, names, line in imports(mod, tree):
            if target.split(".")[0] == "qblif":
                yield mod, target, names, f"{path.relative_to(ROOT.parent)}:{line}"


def test_layers_point_one_way():
    bad = []
    for mod, target, _, where in project_edges():
        a, b = part(mod), part(target)
        if a == b or target == "qblif":
            continue
        if a == "training" and b not in TRAINING_MAY_IMPORT:
            bad.append(f"{where}: training imports {target}")
        elif b == "cli":
            bad.append(f"{where}: {mod} imports the CLI ({target})")
        elif LAYERS[b] >= LAYERS[a]:
            bad.append(f"{where}: {mod} (layer {a}) imports {target} (layer {b})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    g = nx.DiGraph()
    for mod, target, _, _ in project_edges():
        if target != "qblif" and target != mod:
            g.add_edge(mod, target)
    cycles = list(nx.simple_cycles(g))
    assert not cycles, "\n".join(" -> ".join(c + [c[0]]) for c in cycles[:20])


def test_no_private_names_cross_modules():
    bad = []
    for mod, target, names, where in project_edges():
        if target == mod:
            continue
        last = target.rsplit(".", 1)[-1]
        if last.startswith("_") and last != "__init__" and last != "__main__":
            bad.append(f"{where}: imports private module {target}")
        bad += [f"{where}: {mod} imports {target}.{n}" for n in names
                if n.startswith("_") and not n.startswith("__")]
    # attribute access ``module._name`` on an imported qblif module
    for mod, (path, tree) in MODULES.items():
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("qblif"):
                for a in node.names:
                    if f"{node.module}.{a.name}" in MODULES:
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("qblif") and a.asname:
                        aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__") and aliases[node.value.id] != mod):
                bad.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: "
                           f"{aliases[node.value.id]}.{node.attr}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("library,allowed", [("lava", {"lava"}), ("torch", TORCH_PARTS)])
def test_heavy_libraries_stay_in_their_layers(library, allowed):
    bad = []
    for mod, (path, tree) in MODULES.items():
        for target, _, line in imports(mod, tree):
            top = target.split(".")
            if top[0] != library or target.startswith("lava.lib.dl"):
                continue
            if library == "lava" and part(mod) in ("training",) and False:
                continue
            if part(mod) not in allowed:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line}: {target}")
    assert not bad, "\n".join(bad)


def test_public_api():
    import qblif
    for name in ("compile", "compile_ir", "CompiledNetwork", "RunOptions", "CompileError",
                 "PASSES", "QBLIF"):
        assert getattr(qblif, name) is not None, name
