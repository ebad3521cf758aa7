# Hessian eigendecompositions per (experiment, method, split, record step). One rule, eigen_store,
# writes every method's store results/<experiment>/eigen/<method>/<split>/step=<step>.zarr with the
# method's writer from the registry (hessmask.eigen.methods): in this one job, or from the part
# stores of a sharded method. The part rules are eigen_store with other inputs and outputs (one
# template, one script): SEIGH's measurement shards (eigen_seigh_shard) and block Krylov's passes,
# the basis Q_p (eigen_krylov_basis) and the products H Q_p in shards (eigen_krylov_image). A new
# method solved in one job needs no rule: the registry and its schema block are enough.


rule eigen_store:
    """The eigen store of one (method, split, step), by its method's registry writer: eigenvalues,
    float32 eigenvectors in row chunks, residuals, and the method's diagnostics."""
    input:
        unpack(eigen_store_inputs),
    output:
        store=directory(LAYOUT.eigen_store("{experiment}", "{method}", "{split}", "{step}")),
        timings=LAYOUT.eigen_timings("{experiment}", "{method}", "{split}", "{step}"),
    log:
        LAYOUT.log("eigen_store", "{experiment}", "{method}", "{split}", "step={step}"),
    benchmark:
        LAYOUT.benchmark("eigen_store", "{experiment}", "{method}", "{split}", "step={step}")
    wildcard_constraints:
        method=one_of(EIGEN_METHODS),
        split="train|test",
        step=r"\d+",
    # the methods' own priorities: the long exact solves start before the other eigen jobs
    priority: eigen_priority
    conda:
        conda_env("eigen")
    threads: job_threads("eigen")
    resources:
        **stage_resources("eigen", "eigen_mem_mb", "eigen_runtime"),
    params:
        spec=eigen_spec,
        samples=hessian_samples,
        experiment=training_settings,
    script:
        "../scripts/eigen.py"


use rule eigen_store as eigen_seigh_shard with:
    input:
        data=prepared_dataset,
        checkpoint=step_checkpoint,
    output:
        temp(directory(LAYOUT.eigen_part("{experiment}", "{method}", "{split}", "{step}", "shard={shard}.zarr"))),
    log:
        LAYOUT.log("eigen_seigh_shard", "{experiment}", "{method}", "{split}", "step={step}", "shard={shard}"),
    benchmark:
        LAYOUT.benchmark("eigen_seigh_shard", "{experiment}", "{method}", "{split}", "step={step}", "shard={shard}")
    wildcard_constraints:
        method="seigh",
        split="train|test",
        step=r"\d+",
        shard=r"\d+",
    priority: 40


use rule eigen_store as eigen_krylov_basis with:
    input:
        unpack(krylov_basis_inputs),
    output:
        temp(directory(LAYOUT.eigen_part("{experiment}", "{method}", "{split}", "{step}", "basis_pass={p}.zarr"))),
    log:
        LAYOUT.log("eigen_krylov_basis", "{experiment}", "{method}", "{split}", "step={step}", "pass={p}"),
    benchmark:
        LAYOUT.benchmark("eigen_krylov_basis", "{experiment}", "{method}", "{split}", "step={step}", "pass={p}")
    wildcard_constraints:
        method="block_krylov",
        split="train|test",
        step=r"\d+",
        p=r"\d+",
    priority: 40


use rule eigen_store as eigen_krylov_image with:
    input:
        unpack(krylov_image_inputs),
    output:
        temp(
            directory(
                LAYOUT.eigen_part(
                    "{experiment}", "{method}", "{split}", "{step}", "image_pass={p}", "shard={shard}.zarr"
                )
            )
        ),
    log:
        LAYOUT.log(
            "eigen_krylov_image", "{experiment}", "{method}", "{split}", "step={step}", "pass={p}", "shard={shard}"
        ),
    benchmark:
        LAYOUT.benchmark(
            "eigen_krylov_image", "{experiment}", "{method}", "{split}", "step={step}", "pass={p}", "shard={shard}"
        )
    wildcard_constraints:
        method="block_krylov",
        split="train|test",
        step=r"\d+",
        p=r"\d+",
        shard=r"\d+",
    priority: 40
