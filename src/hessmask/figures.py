"""The study's figures: one table of what each draws from, how it is called and how the report
captions it. The rules take the figure files and report entries from here, the figure scripts the
plotting calls, so a figure is added in one place. No matplotlib or torch: the Snakemake process
imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Figure:
    """One figure of the report.

    Args:
        label: its entry in the report (the subcategory).
        caption: its caption file in ``report/``.
        draw: the ``hessmask.plots`` function that draws it.
        inputs: what the function takes positionally, by name of the figure job's inputs.
        keywords: what it takes by keyword, by the same names.
        constants: further keyword arguments.
        title: the figure title (``{experiment}`` filled in), passed as ``title``; None: the function's own.
    """

    label: str
    caption: str
    draw: str
    inputs: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    constants: Mapping[str, Any] = field(default_factory=dict)
    title: str | None = None

    def arguments(self, available: Mapping[str, Any], experiment: str = "") -> tuple[list, dict]:
        """(args, kwargs) of the plotting call from the job's opened inputs."""
        kwargs = {name: available[name] for name in self.keywords} | dict(self.constants)
        if self.title is not None:
            kwargs["title"] = self.title.format(experiment=experiment)
        return [available[name] for name in self.inputs], kwargs


#: the figures of each experiment (seed 000 Figs. 1, 4, 9, 10; the TMLR figures), from its stores:
#: training, masks, metrics, baselines (the synthetic store or None), timings (SEIGH's phases) and
#: rho (``metrics.summary_rho``, the reported k = round(rho D))
EXPERIMENT_FIGURES: dict[str, Figure] = {
    "crystallization": Figure("Crystallization", "crystallization.rst", "crystallization",
                              ("training", "masks", "metrics"), ("rho",)),
    "metrics_over_steps": Figure("Grassmannian metrics", "metrics_over_steps.rst", "metrics_over_steps",
                                 ("metrics", "baselines")),
    "kappa_accuracy": Figure("Training and concentration", "kappa_accuracy.rst", "kappa_and_accuracy",
                             ("training", "masks", "metrics")),
    "similarity_matrices": Figure("Similarity between steps", "similarity_matrices.rst", "similarity_matrices",
                                  ("masks", "metrics"), ("rho",), {"max_step": 240}),
    "exact_vs_sketched": Figure("Exact vs sketched", "exact_vs_sketched.rst", "exact_vs_sketched", ("metrics",),
                                ("rho",)),
    "overlap_vs_k": Figure("Overlap vs k", "overlap_vs_k.rst", "overlap_vs_k", ("metrics",)),
    "magnitude_vs_random": Figure("Magnitude vs random masks", "magnitude_vs_random.rst", "magnitude_vs_random",
                                  ("metrics",)),
    "accuracy_vs_products": Figure("Accuracy per product", "accuracy_vs_products.rst", "accuracy_vs_products",
                                   ("metrics",), ("rho",)),
    "runtime_breakdown": Figure("Runtime", "runtime_breakdown.rst", "runtime_breakdown", ("timings",),
                                title="SEIGH runtime by phase ({experiment})"),
}

#: the degrees-of-freedom figures of each experiment with dof.enabled, from results/dof/<experiment>.zarr
DOF_FIGURES: dict[str, Figure] = {
    "success": Figure("Success probability", "dof_success.rst", "dof_success", ("dof",),
                      title="Success probability of subspace training ({experiment})"),
    "threshold_dimension": Figure("Threshold training dimension", "dof_threshold.rst", "dof_threshold", ("dof",),
                                  title="Threshold training dimension d* ({experiment})"),
    "compression": Figure("Accuracy vs compression", "dof_compression.rst", "dof_compression", ("dof",),
                          title="Accuracy vs compression ratio ({experiment})"),
    "start_step": Figure("Threshold dimension vs start step", "dof_start_step.rst", "dof_start_step", ("dof",),
                         title="Threshold dimension d* against the start step t ({experiment})"),
    "start_step_success": Figure("Success vs d at each start step", "dof_start_step_success.rst",
                                 "dof_start_step_success", ("dof",),
                                 title="Start-step experiment: success probability with 95 % intervals ({experiment})"),
}

#: the synthetic baselines' figures, one per modality (seed 000 Figs. 2, 3, 5-8)
SYNTHETIC_FIGURES: dict[str, Figure] = {
    "vs_D": Figure("Metric vs D", "synthetic_vs_D.rst", "synthetic_vs_dim", ("baselines", "modality"), ("rhos",)),
    "vs_rho": Figure("Metric vs rho", "synthetic_vs_rho.rst", "synthetic_vs_rho", ("baselines", "modality"),
                     ("dims",)),
}
