"""Rule prepare_dataset: download (if needed) and prepare one dataset -> data/<dataset>.npz."""

import logging

from _helpers import run
from hessmask.data import prepare_dataset


def main(sm) -> None:
    data = {**sm.config["data"], **sm.params.data}
    prepare_dataset(sm.wildcards.dataset, sm.output.npz, data, seed=data["split_seed"])  # and its digest
    logging.getLogger("hessmask").info("prepared %s", sm.output.npz)


if __name__ == "__main__":
    run(main, globals())
