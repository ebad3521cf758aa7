# Synthetic baselines of the Grassmannian metrics (STUDY.md section 3): one job per D, then an
# aggregate store, the paper's Table 1, and the metric-vs-D / metric-vs-ratio figures.

rule synthetic_chunk:
    """T random pairs per (modality, ratio) for one ambient dimension D."""
    output:
        directory(results("synthetic", "chunks", "D={D}.zarr")),
    params:
        ratios=lambda wc: SYNTHETIC_CELLS[int(wc.D)],
        settings=config["synthetic"],
    benchmark:
        results("benchmarks", "rules", "synthetic_chunk", "D={D}.tsv")
    log:
        results("logs", "synthetic_chunk", "D={D}.log"),
    wildcard_constraints:
        D=r"\d+",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/synthetic_chunk.py"


rule synthetic_aggregate:
    """Combine the per-D chunks into the (modality, metric, D, ratio, sample) store."""
    input:
        expand(results("synthetic", "chunks", "D={D}.zarr"), D=list(SYNTHETIC_CELLS)),
    output:
        store=directory(results("synthetic", "grassmann_baselines.zarr")),
        csv=results("synthetic", "baselines_table.csv"),
        md=results("synthetic", "baselines_table.md"),
    params:
        settings=config["synthetic"],
    log:
        results("logs", "synthetic_aggregate.log"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/synthetic_aggregate.py"


rule synthetic_figures:
    """Metric vs D and metric vs ratio, one figure per modality (PNG and PDF)."""
    input:
        rules.synthetic_aggregate.output.store,
    output:
        expand(
            results("figures", "synthetic", "{kind}_{{modality}}.{ext}"),
            kind=SYNTHETIC_FIGURES,
            ext=["png", "pdf"],
        ),
    params:
        settings=config["synthetic"],
    log:
        results("logs", "synthetic_figures", "{modality}.log"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/synthetic_figures.py"
