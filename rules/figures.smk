# Figures of each experiment (seed 000 Figs. 1, 4, 9, 10; the TMLR figures) from its stores, each
# registered for `snakemake --report` with a caption from report/.


rule experiment_figures:
    """All figures of one experiment, PNG (in the report) and PDF."""
    input:
        training=results("{experiment}", "training.zarr"),
        masks=results("{experiment}", "masks.zarr"),
        metrics=results("{experiment}", "metrics.zarr"),
        baselines=lambda wc: (
            [results("synthetic", "grassmann_baselines.zarr")] if config["synthetic"]["enabled"] else []
        ),
        timings=lambda wc: (
            [
                results("benchmarks", "eigen_phases", wc.experiment, split, f"step={step}.json")
                for split, step in eigen_jobs(experiment(wc))
            ]
            if experiment(wc)["eigen"]["sketch"]["enabled"]
            else []
        ),
    output:
        **{f"{name}_png": path for name, path in figure_outputs("png").items()},
        **{f"{name}_pdf": path for name, path in figure_outputs("pdf").items()},
    log:
        results("logs", "experiment_figures", "{experiment}.log"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    # figures are drawn in this many forked processes (hessmask.plots.save_figures)
    threads: 2
    params:
        jobs=from_experiment(eigen_jobs),
        rho=experiment_key("metrics", "summary_rho"),
    script:
        "../scripts/experiment_figures.py"
