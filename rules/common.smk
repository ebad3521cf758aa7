# Shared helpers: config validation (defaults filled, unknown keys rejected), result paths.

import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from hessmask.config import ConfigError, validate_config  # noqa: E402
from hessmask.synthetic import grid_cells  # noqa: E402

try:
    _validated = validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)

RESULTS = config["results"]
SYNTHETIC_CELLS = grid_cells(config["synthetic"]["grids"])
SYNTHETIC_FIGURES = ["vs_D", "vs_ratio"]


def results(*parts):
    """A path under the configured results folder."""
    return str(Path(RESULTS, *parts))


def all_targets():
    """Every final output the config asks for."""
    targets = []
    if config["synthetic"]["enabled"]:
        targets += synthetic_targets()
    return targets


def synthetic_targets():
    figures = expand(
        results("figures", "synthetic", "{kind}_{modality}.{ext}"),
        kind=SYNTHETIC_FIGURES,
        modality=config["synthetic"]["modalities"],
        ext=["png", "pdf"],
    )
    return [
        results("synthetic", "grassmann_baselines.zarr"),
        results("synthetic", "baselines_table.csv"),
        results("synthetic", "baselines_table.md"),
        *figures,
    ]
