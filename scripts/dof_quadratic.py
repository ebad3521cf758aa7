"""Rule dof_quadratic: config dof_quadratic -> results/dof/quadratic_well.zarr."""

from _helpers import run
from hessmask.dof.quadratic import quadratic_well_dataset
from hessmask.store import provenance, write_dataset


def main(sm) -> None:
    ds = quadratic_well_dataset(sm.params.quad)
    ds.attrs.update(provenance(sm.params.quad))
    write_dataset(ds, sm.output[0])


if __name__ == "__main__":
    run(main, globals())
