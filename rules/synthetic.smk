# Synthetic baselines of the Grassmannian metrics (docs/science.md#3-synthetic-baselines): one job
# per D, then an aggregate store, the paper's Table 1, and the metric-vs-D / metric-vs-ratio
# figures.


rule synthetic_chunk:
    """T random pairs per (modality, ratio) for one ambient dimension D."""
    output:
        directory(results("synthetic", "chunks", "D={D}.zarr")),
    log:
        results("logs", "synthetic_chunk", "D={D}.log"),
    benchmark:
        results("benchmarks", "rules", "synthetic_chunk", "D={D}.tsv")
    wildcard_constraints:
        D=r"\d+",
    # long chunks (D = 1024, 2048) start early instead of trailing the study on one core
    priority: 30
    conda:
        "../envs/cpu.yaml"
    threads: 1
    resources:
        **cluster(),
        mem_mb=2000,
        runtime=60,
    params:
        ratios=lambda wc: SYNTHETIC_CELLS[int(wc.D)],
        settings=config["synthetic"],
    script:
        "../scripts/synthetic_chunk.py"


rule synthetic_aggregate:
    """Combine the per-D chunks into the (modality, metric, D, ratio, sample) store."""
    input:
        expand(results("synthetic", "chunks", "D={D}.zarr"), D=list(SYNTHETIC_CELLS)),
    output:
        store=directory(results("synthetic", "grassmann_baselines.zarr")),
        csv=report(
            results("synthetic", "baselines_table.csv"),
            category="Synthetic baselines",
            subcategory="Table 1",
            caption="../report/baselines_table.rst",
        ),
        md=results("synthetic", "baselines_table.md"),
    log:
        results("logs", "synthetic_aggregate.log"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        settings=config["synthetic"],
    script:
        "../scripts/synthetic_aggregate.py"


rule synthetic_figures:
    """Metric vs D and metric vs ratio, one figure per modality (PNG and PDF)."""
    input:
        rules.synthetic_aggregate.output.store,
    output:
        vs_d=report(
            results("figures", "synthetic", "vs_D_{modality}.png"),
            category="Synthetic baselines",
            subcategory="Metric vs D",
            caption="../report/synthetic_vs_D.rst",
        ),
        vs_ratio=report(
            results("figures", "synthetic", "vs_ratio_{modality}.png"),
            category="Synthetic baselines",
            subcategory="Metric vs ratio",
            caption="../report/synthetic_vs_ratio.rst",
        ),
        pdfs=expand(results("figures", "synthetic", "{kind}_{{modality}}.pdf"), kind=SYNTHETIC_FIGURES),
    log:
        results("logs", "synthetic_figures", "{modality}.log"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        settings=config["synthetic"],
    script:
        "../scripts/synthetic_figures.py"
