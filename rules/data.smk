# Datasets: download (verified, atomic, optionally from a mirror) and prepare model-ready arrays.


rule prepare_dataset:
    """Download (if needed) and prepare one dataset as data/<dataset>.npz."""
    output:
        npz=LAYOUT.prepared("{dataset}"),
        digest=LAYOUT.digest(LAYOUT.prepared("{dataset}")),
    log:
        LAYOUT.log("prepare_dataset", "{dataset}"),
    wildcard_constraints:
        dataset=one_of(PREPARED_DATASETS),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        # where the data live (dir, mirror, imagenet_root) and how they are read (loader_workers) come from
        # the config in the script:
        # moving them must not rerun what depends on the prepared arrays
        data={k: v for k, v in config["data"].items() if k not in ("dir", "mirror", "imagenet_root", "loader_workers")},
    script:
        "../scripts/prepare_dataset.py"
