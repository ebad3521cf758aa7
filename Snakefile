# hessmask: do the largest parameters of a network span the top eigenspace of its loss Hessian?
# The study's DAG. Config: config.yaml (+ overlays in configs/ via --configfile), validated
# against schemas/config.schema.yaml before any job is scheduled.

from pathlib import Path

from snakemake.utils import min_version

min_version("9.19")


configfile: Path(workflow.basedir) / "config.yaml"


include: "rules/common.smk"
include: "rules/resources.smk"
include: "rules/inputs.smk"
include: "rules/targets.smk"


# an experiment wildcard is one of the enabled experiments (a target under results/ of any other
# name has no rule that makes it)
wildcard_constraints:
    experiment=one_of(EXPERIMENTS),


include: "rules/synthetic.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/eigen.smk"
include: "rules/metrics.smk"
include: "rules/figures.smk"
include: "rules/dof.smk"


onstart:
    # a run (not a dry-run) stops before its first job where it could not write its outputs
    for folder, key in ((config["results"], "results"), (config["data"]["dir"], "data.dir")):
        problem = unwritable(folder, key)
        if problem:
            raise WorkflowError(problem)


rule all:
    default_target: True
    input:
        all_targets(),
