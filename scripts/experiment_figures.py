"""Rule experiment_figures: an experiment's stores -> results/figures/<experiment>/*.{png,pdf}."""

import json
from pathlib import Path

from hessmask import plots
from hessmask.jobs import setup_logging
from hessmask.store import open_dataset

sm = snakemake  # noqa: F821 (Snakemake global)
rho = sm.params.rho  # the reported k = round(rho D) (metrics.summary_rho), solved by every method
log = setup_logging(sm.log)
training = open_dataset(sm.input.training)
masks = open_dataset(sm.input.masks)
metrics = open_dataset(sm.input.metrics)
baselines = open_dataset(sm.input.baselines[0]) if sm.input.baselines else None
timings = {}
for (split, step), path in zip(sm.params.jobs, sm.input.timings):
    timings[f"{split} {step}"] = json.loads(Path(path).read_text())
figures = {
    "crystallization": lambda: plots.crystallization(training, masks, metrics, rho=rho),
    "metrics_over_steps": lambda: plots.metrics_over_steps(metrics, baselines),
    "kappa_accuracy": lambda: plots.kappa_and_accuracy(training, masks, metrics),
    "similarity_matrices": lambda: plots.similarity_matrices(masks, metrics, rho=rho, max_step=240),
    "exact_vs_sketched": lambda: plots.exact_vs_sketched(metrics, rho=rho),
    "overlap_vs_k": lambda: plots.overlap_vs_k(metrics),
    "magnitude_vs_random": lambda: plots.magnitude_vs_random(metrics),
    "accuracy_vs_products": lambda: plots.accuracy_vs_products(metrics, rho=rho),
    "runtime_breakdown": lambda: plots.runtime_breakdown(timings,
                                                         f"SEIGH runtime by phase ({sm.wildcards.experiment})"),
}
plots.save_figures({name: (make, Path(sm.output[f"{name}_png"]).with_suffix("")) for name, make in figures.items()},
                   workers=sm.threads, done=lambda name: log.info("figure %s", name))
