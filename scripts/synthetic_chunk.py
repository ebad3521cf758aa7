"""Rule synthetic_chunk: one D of the synthetic baselines -> results/synthetic/chunks/D=<D>.zarr."""

import logging

from _helpers import run
from hessmask.store import provenance, write_dataset
from hessmask.synthetic import baseline_chunk


def main(sm) -> None:
    settings = sm.params.settings
    dim = int(sm.wildcards.D)
    logging.getLogger("hessmask").info("D=%d rho=%s T=%d", dim, sm.params.rhos, settings["samples"])
    ds = baseline_chunk(dim, sm.params.rhos, settings["samples"], settings["seed"], settings["modalities"])
    ds.attrs.update(provenance(settings))
    write_dataset(ds, sm.output[0])


if __name__ == "__main__":
    run(main, globals())
