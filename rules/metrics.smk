# Mask-vs-eigenspace metrics per (experiment, step, split), the per-experiment metrics.zarr and the
# acceptance summary.


rule step_metrics:
    """Overlap for every k, random-mask baselines, the seven metrics at each rho, spectrum stats."""
    input:
        checkpoint=results("{experiment}", "checkpoints", "step={step}.pt"),
        eigen=eigen_stores_of_step,
    output:
        directory(results("{experiment}", "metrics", "{split}", "step={step}.zarr")),
    params:
        methods=lambda wc: eigen_methods(experiment(wc), wc.step),
        rho=lambda wc: experiment(wc)["masks"]["rho"],
        metrics=lambda wc: experiment(wc)["metrics"],
    log:
        results("logs", "step_metrics", "{experiment}", "{split}", "step={step}.log"),
    wildcard_constraints:
        split="train|test",
        step=r"\d+",
    resources:
        mem_mb=lambda wc: experiment(wc)["resources"]["eigen_mem_mb"],
        runtime=30,
        slurm_partition=site_partition(),
        **SITE,
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/step_metrics.py"


rule metrics_aggregate:
    """metrics.zarr: per-step metrics stacked over (split, step), eigenspace overlaps between steps,
    and summary.md comparing exact and sketched overlap."""
    input:
        metrics=lambda wc: [results(wc.experiment, "metrics", split, f"step={step}.zarr")
                            for split, step in eigen_jobs(experiment(wc))],
        eigen=lambda wc: [eigen_store(wc.experiment, method, split, step)
                          for split, step in eigen_jobs(experiment(wc))
                          for method in eigen_methods(experiment(wc), step)],
    output:
        store=directory(results("{experiment}", "metrics.zarr")),
        summary=results("{experiment}", "summary.md"),
    params:
        jobs=lambda wc: eigen_jobs(experiment(wc)),
        methods=lambda wc: {f"{split}/{step}": eigen_methods(experiment(wc), step)
                            for split, step in eigen_jobs(experiment(wc))},
        rho=lambda wc: experiment(wc)["masks"]["rho"],
        model=lambda wc: experiment(wc)["model"],
    log:
        results("logs", "metrics_aggregate", "{experiment}.log"),
    resources:
        mem_mb=lambda wc: experiment(wc)["resources"]["eigen_mem_mb"],
        runtime=60,
        slurm_partition=site_partition(),
        **SITE,
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/metrics_aggregate.py"
