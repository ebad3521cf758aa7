"""The dimensions of the study's stores: one table, one name per concept.

Every store writer goes through ``hessmask.store`` (``write_dataset``, ``StoreWriter``), which
refuses a dimension this table does not name and gives every coordinate its ``long_name`` and
``units`` from here, so the same concept has the same name, meaning and unit in every store.
``results/README.md`` prints this table. numpy-free, torch-free.
"""

from __future__ import annotations

from typing import Any, Mapping


class Dimension(tuple):
    """(long_name, units) of one dimension."""

    @property
    def long_name(self) -> str:
        return self[0]

    @property
    def units(self) -> str:
        return self[1]


def _dim(long_name: str, units: str) -> Dimension:
    return Dimension((long_name, units))


#: every dimension of every store: name -> (long_name, units)
DIMENSIONS: dict[str, Dimension] = {
    # training and parameters
    "step": _dim("training step (SGD steps from the initialization)", "steps"),
    "step_other": _dim("training step of the second member of a pair", "steps"),
    "train_step": _dim("SGD step whose batch loss is recorded", "steps"),
    "param": _dim("parameter index in model.parameters() order (weight row-major, then bias)", "1"),
    "split": _dim("data split of the Hessian subset or the evaluation (train, test)", "1"),
    # masks and eigenspaces
    "rho": _dim("mask fraction rho = k / D", "1"),
    "k": _dim("subspace dimension k (mask size, leading eigenpairs)", "1"),
    "eigenpair": _dim("eigenpair index, by descending absolute eigenvalue", "1"),
    "residual_pair": _dim("index of a leading eigenpair whose residual is measured", "1"),
    "spectrum_index": _dim("position in the whole spectrum, descending eigenvalue", "1"),
    "method": _dim("eigen method (hessmask.eigen.methods.NAMES)", "1"),
    "metric": _dim("Grassmannian metric (hessmask.grassmann.METRICS)", "1"),
    # synthetic baselines
    "modality": _dim("pair of random subspaces: OO orthonormal-orthonormal, OB orthonormal-mask, BB mask-mask", "1"),
    "D": _dim("ambient dimension D of the random pairs", "1"),
    "sample": _dim("independent random pair", "1"),
    # intermediate stores of the eigen solves
    "measurement": _dim("SEIGH measurement index i (product H psi_R_i)", "1"),
    "inner_row": _dim("row of the inner test matrix Psi_L (or Psi_R)", "1"),
    "outer_column": _dim("outer-sketch column i < s", "1"),
    "column": _dim("column of a block Krylov pass's basis or products", "1"),
    # degrees of freedom
    "subspace": _dim("subspace kind trained in (hessmask.dof.methods.SUBSPACES)", "1"),
    "d": _dim("training dimension d of the subspace", "1"),
    "run": _dim("run index r (its own data order, random basis and, r >= 1, initialization and trajectory)", "1"),
    "full_run": _dim("run index of the full-space reference", "1"),
    "adam_step": _dim("Adam step in the subspace", "steps"),
    "level": _dim("accuracy level of the success probability", "1"),
    "sweep_level": _dim("train-accuracy level of the start-step experiment", "1"),
    "start_step": _dim("t: the SGD step of the run's offset w_t", "steps"),
    "sweep_subspace": _dim("subspace kind of the start-step experiment (burn_in, hessian_topd, mask_topd)", "1"),
    "refined": _dim("bisection training of a run, in the order they were trained", "1"),
    "pair": _dim("two start-step subspaces compared run by run ('a vs b')", "1"),
    "lr": _dim("Adam learning rate of the full-space reference", "1"),
    "component": _dim("principal direction of the training trajectory", "1"),
    "direction": _dim("step direction w_{s+every} - w_s of the training trajectory", "1"),
    # the quadratic well
    "spectrum": _dim("Hessian spectrum of the quadratic well", "1"),
    "radius": _dim("distance R of the initialization from the minimum", "parameter units"),
    "eps": _dim("loss level eps of the sublevel set", "loss"),
}


class UnknownDimension(ValueError):
    """A store names a dimension the table does not (add it to ``DIMENSIONS`` with its meaning)."""


def check(dims: Any, where: str = "a store") -> None:
    """Refuse dimensions that ``DIMENSIONS`` does not name."""
    unknown = sorted(set(map(str, dims)) - set(DIMENSIONS))
    if unknown:
        raise UnknownDimension(f"{where} has dimensions {unknown} that hessmask.dims.DIMENSIONS does not name; add "
                               "each with its long_name and units (one name per concept across the stores)")


def describe(ds: Any, where: str = "a store") -> Any:
    """Check the dimensions of an xarray Dataset and give each of its coordinates the table's
    ``long_name`` and ``units`` (where the writer set none); returns ``ds``."""
    check(ds.dims, where)
    for name in ds.coords:
        if name in DIMENSIONS:
            entry = DIMENSIONS[name]
            attrs: Mapping[str, str] = ds[name].attrs
            ds[name].attrs.update({"long_name": attrs.get("long_name", entry.long_name),
                                   "units": attrs.get("units", entry.units)})
    return ds


def table_markdown() -> str:
    """The table as Markdown (``results/README.md`` holds it; a test checks they agree)."""
    lines = ["| dimension | meaning | units |", "|---|---|---|"]
    lines += [f"| `{name}` | {dim.long_name} | {dim.units} |" for name, dim in DIMENSIONS.items()]
    return "\n".join(lines) + "\n"
