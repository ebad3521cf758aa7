# Training in segments between checkpoints, curves and parameters at the record steps, and the
# magnitude-mask statistics (seed 000, Figs. 9 and 10).


rule train_segment:
    """Train from the previous checkpoint to step {step} (step 0: the seeded initialization)."""
    input:
        data=prepared_dataset,
        previous=previous_checkpoint,
    output:
        checkpoint=results("{experiment}", "checkpoints", "step={step}.pt"),
        curve=directory(results("{experiment}", "train", "segment_step={step}.zarr")),
    log:
        results("logs", "train_segment", "{experiment}", "step={step}.log"),
    benchmark:
        results("benchmarks", "rules", "train_segment", "{experiment}", "step={step}.tsv")
    wildcard_constraints:
        step=r"\d+",
    priority: 50
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
    script:
        "../scripts/train_segment.py"


rule training_curves:
    """Batch loss at every step and train/test loss and accuracy at the checkpoints."""
    input:
        lambda wc: [results(wc.experiment, "train", f"segment_step={s}.zarr") for s in checkpoint_steps(experiment(wc))],
    output:
        directory(results("{experiment}", "training.zarr")),
    log:
        results("logs", "training_curves", "{experiment}.log"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        experiment=training_settings,
    script:
        "../scripts/training_curves.py"


rule params_store:
    """theta at every record step, dims (step, param)."""
    input:
        lambda wc: [results(wc.experiment, "checkpoints", f"step={s}.pt") for s in experiment(wc)["record_steps"]],
    output:
        directory(results("{experiment}", "params.zarr")),
    log:
        results("logs", "params_store", "{experiment}.log"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        experiment=training_settings,
    script:
        "../scripts/params_store.py"


rule mask_statistics:
    """kappa of |theta| per step and rho; IoU of magnitude masks between record steps."""
    input:
        results("{experiment}", "params.zarr"),
    output:
        directory(results("{experiment}", "masks.zarr")),
    log:
        results("logs", "mask_statistics", "{experiment}.log"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        masks=experiment_key("masks"),
        model=experiment_key("model"),
        classes=from_experiment(experiment_classes),
    script:
        "../scripts/mask_statistics.py"
