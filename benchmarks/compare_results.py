"""Compare two results trees store by store: are the numbers bitwise the same?

``python benchmarks/compare_results.py OLD NEW`` opens every zarr store under OLD, finds its
counterpart under NEW (through the renames of the store layout, listed in ``RENAMES``), and
compares every data variable and coordinate bitwise (NaN equal to NaN). Attributes are reported
only where they differ in something other than provenance (the commit, the config that produced
the store, the settings' spelling), coordinates' long_name and units, and the content digest. It
also compares the checkpoints tensor by tensor and the text outputs (summary, tables) line by line.
Exit status 1 if any array differs. Used to check that a refactoring changed no result.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

#: store path renames (regex on the path relative to the results root) and, per store kind, the
#: variable and dimension renames of the later layout
RENAMES = [(r"^(?P<exp>[^/]+)/params\.zarr$", r"\g<exp>/theta.zarr")]
NAME_RENAMES = {"params": "theta", "ratio": "rho", "index": "spectrum_index"}
DOF_RENAMES = {"method": "subspace"}
#: attributes whose differences are provenance or spelling, not results
IGNORED_ATTRS = {"git_commit", "config", "settings", "content_digest", "long_name", "units", "description",
                 "subspaces", "methods"}


def counterpart(relative: str) -> str:
    for pattern, replacement in RENAMES:
        if re.match(pattern, relative):
            return re.sub(pattern, replacement, relative)
    return relative


def renamed(ds: xr.Dataset, relative: str) -> xr.Dataset:
    """``ds`` (an old store) with the later names of its variables and dimensions."""
    names = dict(NAME_RENAMES)
    if relative.startswith("dof/") or "/dof/" in relative:
        names.update(DOF_RENAMES)
    present = {old: new for old, new in names.items() if old in ds.variables or old in ds.dims}
    return ds.rename(present) if present else ds


def same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def compare_store(old: Path, new: Path, relative: str) -> list[str]:
    problems = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = renamed(xr.open_zarr(old, chunks=None), relative)
        b = xr.open_zarr(new, chunks=None)
    for name in sorted(set(a.variables) | set(b.variables)):
        if name not in a.variables or name not in b.variables:
            problems.append(f"{relative}: variable {name} only in {'old' if name in a.variables else 'new'}")
            continue
        if a[name].dims != b[name].dims:
            problems.append(f"{relative}: {name} dims {a[name].dims} vs {b[name].dims}")
            continue
        if not same(np.asarray(a[name].values), np.asarray(b[name].values)):
            problems.append(f"{relative}: {name} differs")
    for key in sorted((set(a.attrs) | set(b.attrs)) - IGNORED_ATTRS):
        if str(a.attrs.get(key)) != str(b.attrs.get(key)):
            problems.append(f"{relative}: attribute {key}: {str(a.attrs.get(key))[:80]!r} vs "
                            f"{str(b.attrs.get(key))[:80]!r} (attribute only)")
    return problems


def compare_checkpoint(old: Path, new: Path, relative: str) -> list[str]:
    import torch

    a, b = torch.load(old, weights_only=False), torch.load(new, weights_only=False)
    problems = []

    def walk(x, y, where):
        if isinstance(x, dict):
            for key in set(x) | set(y):
                if key not in x or key not in y:
                    problems.append(f"{relative}: {where}{key} only in one")
                else:
                    walk(x[key], y[key], f"{where}{key}.")
        elif isinstance(x, torch.Tensor):
            if not torch.equal(x, y):
                problems.append(f"{relative}: {where} differs")
        elif isinstance(x, (list, tuple)):
            for i, (u, v) in enumerate(zip(x, y)):
                walk(u, v, f"{where}{i}.")
        elif x != y and not (isinstance(x, float) and np.isnan(x) and np.isnan(y)):
            problems.append(f"{relative}: {where} {x!r} vs {y!r}")

    walk(a, b, "")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    problems, compared = [], 0
    stores = sorted(p for p in args.old.rglob("*.zarr") if not any(q.suffix == ".zarr" for q in p.parents))
    for store in stores:
        relative = store.relative_to(args.old).as_posix()
        if relative.startswith("benchmarks/"):
            continue
        target = args.new / counterpart(relative)
        if not target.exists():
            problems.append(f"{relative}: no counterpart {target}")
            continue
        problems += compare_store(store, target, relative)
        compared += 1
    for checkpoint in sorted(args.old.rglob("*.pt")):
        relative = checkpoint.relative_to(args.old).as_posix()
        problems += compare_checkpoint(checkpoint, args.new / relative, relative)
        compared += 1
    for text in sorted(list(args.old.rglob("summary.md")) + list(args.old.rglob("baselines_table.*"))):
        relative = text.relative_to(args.old).as_posix()
        old_lines = text.read_text().splitlines()
        new_lines = (args.new / relative).read_text().splitlines()
        differing = [i for i, (x, y) in enumerate(zip(old_lines, new_lines)) if x != y]
        if differing or len(old_lines) != len(new_lines):
            problems.append(f"{relative}: {len(differing)} lines differ (text only), first: "
                            f"{old_lines[differing[0]] if differing else ''!r} vs "
                            f"{new_lines[differing[0]] if differing else ''!r}")
        compared += 1
    arrays = [p for p in problems if "(attribute only)" not in p and "(text only)" not in p]
    for line in problems:
        print(line)
    print(f"{compared} stores, checkpoints and texts compared: {len(arrays)} array differences, "
          f"{len(problems) - len(arrays)} attribute or text differences")
    return 1 if arrays else 0


if __name__ == "__main__":
    sys.exit(main())
