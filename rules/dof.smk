# Degrees of freedom (seed 004, docs/science.md#7-degrees-of-freedom): training in d-dimensional
# affine subspaces of each experiment with dof.enabled, one job per (method, start step t, group of
# d values, chunk of runs) from hessmask.dof_methods.chunk_grid (dof.dims_per_job d values per job, the
# wildcard d joins them with _), and the quadratic well of seed 004 Fig. 5.


rule dof_trajectory:
    """Replay the experiment's SGD and keep the top principal directions of its steps."""
    input:
        data=prepared_dataset,
        start=checkpoint_at(0),
        final=checkpoint_at("final"),
    output:
        directory(results("{experiment}", "dof", "trajectory.zarr")),
    log:
        results("logs", "dof_trajectory", "{experiment}.log"),
    benchmark:
        results("benchmarks", "rules", "dof_trajectory", "{experiment}.tsv")
    conda:
        conda_env("train")
    threads: job_threads("train")
    resources:
        **cluster("train"),
        gpu=train_gpu,
        mem_mb=memory("train_mem_mb"),
        runtime=experiment_key("resources", "train_runtime"),
    params:
        experiment=training_settings,
        steps=experiment_key("train", "steps"),
        every=dof_key("trajectory_every"),
        components=from_experiment(max, "dof", "dims"),
    script:
        "../scripts/dof_trajectory.py"


rule dof_chunk:
    """Adam in the subspaces of one (method, start step t) at each of the job's d values, for a
    chunk of runs."""
    input:
        unpack(dof_chunk_inputs),
    output:
        directory(results("{experiment}", "dof", "chunks", "{method}", "t={t}", "d={d}", "chunk={chunk}.zarr")),
    log:
        results("logs", "dof_chunk", "{experiment}", "{method}", "t={t}", "d={d}", "chunk={chunk}.log"),
    benchmark:
        results("benchmarks", "rules", "dof_chunk", "{experiment}", "{method}", "t={t}", "d={d}", "chunk={chunk}.tsv")
    wildcard_constraints:
        method="|".join(DOF_METHODS),
        t=r"\d+",
        d=r"\d+(_\d+)*",
        chunk=r"\d+",
    # after training, eigen and synthetic jobs, before the short per-step metrics and aggregates:
    # long jobs first, so that short ones fill the cores at the end of the DAG
    priority: 20
    conda:
        conda_env("dof")
    threads: job_threads("dof")
    resources:
        **cluster("dof"),
        gpu=dof_resources,
        mem_mb=memory("train_mem_mb"),
        runtime=experiment_key("resources", "train_runtime"),
    params:
        dof=lambda wc: job_settings(wc.method, dof(wc)),
        runs=lambda wc: chunk_runs(dof(wc), int(wc.chunk)),
        experiment=experiment_key(only=("model", "dataset", "synthetic_samples")),
        train=train_settings,
    script:
        "../scripts/dof_chunk.py"


rule dof_reference:
    """The full-space reference: the same Adam on all parameters from w_0, per run and learning rate."""
    input:
        data=prepared_dataset,
        start=checkpoint_at(0),
    output:
        directory(results("{experiment}", "dof", "full.zarr")),
    log:
        results("logs", "dof_reference", "{experiment}.log"),
    benchmark:
        results("benchmarks", "rules", "dof_reference", "{experiment}.tsv")
    conda:
        conda_env("dof")
    threads: job_threads("dof")
    resources:
        **cluster("dof"),
        gpu=dof_resources,
        mem_mb=memory("train_mem_mb"),
        runtime=experiment_key("resources", "train_runtime"),
    params:
        dof=dof_key(only=("runs", "steps", "batch_size", "full_lr", "seed", "device", "init")),
        experiment=experiment_key(only=("model", "dataset", "synthetic_samples")),
        train=train_settings,
    script:
        "../scripts/dof_reference.py"


rule dof_aggregate:
    """results/dof/<experiment>.zarr: every run on one grid, success probability, d*, the start-step sweep."""
    input:
        chunks=dof_chunk_paths,
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
        levels=from_experiment(dof_levels, "dof"),
        delta=dof_key("delta"),
        sweep_levels=dof_key("sweep_levels"),
        main_steps=from_experiment(main_offset_steps, "dof"),
        model=experiment_key("model"),
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
    # figures are drawn in this many forked processes (hessmask.plots.save_figures)
    threads: 2
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
        "../scripts/dof_quadratic_figure.py"
