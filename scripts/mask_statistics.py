"""Rule mask_statistics: theta.zarr -> masks.zarr (kappa per step and rho, IoU between record steps)."""

from _helpers import run
from hessmask.jobs import excluded_parameters
from hessmask.masks import mask_statistics
from hessmask.store import open_dataset, provenance, write_dataset


def main(sm) -> None:
    theta = open_dataset(sm.input[0])
    masks = sm.params.masks
    excluded = excluded_parameters(sm.params.model, masks["exclude"], sm.params.classes)
    ds = mask_statistics(theta["theta"], masks["rho"], masks["ties"], masks["seed"], excluded)
    ds.attrs.update(provenance(masks))
    write_dataset(ds, sm.output[0])


if __name__ == "__main__":
    run(main, globals())
