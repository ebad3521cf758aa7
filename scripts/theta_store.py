"""Rule theta_store: checkpoints at the record steps -> results/<experiment>/theta.zarr (step, param)."""

from _helpers import run
from hessmask.store import provenance, write_dataset
from hessmask.training import theta_dataset


def main(sm) -> None:
    ds = theta_dataset(list(sm.input))
    ds.attrs.update(provenance(sm.params.experiment))
    write_dataset(ds, sm.output[0], encoding={"theta": {"chunks": (1, min(ds.sizes["param"], 1 << 20))}})


if __name__ == "__main__":
    run(main, globals())
