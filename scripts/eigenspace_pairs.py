"""Rule eigenspace_pairs: one method's eigen stores -> its eigenspace overlaps between steps and splits
(hessmask.metrics.eigenspace_pairs), merged into metrics.zarr by metrics_aggregate."""

import logging

from _helpers import run
from hessmask.config import MODEL_DIMS
from hessmask.metrics import eigenspace_pairs
from hessmask.store import open_dataset, provenance, write_dataset


def main(sm) -> None:
    dim = MODEL_DIMS[sm.params.model]
    stores = {tuple(key): open_dataset(path, load=False) for key, path in zip(sm.params.eigen_keys, sm.input.eigen)}
    ds = eigenspace_pairs(stores, sm.params.rho, dim, sm.params.row_chunk)
    ds.attrs = {**provenance({"rho": sm.params.rho, "method": sm.wildcards.method}), "D": dim}
    write_dataset(ds, sm.output[0])
    logging.getLogger("hessmask").info("%s: eigenspace overlaps of %d stores at rho %s", sm.wildcards.method,
                                       len(stores), sm.params.rho)


if __name__ == "__main__":
    run(main, globals())
