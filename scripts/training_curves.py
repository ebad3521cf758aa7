"""Rule training_curves: per-segment curves -> results/<experiment>/training.zarr."""

from _helpers import run
from hessmask.store import open_dataset, provenance, write_dataset
from hessmask.training import combine_curves


def main(sm) -> None:
    ds = combine_curves([open_dataset(p, load=False) for p in sm.input])  # theta is never read
    ds.attrs = provenance(sm.params.experiment)
    write_dataset(ds, sm.output[0])


if __name__ == "__main__":
    run(main, globals())
