# Hessian eigendecompositions per (experiment, record step, split): SEIGH measurement shards (each
# may run on its own GPU), a solve job that merges them, and the exact reference for small D.


rule sketch_shard:
    """Measurements [a, b) of the sketch: t/shards Hessian-vector products."""
    input:
        data=prepared_dataset,
        checkpoint=results("{experiment}", "checkpoints", "step={step}.pt"),
    output:
        temp(directory(results("{experiment}", "sketch", "{split}", "step={step}", "shard={shard}.zarr"))),
    params:
        eigen=eigen_settings,
        samples=lambda wc: experiment(wc)["hessian"][f"{wc.split}_samples"],
        imagenet_root=config["data"]["imagenet_root"],
        experiment=training_settings,
    log:
        results("logs", "sketch_shard", "{experiment}", "{split}", "step={step}", "shard={shard}.log"),
    benchmark:
        results("benchmarks", "rules", "sketch_shard", "{experiment}", "{split}", "step={step}", "shard={shard}.tsv")
    wildcard_constraints:
        split="train|test",
        step=r"\d+",
        shard=r"\d+",
    threads: lambda wc: experiment(wc)["eigen"]["threads"]
    priority: 40
    resources:
        gpu=eigen_gpu,
        mem_mb=lambda wc: experiment(wc)["resources"]["eigen_mem_mb"],
        runtime=lambda wc: experiment(wc)["resources"]["eigen_runtime"],
        slurm_partition=lambda wc: site_partition(eigen_gpu(wc) > 0),
        **SITE,
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/eigen.py"


rule sketch_solve:
    """Merge the shards and recover the top-s eigenpairs (plus residuals and a-posteriori error)."""
    input:
        data=prepared_dataset,
        checkpoint=results("{experiment}", "checkpoints", "step={step}.pt"),
        shards=lambda wc: expand(
            results(wc.experiment, "sketch", wc.split, f"step={wc.step}", "shard={shard}.zarr"),
            shard=range(experiment(wc)["eigen"]["sketch"]["shards"]),
        ),
    output:
        directory(results("{experiment}", "eigen", "{split}", "step={step}.zarr")),
    params:
        eigen=eigen_settings,
        samples=lambda wc: experiment(wc)["hessian"][f"{wc.split}_samples"],
        imagenet_root=config["data"]["imagenet_root"],
        experiment=training_settings,
    log:
        results("logs", "sketch_solve", "{experiment}", "{split}", "step={step}.log"),
    benchmark:
        results("benchmarks", "rules", "sketch_solve", "{experiment}", "{split}", "step={step}.tsv")
    wildcard_constraints:
        split="train|test",
        step=r"\d+",
    threads: lambda wc: experiment(wc)["eigen"]["threads"]
    priority: 40
    resources:
        gpu=eigen_gpu,
        mem_mb=lambda wc: experiment(wc)["resources"]["eigen_mem_mb"],
        runtime=lambda wc: experiment(wc)["resources"]["eigen_runtime"],
        slurm_partition=lambda wc: site_partition(eigen_gpu(wc) > 0),
        **SITE,
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/eigen.py"


rule exact_solve:
    """Dense float64 eigendecomposition (D products); the reference every method is compared to."""
    input:
        data=prepared_dataset,
        checkpoint=results("{experiment}", "checkpoints", "step={step}.pt"),
    output:
        directory(results("{experiment}", "eigen_exact", "{split}", "step={step}.zarr")),
    params:
        eigen=exact_settings,
        samples=lambda wc: experiment(wc)["hessian"][f"{wc.split}_samples"],
        imagenet_root=config["data"]["imagenet_root"],
        experiment=training_settings,
        k=lambda wc: exact_k(experiment(wc)),
    log:
        results("logs", "exact_solve", "{experiment}", "{split}", "step={step}.log"),
    benchmark:
        results("benchmarks", "rules", "exact_solve", "{experiment}", "{split}", "step={step}.tsv")
    wildcard_constraints:
        split="train|test",
        step=r"\d+",
    threads: lambda wc: experiment(wc)["eigen"]["threads"]
    priority: 40
    resources:
        gpu=eigen_gpu,
        mem_mb=lambda wc: experiment(wc)["resources"]["eigen_mem_mb"],
        runtime=lambda wc: experiment(wc)["resources"]["eigen_runtime"],
        slurm_partition=lambda wc: site_partition(eigen_gpu(wc) > 0),
        **SITE,
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/eigen.py"
