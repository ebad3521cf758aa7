# Figures of each experiment (seed 000 Figs. 1, 4, 9, 10; the TMLR figures) from its stores, each
# registered for `snakemake --report` with a caption from report/ (the table: hessmask.figures).


rule experiment_figures:
    """All figures of one experiment (hessmask.figures.EXPERIMENT_FIGURES), PNG (in the report) and PDF."""
    input:
        training=LAYOUT.experiment_store("{experiment}", "training"),
        masks=LAYOUT.experiment_store("{experiment}", "masks"),
        metrics=LAYOUT.experiment_store("{experiment}", "metrics"),
        baselines=synthetic_baselines,
        timings=seigh_timings,
    output:
        **figure_outputs(EXPERIMENT_FIGURES, "png", "{experiment}", category="{experiment}"),
        **figure_outputs(EXPERIMENT_FIGURES, "pdf", "{experiment}"),
    log:
        LAYOUT.log("experiment_figures", "{experiment}"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    # figures are drawn in this many forked processes (hessmask.plots.save_figures)
    threads: 2
    params:
        timing_jobs=seigh_timing_jobs,
        rho=experiment_key("metrics", "summary_rho"),
    script:
        "../scripts/experiment_figures.py"
