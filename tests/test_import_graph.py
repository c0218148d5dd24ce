"""No upward imports: each top-level part of linlim imports only from its own layer or
the layers below it (docs/architecture.rst). Imports inside functions count too.

A new top-level module or package must be given a layer here; the failure says where.
"""

from __future__ import annotations

import ast
import pathlib

import linlim

ROOT = pathlib.Path(linlim.__file__).parent

#: Layers in data-flow order: a part may import from its own layer and those before it.
LAYERS: list[set[str]] = [
    {"errors", "backend", "units", "validation"},   # foundations
    {"operators"},                                  # the operator algebra
    {"params", "testing"},                          # parameter vectors; operator checks
    {"telescope", "sky", "beam", "gp"},             # forward-model inputs
    {"rime"},                                       # visibilities
    {"gains"},                                      # antenna gains, coupling
    {"likelihood", "priors", "io"},                 # posterior; file formats
    {"inference"},                                  # solvers and samplers
    {"calibration"},                                # calibration solvers
    {"filters", "imaging", "plotting"},             # analysis products
    {"pipelines", "distributed"},                   # jobs; scale-out
    {"cli"},                                        # the command line
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}

#: Known exceptions, each with its reason; a new upward import fails until it is removed
#: or listed here. (file relative to the repository, imported part)
ALLOWED = {
    ("linlim/calibration/pipeline.py", "pipelines"):
        "lazy re-export of the calibrate job moved to pipelines/calibrate.py (old path kept)",
}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: pathlib.Path) -> list[tuple[str, int]]:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    pkg = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "linlim" and node.level:  # from .. import name
                out += [(f"linlim.{a.name}", node.lineno) for a in node.names]
            elif target.startswith("linlim"):
                out.append((target, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("linlim")]
    return out


def test_every_part_has_a_layer() -> None:
    parts = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    parts.discard("__init__")
    missing = sorted(parts - set(RANK))
    assert not missing, (f"linlim parts without a layer: {missing}; add each to LAYERS in "
                         "tests/test_import_graph.py (and docs/architecture.rst)")


def test_no_upward_imports() -> None:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        src = _part("linlim." + ".".join(path.relative_to(ROOT).with_suffix("").parts))
        if src == "__init__" or src not in RANK:
            continue
        for target, line in _imports(path):
            dst = _part(target)
            rel = str(path.relative_to(ROOT.parent))
            if dst in RANK and RANK[dst] > RANK[src] and (rel, dst) not in ALLOWED:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} ({src}) imports "
                           f"{target} ({dst}, a later layer)")
    assert not bad, "upward imports:\n" + "\n".join(bad)

