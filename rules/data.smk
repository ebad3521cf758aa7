# Datasets: download (verified, atomic, optionally from a mirror) and prepare model-ready arrays.


rule prepare_dataset:
    """Download (if needed) and prepare one dataset as data/<dataset>.npz."""
    output:
        str(Path(DATA_DIR, "{dataset}.npz")),
    params:
        data=config["data"],
    log:
        results("logs", "prepare_dataset", "{dataset}.log"),
    wildcard_constraints:
        dataset="|".join(PREPARED_DATASETS),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/prepare_dataset.py"
