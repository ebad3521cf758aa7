# Hessian eigendecompositions per (experiment, record step, split): SEIGH measurement shards
# (eigen_measure, each may run on its own GPU), the streaming solve that merges them
# (eigen_solve), or both in one job where sketch.shards = 1 (eigen_sketch), and the dense exact
# reference for small D (eigen_exact). Stores:
# results/<experiment>/eigen/<method>/<split>/step=<step>.zarr, dims (param, eigenpair). Block Krylov
# (eigen.block_krylov) runs in passes: eigen_krylov_basis (Q_p), eigen_krylov_measure (H Q_p, in shards),
# then eigen_krylov_solve (Rayleigh-Ritz over all passes). With block_krylov.shards = 1 the whole solve
# is one job, eigen_krylov (the same library calls and store, one process start-up instead of 2p + 1).


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
        experiment=SEIGH_SHARDED,
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


rule eigen_sketch:
    """SEIGH in one job (experiments with sketch.shards = 1): the one measurement shard as
    eigen_measure writes it (in a temporary store), then eigen_solve's streaming recovery."""
    input:
        data=prepared_dataset,
        checkpoint=results("{experiment}", "checkpoints", "step={step}.pt"),
    output:
        store=directory(results("{experiment}", "eigen", "seigh", "{split}", "step={step}.zarr")),
        timings=results("benchmarks", "eigen_phases", "{experiment}", "{split}", "step={step}.json"),
    log:
        results("logs", "eigen_sketch", "{experiment}", "{split}", "step={step}.log"),
    benchmark:
        results("benchmarks", "rules", "eigen_sketch", "{experiment}", "{split}", "step={step}.tsv")
    wildcard_constraints:
        experiment=SEIGH_ONE_JOB,
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
        "../scripts/eigen_sketch.py"


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
        experiment=SEIGH_SHARDED,
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
    # the longest jobs of the default study: started before the other eigen jobs of their step
    priority: 45
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


rule eigen_krylov:
    """Block Krylov in one job (experiments with block_krylov.shards = 1): every pass's Q_p and
    H Q_p as eigen_krylov_basis and eigen_krylov_measure compute them (in a scratch folder), then
    eigen_krylov_solve's Rayleigh-Ritz."""
    input:
        data=prepared_dataset,
        checkpoint=results("{experiment}", "checkpoints", "step={step}.pt"),
    output:
        store=directory(results("{experiment}", "eigen", "block_krylov", "{split}", "step={step}.zarr")),
        timings=results("benchmarks", "eigen_phases", "{experiment}", "{split}", "block_krylov_step={step}.json"),
    log:
        results("logs", "eigen_krylov", "{experiment}", "{split}", "step={step}.log"),
    benchmark:
        results("benchmarks", "rules", "eigen_krylov", "{experiment}", "{split}", "step={step}.tsv")
    wildcard_constraints:
        experiment=KRYLOV_ONE_JOB,
        split="train|test",
        step=r"\d+",
    priority: 40
    conda:
        conda_env("eigen")
    threads: job_threads("eigen")
    resources:
        **EIGEN_JOB["resources"],
    params:
        **{**EIGEN_JOB["params"], "eigen": krylov_settings},
    script:
        "../scripts/eigen_krylov.py"


rule eigen_krylov_basis:
    """Q_p of a block Krylov pass: the Gaussian start block (p = 0), or the products of pass p - 1
    orthogonalized against Q_0..Q_{p-1}, streaming over row chunks."""
    input:
        unpack(krylov_basis_inputs),
    output:
        temp(
            directory(
                results(
                    "{experiment}", "eigen", "block_krylov_passes", "{split}", "step={step}", "basis_pass={p}.zarr"
                )
            )
        ),
    log:
        results("logs", "eigen_krylov_basis", "{experiment}", "{split}", "step={step}", "pass={p}.log"),
    benchmark:
        results("benchmarks", "rules", "eigen_krylov_basis", "{experiment}", "{split}", "step={step}", "pass={p}.tsv")
    wildcard_constraints:
        experiment=KRYLOV_SHARDED,
        split="train|test",
        step=r"\d+",
        p=r"\d+",
    priority: 40
    conda:
        conda_env("eigen")
    threads: job_threads("eigen")
    resources:
        **EIGEN_JOB["resources"],
    params:
        eigen=krylov_settings,
    script:
        "../scripts/eigen_krylov_basis.py"


rule eigen_krylov_measure:
    """Products H Q_p of one shard of a pass's columns (on eigen.block_size boundaries)."""
    input:
        data=prepared_dataset,
        checkpoint=results("{experiment}", "checkpoints", "step={step}.pt"),
        basis=results("{experiment}", "eigen", "block_krylov_passes", "{split}", "step={step}", "basis_pass={p}.zarr"),
    output:
        temp(
            directory(
                results(
                    "{experiment}",
                    "eigen",
                    "block_krylov_passes",
                    "{split}",
                    "step={step}",
                    "image_pass={p}",
                    "shard={shard}.zarr",
                )
            )
        ),
    log:
        results(
            "logs", "eigen_krylov_measure", "{experiment}", "{split}", "step={step}", "pass={p}", "shard={shard}.log"
        ),
    benchmark:
        results(
            "benchmarks",
            "rules",
            "eigen_krylov_measure",
            "{experiment}",
            "{split}",
            "step={step}",
            "pass={p}",
            "shard={shard}.tsv",
        )
    wildcard_constraints:
        experiment=KRYLOV_SHARDED,
        split="train|test",
        step=r"\d+",
        p=r"\d+",
        shard=r"\d+",
    priority: 40
    conda:
        conda_env("eigen")
    threads: job_threads("eigen")
    resources:
        **EIGEN_JOB["resources"],
    params:
        **{**EIGEN_JOB["params"], "eigen": krylov_settings},
    script:
        "../scripts/eigen_krylov_measure.py"


rule eigen_krylov_solve:
    """Rayleigh-Ritz over every pass: the block Krylov eigen store (plus residuals and the
    a-posteriori error)."""
    input:
        data=prepared_dataset,
        checkpoint=results("{experiment}", "checkpoints", "step={step}.pt"),
        bases=krylov_bases,
        images=krylov_images,
    output:
        store=directory(results("{experiment}", "eigen", "block_krylov", "{split}", "step={step}.zarr")),
        timings=results("benchmarks", "eigen_phases", "{experiment}", "{split}", "block_krylov_step={step}.json"),
    log:
        results("logs", "eigen_krylov_solve", "{experiment}", "{split}", "step={step}.log"),
    benchmark:
        results("benchmarks", "rules", "eigen_krylov_solve", "{experiment}", "{split}", "step={step}.tsv")
    wildcard_constraints:
        experiment=KRYLOV_SHARDED,
        split="train|test",
        step=r"\d+",
    priority: 40
    conda:
        conda_env("eigen")
    threads: job_threads("eigen")
    resources:
        **EIGEN_JOB["resources"],
    params:
        **{**EIGEN_JOB["params"], "eigen": krylov_settings},
    script:
        "../scripts/eigen_krylov_solve.py"
