# Synthetic baselines of the Grassmannian metrics (docs/science.md#3-synthetic-baselines): one job
# per D, then an aggregate store, the paper's Table 1, and the metric-vs-D / metric-vs-rho figures.


rule synthetic_chunk:
    """T random pairs per (modality, rho) for one ambient dimension D."""
    output:
        directory(LAYOUT.path("synthetic", "chunks", "D={D}.zarr")),
    log:
        LAYOUT.log("synthetic_chunk", "D={D}"),
    benchmark:
        LAYOUT.benchmark("synthetic_chunk", "D={D}")
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
        rhos=synthetic_rhos,
        settings=config["synthetic"],
    script:
        "../scripts/synthetic_chunk.py"


rule synthetic_aggregate:
    """Combine the per-D chunks into the (modality, metric, D, rho, sample) store."""
    input:
        expand(LAYOUT.path("synthetic", "chunks", "D={D}.zarr"), D=list(SYNTHETIC_CELLS)),
    output:
        store=directory(LAYOUT.path("synthetic", "grassmann_baselines.zarr")),
        csv=report(
            LAYOUT.path("synthetic", "baselines_table.csv"),
            category="Synthetic baselines",
            subcategory="Table 1",
            caption="../report/baselines_table.rst",
        ),
        md=LAYOUT.path("synthetic", "baselines_table.md"),
    log:
        LAYOUT.log("synthetic_aggregate"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        settings=config["synthetic"],
    script:
        "../scripts/synthetic_aggregate.py"


rule synthetic_figures:
    """Metric vs D and metric vs rho (hessmask.figures.SYNTHETIC_FIGURES) of one modality, PNG and PDF."""
    input:
        rules.synthetic_aggregate.output.store,
    output:
        **{
            f"{name}_png": report(
                LAYOUT.figure("synthetic", f"{name}_{{modality}}.png"),
                category="Synthetic baselines",
                subcategory=figure.label,
                caption=f"../report/{figure.caption}",
            )
            for name, figure in SYNTHETIC_FIGURES.items()
        },
        **{f"{name}_pdf": LAYOUT.figure("synthetic", f"{name}_{{modality}}.pdf") for name in SYNTHETIC_FIGURES},
    log:
        LAYOUT.log("synthetic_figures", "{modality}"),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        settings=config["synthetic"],
    script:
        "../scripts/synthetic_figures.py"
