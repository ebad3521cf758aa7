# Degrees of freedom (seed 004, docs/science.md#7-degrees-of-freedom): training in d-dimensional
# affine subspaces of each experiment with dof.enabled, one job per (subspace kind, start step t,
# group of d values, chunk of runs) from hessmask.dof.methods.chunk_grid (dof.dims_per_job d values
# per job, the wildcard d joins them with _), and the quadratic well of seed 004 Fig. 5.


rule dof_trajectory:
    """Replay the experiment's SGD and keep the top principal directions of its steps."""
    input:
        data=prepared_dataset,
        start=checkpoint_at(0),
        final=checkpoint_at("final"),
    output:
        directory(LAYOUT.dof_store("{experiment}", "trajectory")),
    log:
        LAYOUT.log("dof_trajectory", "{experiment}"),
    benchmark:
        LAYOUT.benchmark("dof_trajectory", "{experiment}")
    conda:
        conda_env("train")
    threads: job_threads("train")
    resources:
        **stage_resources("train", "train_mem_mb", "train_runtime"),
    params:
        experiment=training_settings,
        steps=experiment_key("train", "steps"),
        every=dof_key("trajectory_every"),
        components=max_dimension,
    script:
        "../scripts/dof_trajectory.py"


rule dof_chunk:
    """Adam in the subspaces of one (subspace kind, start step t) at each of the job's d values, for
    a chunk of runs."""
    input:
        unpack(dof_chunk_inputs),
    output:
        directory(LAYOUT.dof_chunk("{experiment}", "{subspace}", "{t}", "{d}", "{chunk}")),
    log:
        LAYOUT.log("dof_chunk", "{experiment}", "{subspace}", "t={t}", "d={d}", "chunk={chunk}"),
    benchmark:
        LAYOUT.benchmark("dof_chunk", "{experiment}", "{subspace}", "t={t}", "d={d}", "chunk={chunk}")
    wildcard_constraints:
        subspace=one_of(SUBSPACES),
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
        **stage_resources("dof", "train_mem_mb", "train_runtime"),
    params:
        dof=dof_job_settings,
        runs=dof_job_runs,
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
        directory(LAYOUT.dof_store("{experiment}", "full")),
    log:
        LAYOUT.log("dof_reference", "{experiment}"),
    benchmark:
        LAYOUT.benchmark("dof_reference", "{experiment}")
    conda:
        conda_env("dof")
    threads: job_threads("dof")
    resources:
        **stage_resources("dof", "train_mem_mb", "train_runtime"),
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
        full=LAYOUT.dof_store("{experiment}", "full"),
    output:
        directory(LAYOUT.path("dof", "{experiment}.zarr")),
    log:
        LAYOUT.log("dof_aggregate", "{experiment}"),
    wildcard_constraints:
        experiment=one_of(DOF_EXPERIMENTS),  # never results/dof/quadratic_well.zarr
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
    """Success heatmaps with d*, d* of all subspaces, accuracy vs compression ratio, d* vs start step
    (hessmask.figures.DOF_FIGURES)."""
    input:
        LAYOUT.path("dof", "{experiment}.zarr"),
    output:
        **figure_outputs(
            DOF_FIGURES, "png", "dof", "{experiment}", category="Degrees of freedom", subcategory="{experiment}"
        ),
        **figure_outputs(DOF_FIGURES, "pdf", "dof", "{experiment}"),
    log:
        LAYOUT.log("dof_figures", "{experiment}"),
    wildcard_constraints:
        experiment=one_of(DOF_EXPERIMENTS),  # never results/dof/quadratic_well.zarr
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
        directory(LAYOUT.path("dof", "quadratic_well.zarr")),
    log:
        LAYOUT.log("dof_quadratic"),
    benchmark:
        LAYOUT.benchmark("dof_quadratic")
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
    """Seed 004 Fig. 5 from the quadratic well's store."""
    input:
        LAYOUT.path("dof", "quadratic_well.zarr"),
    output:
        png=report(
            LAYOUT.figure("dof", "quadratic_well.png"),
            category="Degrees of freedom",
            subcategory="Quadratic well",
            caption="../report/dof_quadratic_well.rst",
        ),
        pdf=LAYOUT.figure("dof", "quadratic_well.pdf"),
    log:
        LAYOUT.log("dof_quadratic_figure"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/dof_quadratic_figure.py"
