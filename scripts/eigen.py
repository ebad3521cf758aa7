"""Rules eigen_store, eigen_seigh_shard, eigen_krylov_basis and eigen_krylov_image (one template in
rules/eigen.smk, hence one script): the job's checkpoint, data and part stores -> its store, by the
eigen method's registry writer (hessmask.jobs.eigen_store) or the method's part job."""

import json
from pathlib import Path

from _helpers import run

RULES = ("eigen_store", "eigen_seigh_shard", "eigen_krylov_basis", "eigen_krylov_image")


def main(sm) -> None:
    import torch

    from hessmask import jobs

    torch.set_num_threads(sm.threads)
    inputs = dict(sm.input.items())
    job = jobs.EigenJob(method=sm.wildcards.method, spec=sm.params.spec, experiment=sm.params.experiment,
                        samples=sm.params.samples, split=sm.wildcards.split, step=int(sm.wildcards.step),
                        data=list(inputs.get("data", [])), checkpoint=sm.input.checkpoint,
                        data_config=sm.config["data"], parts=list(inputs.get("parts", [])))
    if sm.rule == "eigen_store":
        timings = jobs.eigen_store(job, sm.output.store)
        Path(sm.output.timings).write_text(json.dumps(timings, indent=1) + "\n")
    elif sm.rule == "eigen_seigh_shard":
        jobs.seigh_shard(job, int(sm.wildcards.shard), sm.output[0])
    elif sm.rule == "eigen_krylov_basis":
        jobs.krylov_basis(job, list(sm.input.bases), list(sm.input.images), sm.output[0])
    elif sm.rule == "eigen_krylov_image":
        jobs.krylov_image(job, sm.input.basis, int(sm.wildcards.p), int(sm.wildcards.shard), sm.output[0])
    else:
        raise ValueError(f"scripts/eigen.py serves the rules {RULES}, not {sm.rule}")


if __name__ == "__main__":
    run(main, globals(), RULES)
