"""The eigen methods of the study: one torch-free table (the registry) and the typed spec of each.

Every method that decomposes a Hessian at a record step is an entry of :data:`METHODS`: its name
(the ``eigen.methods.<name>`` config block, the ``method`` coordinate of the metrics and the path
``results/<experiment>/eigen/<name>/<split>/step=<step>.zarr``), its label, its spec class, the
function that writes its store and the scheduling priority of its jobs. The spec of a method is a
frozen dataclass whose fields are exactly what its stores depend on: the shared ``eigen.*`` keys it
reads (curvature, precision, products, store chunks) and the keys of its own block. Its defaults
are resolved once, when the config is validated (:func:`resolve`), and its fields are the rerun
keys of its jobs: a key it does not read can never rerun it.

Adding a method is its kernel module (with ``solve(operator, spec, step, progress)``), an entry
here with its spec, its schema block (``eigen.methods.<name>`` in ``schemas/config.schema.yaml``)
and its tests. The rules, the metrics, the figures and the config checks read the registry.

No torch here: the Snakemake process and the jobs that only read stores import this module.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Mapping, Sequence

from hessmask.masks import k_of_rho
from hessmask.seeds import record_step_seed

#: keys of ``experiments.<name>.eigen`` that a method's spec may read (the others: ``steps``,
#: ``threads`` and ``methods``, say which jobs run and where, not what they compute)
SHARED_KEYS = ("curvature", "dtype", "device", "block_size", "data_chunk", "residual_pairs",
               "aposteriori_samples", "row_chunk", "vector_chunk")
#: keys of every ``eigen.methods.<name>`` block that are no spec field: whether and where it runs
PLAN_KEYS = ("enabled", "steps")
#: kinds of test matrix of the sketch (``hessmask.sketch.TestMatrix``; ``eigen.methods.seigh.kind``)
KINDS = ("ssrft", "sparse_sign", "gaussian", "rademacher")


def default_inner(outer: int) -> int:
    """The inner sketch size t of an outer size s when none is given: t = 2 s (TMLR paper, Algorithm 2)."""
    return 2 * int(outer)


class SettingError(ValueError):
    """A method setting that cannot work; ``key`` is relative to ``eigen.methods.<name>`` (or names a
    shared ``eigen.<key>``), so that the config check can name the full key."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Context:
    """What a method's defaults may depend on: the experiment's D, its largest mask fraction, and
    the specs of the methods resolved before it (in registry order)."""

    dim: int
    rho_max: float
    resolved: Mapping[str, "SolveSpec"]


@dataclass(frozen=True)
class SolveSpec:
    """The ``eigen.*`` settings every solve reads: the curvature operator's (``curvature``,
    ``dtype``, ``device``, ``block_size``, ``data_chunk``) and the store's (``residual_pairs``
    measured, ``row_chunk`` x ``vector_chunk`` eigenvector chunks). Subclasses add their block's keys;
    a field of the method's block overrides the shared key of the same name."""

    curvature: str
    dtype: str
    device: str
    block_size: int
    data_chunk: int | None
    residual_pairs: int
    row_chunk: int
    vector_chunk: int

    @classmethod
    def defaults(cls, values: dict[str, Any], context: Context) -> dict[str, Any]:
        """``values`` (the fields read from the config, None where the config says "default") with
        every default filled in."""
        return values

    def pairs(self) -> int:
        """Eigenpairs the method's stores hold."""
        raise NotImplementedError

    def products(self, dim: int) -> int:
        """Operator products one solve takes (without residuals and the a-posteriori estimate)."""
        raise NotImplementedError

    def check(self, dim: int) -> None:
        """Raise ``SettingError`` for settings that cannot work at this D."""

    def memory_mb(self, dim: int) -> float | None:
        """Memory one job of the method needs at this D whatever its chunks, in MB (checked against
        ``resources.eigen_mem_mb`` before any job); None: it streams in bounded memory."""
        return None

    def parts(self) -> list[tuple[str, ...]]:
        """The part stores the method's store is made from, as paths relative to its part folder
        (``hessmask.paths.Layout.eigen_part``), in the order its writer takes them; [] for a store
        written by one job."""
        return []

    def params(self) -> dict[str, Any]:
        """The spec as plain values (the job's Snakemake params, so its rerun keys)."""
        return asdict(self)


