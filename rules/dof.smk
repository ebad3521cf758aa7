# Degrees of freedom (seed 004, docs/science.md#7-degrees-of-freedom): training in d-dimensional
# affine subspaces of each experiment with dof.enabled. The start-step experiment: one job per
# (start step t, chunk of runs) from hessmask.dof.methods.start_grid, each run from its own w_t
# (run 0: the experiment's checkpoints; the others: dof_run_checkpoints), its Hessian solved in the
# job; the lottery subspaces: one job each over every run; the full-space reference; and the
# quadratic well of seed 004 Fig. 5.


rule dof_run_checkpoints:
    """Each run >= 1 trains from its own w_0 with the experiment's SGD: its checkpoints at step 0
    and every start step."""
    input:
        data=prepared_dataset,
    output:
        directory(LAYOUT.dof_runs("{experiment}")),
    log:
        LAYOUT.log("dof_run_checkpoints", "{experiment}"),
    benchmark:
        LAYOUT.benchmark("dof_run_checkpoints", "{experiment}")
    conda:
        conda_env("train")
    threads: job_threads("train")
    resources:
        **stage_resources("train", "train_mem_mb", "train_runtime"),
    params:
        dof=dof_key(only=("seed",)),
        runs=from_experiment(own_runs, "dof"),
        steps=from_experiment(run_steps, "dof"),
        experiment=experiment_key(only=("model", "dataset", "synthetic_samples")),
        train=train_settings,
    script:
        "../scripts/dof_run_checkpoints.py"


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


rule dof_start:
    """One (start step t, chunk of runs): each run's Hessian at its w_t and its paired trainings in
    burn_in, hessian_topd and mask_topd at every d, then the bisection of d*."""
    input:
        unpack(dof_start_inputs),
    output:
        directory(LAYOUT.dof_start("{experiment}", "{t}", "{chunk}")),
    log:
        LAYOUT.log("dof_start", "{experiment}", "t={t}", "chunk={chunk}"),
    benchmark:
        LAYOUT.benchmark("dof_start", "{experiment}", "t={t}", "chunk={chunk}")
    wildcard_constraints:
        t=r"\d+",
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
        dof=from_experiment(start_job_settings, "dof"),
        subspaces=dof_start_subspaces,
        runs=dof_start_runs,
        experiment=experiment_key(only=("model", "dataset", "synthetic_samples")),
        train=train_settings,
        masks=experiment_key("masks", only=("ties", "seed", "exclude")),
        samples=experiment_key("hessian"),
        operator=experiment_key("eigen", only=("curvature", "dtype", "block_size", "data_chunk")),
    script:
        "../scripts/dof_start.py"


rule dof_lottery:
    """Every run of one lottery subspace at every d, from the experiment's own training."""
    input:
        unpack(dof_lottery_inputs),
    output:
        directory(LAYOUT.dof_lottery("{experiment}", "{subspace}")),
    log:
        LAYOUT.log("dof_lottery", "{experiment}", "{subspace}"),
    benchmark:
        LAYOUT.benchmark("dof_lottery", "{experiment}", "{subspace}")
    wildcard_constraints:
        subspace=one_of(LOTTERY_SUBSPACES),
    priority: 20
    conda:
        conda_env("dof")
    threads: job_threads("dof")
    resources:
        **stage_resources("dof", "train_mem_mb", "train_runtime"),
    params:
        dof=dof_lottery_settings,
        experiment=experiment_key(only=("model", "dataset", "synthetic_samples")),
        train=train_settings,
        masks=experiment_key("masks", only=("ties", "seed", "exclude")),
    script:
        "../scripts/dof_lottery.py"


rule dof_reference:
    """The full-space reference: the same Adam on all parameters from each run's w_0, per learning rate."""
    input:
        data=prepared_dataset,
        start=checkpoint_at(0),
        runs=LAYOUT.dof_runs("{experiment}"),
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
        dof=dof_key(only=("runs", "steps", "batch_size", "full_lr", "seed", "device", "eval_every")),
        experiment=experiment_key(only=("model", "dataset", "synthetic_samples")),
        train=train_settings,
    script:
        "../scripts/dof_reference.py"


rule dof_aggregate:
    """results/dof/<experiment>.zarr: the main results (every subspace at its main step), success
    probabilities with intervals, d*, and the start-step experiment (per-run d* brackets, paired comparisons)."""
    input:
        start=dof_start_paths,
        lottery=dof_lottery_paths,
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
        dof=dof_key(only=("delta", "sweep_levels", "success", "start_step", "subspaces", "runs")),
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
