# Hessian eigendecompositions per (experiment, record step, split): SEIGH measurement shards
# (eigen_measure, each may run on its own GPU), the streaming solve that merges them
# (eigen_solve), and the dense exact reference for small D (eigen_exact). Stores:
# results/<experiment>/eigen/<method>/<split>/step=<step>.zarr, dims (param, eigenpair).


EIGEN_JOB = dict(
    params=dict(
        eigen=sketch_settings,
        samples=lambda wc: experiment(wc)["hessian"][f"{wc.split}_samples"],
        experiment=training_settings,
    ),
    resources=dict(
        gpu=eigen_gpu,
        mem_mb=memory("eigen_mem_mb"),
        runtime=experiment_key("resources", "eigen_runtime"),
        **cluster("eigen"),
    ),
)


rule eigen_measure:
    """Measurements [a, b) of the sketch: t/shards Hessian-vector products, outer columns
    streamed into row chunks."""
    input:
        data=prepared_dataset,
        checkpoint=results("{experiment}", "checkpoints", "step={step}.pt"),
    output:
        temp(
            directory(results("{experiment}", "eigen", "seigh_shards", "{split}", "step={step}", "shard={shard}.zarr"))
        ),
    log:
        results("logs", "eigen_measure", "{experiment}", "{split}", "step={step}", "shard={shard}.log"),
    benchmark:
        results("benchmarks", "rules", "eigen_measure", "{experiment}", "{split}", "step={step}", "shard={shard}.tsv")
    wildcard_constraints:
        split="train|test",
        step=r"\d+",
        shard=r"\d+",
    priority: 40
    conda:
        conda_env("eigen")
    threads: job_threads("eigen")
    resources:
        **EIGEN_JOB["resources"],
    params:
        **EIGEN_JOB["params"],
    script:
        "../scripts/eigen_measure.py"


rule eigen_solve:
    """Merge the shards and recover the top-s eigenpairs, streaming over row chunks (plus
    residuals and the a-posteriori error)."""
    input:
        data=prepared_dataset,
        checkpoint=results("{experiment}", "checkpoints", "step={step}.pt"),
        shards=shard_stores,
    output:
        store=directory(results("{experiment}", "eigen", "seigh", "{split}", "step={step}.zarr")),
        timings=results("benchmarks", "eigen_phases", "{experiment}", "{split}", "step={step}.json"),
    log:
        results("logs", "eigen_solve", "{experiment}", "{split}", "step={step}.log"),
    benchmark:
        results("benchmarks", "rules", "eigen_solve", "{experiment}", "{split}", "step={step}.tsv")
    wildcard_constraints:
        split="train|test",
        step=r"\d+",
    priority: 40
    conda:
        conda_env("eigen")
    threads: job_threads("eigen")
    resources:
        **EIGEN_JOB["resources"],
    params:
        **EIGEN_JOB["params"],
    script:
        "../scripts/eigen_solve.py"


rule eigen_exact:
    """Dense float64 eigendecomposition (D products); the reference every method is compared to."""
    input:
        data=prepared_dataset,
        checkpoint=results("{experiment}", "checkpoints", "step={step}.pt"),
    output:
        directory(results("{experiment}", "eigen", "exact", "{split}", "step={step}.zarr")),
    log:
        results("logs", "eigen_exact", "{experiment}", "{split}", "step={step}.log"),
    benchmark:
        results("benchmarks", "rules", "eigen_exact", "{experiment}", "{split}", "step={step}.tsv")
    wildcard_constraints:
        split="train|test",
        step=r"\d+",
    priority: 40
    conda:
        conda_env("eigen")
    threads: job_threads("eigen")
    resources:
        **EIGEN_JOB["resources"],
    params:
        **{**EIGEN_JOB["params"], "eigen": exact_settings},
        k=from_experiment(exact_k),
    script:
        "../scripts/eigen_exact.py"
