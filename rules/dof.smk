# Degrees of freedom (seed 004, docs/science.md#7-degrees-of-freedom): training in d-dimensional
# affine subspaces of each experiment with dof.enabled, one job per (method, d, chunk of runs),
# and the quadratic well of seed 004 Fig. 5.


rule dof_trajectory:
    """Replay the experiment's SGD and keep the top principal directions of its steps."""
    input:
        data=prepared_dataset,
        start=lambda wc: results(wc.experiment, "checkpoints", "step=0.pt"),
        final=lambda wc: results(wc.experiment, "checkpoints", f"step={experiment(wc)['train']['steps']}.pt"),
    output:
        directory(results("{experiment}", "dof", "trajectory.zarr")),
    log:
        results("logs", "dof_trajectory", "{experiment}.log"),
    benchmark:
        results("benchmarks", "rules", "dof_trajectory", "{experiment}.tsv")
    conda:
        "../envs/cpu.yaml"
    threads: job_threads("train")
    resources:
        **cluster("train"),
        gpu=train_gpu,
        mem_mb=memory("train_mem_mb"),
        runtime=experiment_key("resources", "train_runtime"),
    params:
        experiment=training_settings,
        steps=lambda wc: experiment(wc)["train"]["steps"],
        every=lambda wc: dof(wc)["trajectory_every"],
        components=lambda wc: max(dof(wc)["dims"]),
    script:
        "../scripts/dof_trajectory.py"


rule dof_chunk:
    """Adam in the subspace of one (method, d) for a chunk of runs."""
    input:
        unpack(dof_chunk_inputs),
    output:
        directory(results("{experiment}", "dof", "chunks", "{method}", "d={d}", "chunk={chunk}.zarr")),
    log:
        results("logs", "dof_chunk", "{experiment}", "{method}", "d={d}", "chunk={chunk}.log"),
    benchmark:
        results("benchmarks", "rules", "dof_chunk", "{experiment}", "{method}", "d={d}", "chunk={chunk}.tsv")
    wildcard_constraints:
        method="|".join(["random_affine", "burn_in", "lottery_subspace", "lottery_ticket", "hessian_topd", "mask_topd"]),
        d=r"\d+",
        chunk=r"\d+",
    conda:
        conda_env("dof")
    threads: job_threads("dof")
    resources:
        **cluster("dof"),
        gpu=dof_resources,
        mem_mb=memory("train_mem_mb"),
        runtime=experiment_key("resources", "train_runtime"),
    params:
        dof=dof_chunk_settings,
        runs=dof_runs,
        model=lambda wc: experiment(wc)["model"],
        data=lambda wc: {k: experiment(wc)[k] for k in ("dataset", "synthetic_samples")},
        eval_batch_size=lambda wc: experiment(wc)["train"]["eval_batch_size"],
        seed=lambda wc: experiment(wc)["train"]["seed"],
    script:
        "../scripts/dof_chunk.py"


rule dof_reference:
    """The full-space reference: the same Adam on all parameters from w_0, one per run."""
    input:
        data=prepared_dataset,
        start=lambda wc: results(wc.experiment, "checkpoints", "step=0.pt"),
    output:
        directory(results("{experiment}", "dof", "full.zarr")),
    log:
        results("logs", "dof_reference", "{experiment}.log"),
    benchmark:
        results("benchmarks", "rules", "dof_reference", "{experiment}.tsv")
    conda:
        "../envs/cpu.yaml"
    threads: job_threads("dof")
    resources:
        **cluster("dof"),
        gpu=dof_resources,
        mem_mb=memory("train_mem_mb"),
        runtime=experiment_key("resources", "train_runtime"),
    params:
        dof=lambda wc: {k: dof(wc)[k] for k in ("runs", "steps", "batch_size", "full_lr", "seed", "device")},
        model=lambda wc: experiment(wc)["model"],
        data=lambda wc: {k: experiment(wc)[k] for k in ("dataset", "synthetic_samples")},
        eval_batch_size=lambda wc: experiment(wc)["train"]["eval_batch_size"],
        seed=lambda wc: experiment(wc)["train"]["seed"],
    script:
        "../scripts/dof_chunk.py"


rule dof_aggregate:
    """results/dof/<experiment>.zarr: every run on one grid, success probability and d*."""
    input:
        chunks=lambda wc: [
            results(wc.experiment, "dof", "chunks", m, f"d={d}", f"chunk={c}.zarr")
            for m, d, c in dof_chunks(experiment(wc))
        ],
        full=results("{experiment}", "dof", "full.zarr"),
    output:
        directory(results("dof", "{experiment}.zarr")),
    log:
        results("logs", "dof_aggregate", "{experiment}.log"),
    wildcard_constraints:
        experiment="|".join(DOF_EXPERIMENTS) or "(?!)",  # never results/dof/quadratic_well.zarr
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        levels=lambda wc: dof_levels(dof(wc)),
        delta=lambda wc: dof(wc)["delta"],
        model=lambda wc: experiment(wc)["model"],
    script:
        "../scripts/dof_aggregate.py"


rule dof_figures:
    """Success heatmaps with d*, d* of all methods, accuracy vs compression ratio."""
    input:
        results("dof", "{experiment}.zarr"),
    output:
        **{
            f"{name}_png": report(
                results("figures", "dof", "{experiment}", f"{name}.png"),
                category="Degrees of freedom",
                subcategory="{experiment}",
                caption=f"../report/{caption}",
            )
            for name, (label, caption) in DOF_FIGURES.items()
        },
        **{f"{name}_pdf": results("figures", "dof", "{experiment}", f"{name}.pdf") for name in DOF_FIGURES},
    log:
        results("logs", "dof_figures", "{experiment}.log"),
    wildcard_constraints:
        experiment="|".join(DOF_EXPERIMENTS) or "(?!)",  # never results/dof/quadratic_well.zarr
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/dof_figures.py"


rule dof_quadratic:
    """The quadratic well: exact minima over random affine subspaces, the Eq. 3.4 bound."""
    output:
        directory(results("dof", "quadratic_well.zarr")),
    log:
        results("logs", "dof_quadratic.log"),
    benchmark:
        results("benchmarks", "rules", "dof_quadratic.tsv")
    conda:
        "../envs/cpu.yaml"
    resources:
        **cluster(),
        mem_mb=4000,
        runtime=30,
    params:
        quad=config["dof_quadratic"],
    script:
        "../scripts/dof_quadratic.py"


rule dof_quadratic_figure:
    input:
        results("dof", "quadratic_well.zarr"),
    output:
        png=report(
            results("figures", "dof", "quadratic_well.png"),
            category="Degrees of freedom",
            subcategory="Quadratic well",
            caption="../report/dof_quadratic_well.rst",
        ),
        pdf=results("figures", "dof", "quadratic_well.pdf"),
    log:
        results("logs", "dof_quadratic_figure.log"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/dof_figures.py"
