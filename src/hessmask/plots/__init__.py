"""Figures of the study: one function per figure, taking xarray Datasets, returning a Figure.

Functions never write files; ``save_figure`` writes PNG and PDF side by side. Styling is
seaborn's "whitegrid" with the colorblind palette, so figures read the same on paper and screen.
Modules: ``common`` (style, labels, layouts, writing), ``synthetic``, ``experiment`` and ``dof``
(the figures of each stage); every figure function is importable from the package, which is where
the table of ``hessmask.figures`` names them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

import matplotlib

matplotlib.use("Agg")  # before any pyplot import: figures are drawn without a display
import matplotlib.pyplot as plt  # noqa: E402

from hessmask.plots.common import (  # noqa: F401, E402 (the package's public names)
    METRIC_LABELS,
    MODALITY_LABELS,
    metric_axis_label,
    save_figure,
    save_figures,
    style,
)
from hessmask.plots.dof import (  # noqa: F401, E402
    dof_compression,
    dof_start_step,
    dof_start_step_success,
    dof_success,
    dof_threshold,
    quadratic_well,
)
from hessmask.plots.experiment import (  # noqa: F401, E402
    accuracy_vs_products,
    crystallization,
    exact_vs_sketched,
    kappa_and_accuracy,
    magnitude_vs_random,
    metrics_over_steps,
    overlap_vs_k,
    runtime_breakdown,
    similarity_matrices,
)
from hessmask.plots.synthetic import random_baseline, synthetic_vs_dim, synthetic_vs_rho  # noqa: F401, E402

if TYPE_CHECKING:
    from hessmask.figures import Figure


def table_figures(table: Mapping[str, "Figure"], available: Mapping[str, object], stems: Mapping[str, Path | str],
                  experiment: str = "") -> dict[str, tuple[Callable[[], plt.Figure], Path | str]]:
    """The figures of a table of ``hessmask.figures`` as ``save_figures`` takes them: each drawn by its
    function of this module from the job's opened inputs ``available``, saved under ``stems[name]``."""
    jobs = {}
    for name, figure in table.items():
        args, kwargs = figure.arguments(available, experiment)
        jobs[name] = (functools.partial(globals()[figure.draw], *args, **kwargs), stems[name])
    return jobs


#: the figures ``save_figures`` hands to its forked workers (set before the fork, read in the children)
