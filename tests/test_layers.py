"""The library reads bottom-up: every module sits in a layer and imports only its own layer or the
ones below, the import graph has no cycle, the eigen kernels import no store or network code, and
only the workflow's scripts import the job assembly (``hessmask.jobs``)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: every module of the library, by layer (0: leaves; each layer may import itself and those below)
LAYERS = {
    0: ["hessmask", "hessmask.progress", "hessmask.rows", "hessmask.seeds", "hessmask.dims", "hessmask.paths",
        "hessmask.figures", "hessmask.grassmann", "hessmask.digests", "hessmask.atomic"],
    # the eigen and dof packages' __init__ are lazy namespaces (they import nothing until a name is read),
    # so their registries import without the kernels and the training code
    1: ["hessmask.masks", "hessmask.synthetic", "hessmask.eigen", "hessmask.eigen.methods", "hessmask.dof",
        "hessmask.dof.methods", "hessmask.dof.refine", "hessmask.data", "hessmask.store", "hessmask.config"],
    2: ["hessmask.operators", "hessmask.sketch", "hessmask.models", "hessmask.training", "hessmask.curvature"],
    3: ["hessmask.eigen.common", "hessmask.eigen.orthogonal", "hessmask.eigen.exact",
        "hessmask.eigen.seigh", "hessmask.eigen.aposteriori", "hessmask.eigen.eigsh", "hessmask.eigen.krylov"],
    4: ["hessmask.eigen.stores", "hessmask.eigen.seigh_store", "hessmask.eigen.krylov_store", "hessmask.metrics",
        "hessmask.dof.bases", "hessmask.dof.training", "hessmask.dof.analysis",
        "hessmask.dof.experiment", "hessmask.dof.quadratic", "hessmask.plots", "hessmask.plots.common",
        "hessmask.plots.synthetic", "hessmask.plots.experiment", "hessmask.plots.dof", "hessmask.claims"],
    5: ["hessmask.jobs"],
}
LAYER = {module: layer for layer, modules in LAYERS.items() for module in modules}
#: what the eigen kernels (layer 3) must not import: stores, networks, data and training
KERNEL_FORBIDDEN = {"hessmask.store", "hessmask.curvature", "hessmask.models", "hessmask.data", "hessmask.training",
                    "hessmask.jobs", "xarray", "zarr"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py")}


def imports(path: Path, known: set[str]) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function (hessmask modules resolved to
    the submodule a ``from package import name`` names, third-party ones to their top package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name if alias.name in known else alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in known or node.module.startswith("hessmask"):
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    found.add(candidate if candidate in known else node.module)
            else:
                found.add(node.module.split(".")[0])
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {m for m in imports(path, set(known)) if m.startswith("hessmask")} - {name}
            for name, path in known.items()}


def test_every_module_has_a_layer():
    assert set(modules()) == set(LAYER), "place each new module of src/hessmask in tests/test_layers.py LAYERS"


def test_no_upward_import():
    upward = [f"{a} (layer {LAYER[a]}) imports {b} (layer {LAYER[b]})"
              for a, targets in graph().items() for b in targets if LAYER[b] > LAYER[a]]
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    edges, state, cycles = graph(), {}, []

    def visit(node, stack):
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_kernels_import_no_store_or_network_code():
    known = modules()
    offending = {name: sorted(imports(known[name], set(known)) & KERNEL_FORBIDDEN) for name in LAYERS[3]}
    assert not {name: found for name, found in offending.items() if found}


def test_job_assembly_is_imported_by_no_library_module():
    assert not [name for name, targets in graph().items() if "hessmask.jobs" in targets]


BLOCKER = """
import importlib.abc, sys
blocked = set(sys.argv[2].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in blocked:
            raise ImportError(f"{name} is above the layer being imported")
sys.meta_path.insert(0, Block())
import importlib
for module in sys.argv[1].split(","):
    importlib.import_module(module)
"""


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_each_layer_imports_with_the_layers_above_it_blocked(layer):
    """Importing a layer's modules with every module above it blocked: nothing is reached upward, even
    at run time (the kernels also with xarray and zarr blocked)."""
    below = [m for m, lay in LAYER.items() if lay <= layer]
    above = [m for m, lay in LAYER.items() if lay > layer]
    if layer == 3:  # the kernels alone, with the store and network layers (and xarray, zarr) blocked too
        below, above = LAYERS[3], above + sorted(KERNEL_FORBIDDEN)
    out = subprocess.run([sys.executable, "-c", BLOCKER, ",".join(below), ",".join(above)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]