@dataclass(frozen=True)
class ExactSpec(SolveSpec):
    """The exact reference: the dense matrix from D products in ``dtype`` (float64 by default,
    whatever ``eigen.dtype`` is) and its float64 eigendecomposition, keeping ``k`` eigenvectors
    (default: round(max(masks.rho) D), every mask's k)."""

    k: int

    @classmethod
    def defaults(cls, values: dict[str, Any], context: Context) -> dict[str, Any]:
        if values["k"] is None:
            values["k"] = min(context.dim, k_of_rho(context.dim, context.rho_max))
        return values

    def pairs(self) -> int:
        return self.k

    def products(self, dim: int) -> int:
        return dim

    def check(self, dim: int) -> None:
        if self.k > dim:
            raise SettingError("k", f"{self.k} exceeds D = {dim}")

    def memory_mb(self, dim: int) -> float:
        return 3 * 8 * dim * dim / 1e6  # the float64 matrix, eigh's eigenvectors and workspace


@dataclass(frozen=True)
class SeighSpec(SolveSpec):
    """SEIGH (TMLR Algorithm 2): ``inner`` = t products with the test matrices of ``kind`` and
    ``seed``, of which the first ``outer`` = s span the recovered eigenvectors; measured in
    ``shards`` jobs (1: measured and solved in one job) and checked a posteriori with
    ``aposteriori_samples`` extra products."""

    aposteriori_samples: int
    outer: int
    inner: int
    kind: str
    seed: int
    shards: int

    @classmethod
    def defaults(cls, values: dict[str, Any], context: Context) -> dict[str, Any]:
        if values["inner"] is None:
            values["inner"] = default_inner(values["outer"])
        return values

    def pairs(self) -> int:
        return self.outer

    def products(self, dim: int) -> int:
        return self.inner

    def check(self, dim: int) -> None:
        if self.inner < self.outer:
            raise SettingError("inner", f"{self.inner} < outer = {self.outer}")
        if self.inner > dim:
            raise SettingError("inner", f"sketch size {self.inner} exceeds the D = {dim} parameters")
        blocks = -(-self.inner // self.block_size)
        if self.shards > blocks:
            raise SettingError("shards", f"{self.shards} shards for only {blocks} blocks of {self.block_size} "
                                         "measurements; lower shards or eigen.block_size")

    def parts(self) -> list[tuple[str, ...]]:
        return [] if self.shards == 1 else [(f"shard={i}.zarr",) for i in range(self.shards)]


@dataclass(frozen=True)
class BlockKrylovSpec(SolveSpec):
    """Randomized block Krylov in ``passes`` rounds of jobs under ``budget`` products (default: the
    sketch's t, SEIGH's budget), each pass's products in ``shards`` jobs (1: every pass and the solve
    in one job), keeping ``k`` Ritz pairs (default: the sketch's s); Gaussian start block of ``seed``."""

    aposteriori_samples: int
    budget: int
    passes: int
    k: int
    shards: int
    seed: int

    @classmethod
    def defaults(cls, values: dict[str, Any], context: Context) -> dict[str, Any]:
        sketch = context.resolved["seigh"]
        if values["budget"] is None:
            values["budget"] = sketch.products(context.dim)
        if values["k"] is None:
            values["k"] = sketch.pairs()
        return values

    @property
    def block(self) -> int:
        """Columns of each Krylov block: budget // passes."""
        return self.budget // self.passes

    def pairs(self) -> int:
        return self.k

    def products(self, dim: int) -> int:
        return self.block * self.passes

    def check(self, dim: int) -> None:
        if self.block < 1:
            raise SettingError("passes", f"{self.passes} passes for a budget of {self.budget} products leave an "
                                         "empty block")
        if self.block > dim:
            raise SettingError("budget", f"blocks of {self.block} columns exceed D = {dim}")
        if self.k > self.block * self.passes:
            raise SettingError("k", f"{self.k} Ritz pairs from a Krylov space of at most "
                                    f"{self.block * self.passes} dimensions")
        blocks = -(-self.block // self.block_size)
        if self.shards > blocks:
            raise SettingError("shards", f"{self.shards} shards for only {blocks} blocks of {self.block_size} "
                                         "products per pass; lower shards or eigen.block_size")

    def parts(self) -> list[tuple[str, ...]]:
        if self.shards == 1:
            return []
        bases = [(f"basis_pass={p}.zarr",) for p in range(self.passes)]
        return bases + [(f"image_pass={p}", f"shard={i}.zarr") for p in range(self.passes) for i in range(self.shards)]


@dataclass(frozen=True)
class Method:
    """One eigen method of the registry.

    Args:
        name: config block, coordinate and path name.
        label: what figures and tables call it.
        spec: its spec class (a ``SolveSpec``).
        solve: ``"module:function"`` of its kernel taking (operator, spec, step, progress) and
            returning an ``EigenResult`` (in-memory methods; None where ``store`` does everything).
        store: ``"module:function"`` writing its eigen store, with the signature every writer has:
            (operator, spec, step, parts, path, attrs) -> wall time per phase.
        priority: Snakemake priority of its store jobs (longer jobs first keeps the cores busy).
    """

    name: str
    label: str
    spec: type[SolveSpec]
    solve: str | None
    store: str = "hessmask.eigen.stores:kernel_store"
    priority: int = 40


#: The eigen methods, in the order stores, metrics and figures list them.
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("exact", "exact", ExactSpec, "hessmask.eigen.exact:solve", priority=45),
    Method("seigh", "SEIGH (sketched)", SeighSpec, None, store="hessmask.eigen.seigh_store:store"),
    Method("block_krylov", "block Krylov", BlockKrylovSpec, None, store="hessmask.eigen.krylov_store:store"),
)}
#: the method names, in registry order
NAMES = tuple(METHODS)
#: what each method is called in figures and tables
LABELS = {name: m.label for name, m in METHODS.items()}


