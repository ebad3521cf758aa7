# Training in segments between checkpoints, curves and parameters at the record steps, and the
# magnitude-mask statistics (seed 000, Figs. 9 and 10).


rule train_segment:
    """Train from the previous checkpoint to step {step} (step 0: the seeded initialization)."""
    input:
        data=prepared_dataset,
        previous=previous_checkpoint,
    output:
        checkpoint=LAYOUT.checkpoint("{experiment}", "{step}"),
        digest=LAYOUT.digest(LAYOUT.checkpoint("{experiment}", "{step}")),
        curve=directory(LAYOUT.segment("{experiment}", "{step}")),
    log:
        LAYOUT.log("train_segment", "{experiment}", "step={step}"),
    benchmark:
        LAYOUT.benchmark("train_segment", "{experiment}", "step={step}")
    wildcard_constraints:
        step=r"\d+",
    priority: 50
    conda:
        conda_env("train")
    threads: job_threads("train")
    resources:
        **stage_resources("train", "train_mem_mb", "train_runtime"),
    params:
        experiment=training_settings,
    script:
        "../scripts/train_segment.py"


rule training_curves:
    """Batch loss at every step and train/test loss and accuracy at the checkpoints."""
    input:
        segment_stores,
    output:
        directory(LAYOUT.experiment_store("{experiment}", "training")),
    log:
        LAYOUT.log("training_curves", "{experiment}"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        experiment=training_settings,
    script:
        "../scripts/training_curves.py"


rule theta_store:
    """theta at every record step, dims (step, param)."""
    input:
        record_checkpoints,
    output:
        directory(LAYOUT.experiment_store("{experiment}", "theta")),
    log:
        LAYOUT.log("theta_store", "{experiment}"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        experiment=training_settings,
    script:
        "../scripts/theta_store.py"


rule mask_statistics:
    """kappa of |theta| per step and rho; IoU of magnitude masks between record steps."""
    input:
        LAYOUT.experiment_store("{experiment}", "theta"),
    output:
        directory(LAYOUT.experiment_store("{experiment}", "masks")),
    log:
        LAYOUT.log("mask_statistics", "{experiment}"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        masks=experiment_key("masks"),
        model=experiment_key("model"),
        classes=from_experiment(experiment_classes),
    script:
        "../scripts/mask_statistics.py"
