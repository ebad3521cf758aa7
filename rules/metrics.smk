# Mask-vs-eigenspace metrics per (experiment, step, split), the per-experiment metrics.zarr and the
# acceptance summary.


rule step_metrics:
    """Overlap for every k, random-mask baselines, the seven metrics at each rho, spectrum stats.
    theta comes from the training segment's store, not the checkpoint, so the job starts without torch."""
    input:
        segment=LAYOUT.segment("{experiment}", "{step}"),
        eigen=step_eigen_stores,
    output:
        directory(LAYOUT.step_metrics("{experiment}", "{split}", "{step}")),
    log:
        LAYOUT.log("step_metrics", "{experiment}", "{split}", "step={step}"),
    benchmark:
        LAYOUT.benchmark("step_metrics", "{experiment}", "{split}", "step={step}")
    wildcard_constraints:
        split="train|test",
        step=r"\d+",
    conda:
        "../envs/cpu.yaml"
    resources:
        **cluster("cpu"),
        mem_mb=memory("eigen_mem_mb"),
        runtime=30,
    params:
        row_chunk=experiment_key("eigen", "row_chunk"),
        methods=step_methods,
        rho=experiment_key("masks", "rho"),
        metrics=experiment_key("metrics"),
        masks=experiment_key("masks"),
        model=experiment_key("model"),
        classes=from_experiment(experiment_classes),
    script:
        "../scripts/step_metrics.py"


rule eigenspace_pairs:
    """One method's top-k eigenspace overlaps between record steps and between the train and test
    Hessians, for every rho (streamed over row chunks); a job of its own so that it runs as soon as
    that method's stores exist, not at the end of the DAG."""
    input:
        eigen=method_eigen_stores,
    output:
        directory(LAYOUT.eigenspace_pairs("{experiment}", "{method}")),
    log:
        LAYOUT.log("eigenspace_pairs", "{experiment}", "{method}"),
    benchmark:
        LAYOUT.benchmark("eigenspace_pairs", "{experiment}", "{method}")
    wildcard_constraints:
        method=one_of(EIGEN_METHODS),
    conda:
        "../envs/cpu.yaml"
    resources:
        **cluster("cpu"),
        mem_mb=memory("eigen_mem_mb"),
        runtime=60,
    params:
        eigen_keys=method_eigen_keys,
        rho=experiment_key("masks", "rho"),
        row_chunk=experiment_key("eigen", "row_chunk"),
        model=experiment_key("model"),
    script:
        "../scripts/eigenspace_pairs.py"


rule metrics_aggregate:
    """metrics.zarr: per-step metrics stacked over (split, step), eigenspace overlaps between steps,
    and summary.md comparing exact and sketched overlap."""
    input:
        metrics=step_metric_stores,
        pairs=eigenspace_pair_stores,
        eigen=experiment_eigen_stores,
    output:
        store=directory(LAYOUT.experiment_store("{experiment}", "metrics")),
        summary=LAYOUT.path("{experiment}", "summary.md"),
    log:
        LAYOUT.log("metrics_aggregate", "{experiment}"),
    benchmark:
        LAYOUT.benchmark("metrics_aggregate", "{experiment}")
    conda:
        "../envs/cpu.yaml"
    resources:
        **cluster("cpu"),
        mem_mb=memory("eigen_mem_mb"),
        runtime=60,
    params:
        jobs=from_experiment(eigen_jobs),
        eigen_keys=experiment_eigen_keys,
        rho=experiment_key("masks", "rho"),
        metrics=experiment_key("metrics"),
        row_chunk=experiment_key("eigen", "row_chunk"),
        model=experiment_key("model"),
    script:
        "../scripts/metrics_aggregate.py"