def method(name: str) -> Method:
    """The registry entry of ``name``; a ``KeyError`` naming the known methods otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown eigen method {name!r} (known: {', '.join(NAMES)})") from None


def method_of(spec: SolveSpec) -> Method:
    """The registry entry whose spec class ``spec`` is an instance of (exactly)."""
    for entry in METHODS.values():
        if type(spec) is entry.spec:
            return entry
    raise KeyError(f"no eigen method has the spec class {type(spec).__name__} (hessmask.eigen.methods.METHODS)")


def record_seed(spec: SolveSpec, step: int) -> int:
    """The seed of a method's draws at record step ``step`` (its a-posteriori test vectors):
    ``spec.seed + step``."""
    return record_step_seed(spec.seed, step)


def spec_keys(name: str) -> tuple[str, ...]:
    """The fields of a method's spec: its rerun keys."""
    return tuple(f.name for f in fields(method(name).spec))


def resolve(eigen: Mapping[str, Any], dim: int, rho_max: float) -> dict[str, SolveSpec]:
    """Every method's spec from an experiment's ``eigen`` section (blocks under ``methods``), with
    each default filled in once; in registry order, so that a default may read an earlier method's
    spec (block Krylov's budget is the sketch's t)."""
    specs: dict[str, SolveSpec] = {}
    for name, entry in METHODS.items():
        block = eigen["methods"][name]
        values = {f.name: block[f.name] if f.name in block else eigen[f.name] for f in fields(entry.spec)}
        specs[name] = entry.spec(**entry.spec.defaults(values, Context(dim, rho_max, specs)))
    return specs


def from_params(name: str, params: Mapping[str, Any]) -> SolveSpec:
    """A method's spec from its job's params (``SolveSpec.params``)."""
    return method(name).spec(**params)


def function(reference: str) -> Callable:
    """The function a ``"module:function"`` reference of the registry names (imported on first use)."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def enabled_methods(plan: Mapping[str, Mapping[str, Any]], step: int | None = None) -> list[str]:
    """The methods of an experiment's ``eigen.methods`` that run at ``step`` (at any step if None), in
    registry order; ``plan`` is the validated ``eigen.methods`` section (steps resolved)."""
    return [name for name in NAMES if plan[name]["enabled"] and (step is None or int(step) in plan[name]["steps"])]


def order(names: Sequence[str]) -> list[str]:
    """``names`` in registry order."""
    return sorted(names, key=NAMES.index)
