"""The eigen method registry: one table drives the config schema, the specs (defaults resolved once,
rerun keys), the writers and the stores; a new method solved in memory needs nothing else."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import yaml

from hessmask.eigen import methods
from hessmask.operators import MatrixOperator
from hessmask.store import open_dataset

SHARED = dict(curvature="hessian", dtype="float32", device="cpu", block_size=16, data_chunk=None, residual_pairs=4,
              row_chunk=64, vector_chunk=8)


def schema_blocks(repo):
    schema = yaml.safe_load((repo / "schemas" / "config.schema.yaml").read_text())
    eigen = schema["definitions"]["experiment"]["properties"]["eigen"]["properties"]
    return eigen, eigen["methods"]["properties"]


def test_every_method_has_a_schema_block_with_exactly_its_keys(repo):
    """A method's block holds ``enabled``, ``steps`` and spec fields only; every spec field is in its
    block or is a shared ``eigen.*`` key (a block key overrides the shared one of the same name)."""
    eigen, blocks = schema_blocks(repo)
    assert list(blocks) == list(methods.NAMES)
    assert set(methods.SHARED_KEYS) <= set(eigen)
    for name, entry in methods.METHODS.items():
        fields = {f.name for f in dataclasses.fields(entry.spec)}
        block = set(blocks[name]["properties"])
        assert set(methods.PLAN_KEYS) <= block and block - set(methods.PLAN_KEYS) <= fields, name
        assert fields - block <= set(methods.SHARED_KEYS), name


def test_writers_and_kernels_of_the_registry_resolve():
    for entry in methods.METHODS.values():
        assert callable(methods.function(entry.store))
        if entry.solve is not None:
            assert callable(methods.function(entry.solve))
        assert issubclass(entry.spec, methods.SolveSpec) and entry.label
    with pytest.raises(KeyError, match="unknown eigen method 'lanczos'"):
        methods.method("lanczos")


def eigen_section(**blocks):
    """An experiment's ``eigen`` section as validation sees it before resolving: every method's block
    at its schema defaults (so a newly registered method is in it too), with ``blocks`` on top."""
    from hessmask.config import load_schema

    schema = load_schema()["definitions"]["experiment"]["properties"]["eigen"]["properties"]["methods"]
    defaults = {name: {key: prop.get("default") for key, prop in block["properties"].items()}
                for name, block in schema["properties"].items()}
    defaults["seigh"].update(outer=20, seed=5)
    defaults["block_krylov"].update(passes=4, seed=3)
    for name, block in blocks.items():
        defaults[name].update(block)
    return {**SHARED, "aposteriori_samples": 3, "steps": [0], "threads": 1, "methods": defaults}


def test_defaults_are_resolved_in_one_place():
    specs = methods.resolve(eigen_section(), dim=300, rho_max=0.1)
    assert specs["seigh"].inner == methods.default_inner(20) == 40
    assert specs["exact"].k == 30 and specs["exact"].dtype == "float64"  # round(0.1 x 300); its own dtype
    assert specs["block_krylov"].budget == 40 and specs["block_krylov"].k == 20  # the sketch's t and s
    assert specs["block_krylov"].block == 10 and specs["block_krylov"].products(300) == 40
    again = methods.resolve(eigen_section(), dim=300, rho_max=0.1)
    assert again == specs
    for name, spec in specs.items():
        assert methods.from_params(name, json.loads(json.dumps(spec.params()))) == spec


def test_rerun_keys_are_the_fields_each_spec_reads():
    """A shared key a method does not read is no param of its jobs: changing it reruns nothing of it."""
    base = methods.resolve(eigen_section(), 300, 0.1)
    changed = methods.resolve({**eigen_section(), "aposteriori_samples": 7}, 300, 0.1)
    assert changed["exact"].params() == base["exact"].params()
    assert changed["seigh"].params() != base["seigh"].params()
    moved = methods.resolve(eigen_section(seigh={"seed": 6}), 300, 0.1)
    assert moved["exact"].params() == base["exact"].params() and moved["block_krylov"] == base["block_krylov"]
    assert "enabled" not in methods.spec_keys("seigh") and "steps" not in methods.spec_keys("exact")


def test_part_stores_of_sharded_methods():
    specs = methods.resolve(eigen_section(seigh={"shards": 2}, block_krylov={"enabled": True, "shards": 2}), 300, 0.1)
    assert specs["seigh"].parts() == [("shard=0.zarr",), ("shard=1.zarr",)]
    assert specs["block_krylov"].parts()[:4] == [(f"basis_pass={p}.zarr",) for p in range(4)]
    assert len(specs["block_krylov"].parts()) == 4 + 4 * 2 and specs["exact"].parts() == []


def test_settings_that_cannot_work_name_their_key():
    specs = methods.resolve(eigen_section(seigh={"inner": 10}), 300, 0.1)
    with pytest.raises(methods.SettingError) as info:
        specs["seigh"].check(300)
    assert info.value.key == "inner"
    assert specs["exact"].memory_mb(7030) == pytest.approx(1186.1, rel=1e-3) and specs["seigh"].memory_mb(10) is None


@dataclasses.dataclass(frozen=True)
class PowerSpec(methods.SolveSpec):
    """A toy method: k eigenpairs by subspace iteration from a seeded Gaussian block."""

    k: int
    iterations: int
    seed: int

    def pairs(self):
        return self.k

    def products(self, dim):
        return self.k * self.iterations


def power_solve(operator, spec, step, progress=None):
    from hessmask.eigen.common import EigenResult, sort_top

    rng = np.random.default_rng([spec.seed, step])
    q = np.linalg.qr(rng.standard_normal((operator.dim, spec.k)))[0]
    for _ in range(spec.iterations):
        q = np.linalg.qr(operator.matmat(torch.from_numpy(q)).numpy())[0]
    values, w = np.linalg.eigh(q.T @ operator.matmat(torch.from_numpy(q)).numpy())
    values, vectors = sort_top(values, q @ w, spec.k)
    return EigenResult(values, vectors, "power", spec.products(operator.dim))


def test_a_method_registered_with_its_kernel_is_written_like_any_other(monkeypatch, tmp_path):
    """What adding a method solved in memory takes: its spec and kernel (here in the test) and its
    registry entry; the generic writer stores it (the rules, metrics and figures read the registry)."""
    from hessmask.eigen.stores import kernel_store

    monkeypatch.setitem(methods.METHODS, "power", methods.Method("power", "power iteration", PowerSpec,
                                                                  f"{__name__}:power_solve"))
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    matrix = (q * np.concatenate([[9.0, 7.0, 5.0], rng.uniform(-1, 1, 57)])) @ q.T
    operator = MatrixOperator(matrix, dtype=torch.float64)
    spec = PowerSpec(**{**SHARED, "dtype": "float64"}, k=3, iterations=30, seed=1)
    kernel_store(operator, spec, 5, [], tmp_path / "power.zarr", {"step": 5})
    store = open_dataset(tmp_path / "power.zarr")
    np.testing.assert_allclose(store["eigenvalues"].values, [9.0, 7.0, 5.0], rtol=1e-8)
    assert store.attrs["method"] == "power" and store.attrs["products"] == 90
    assert store["residual_norm"].size == 3 and float(store["residual_norm"].max()) < 1e-5
