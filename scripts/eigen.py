"""Adapter for the eigen rules: sketch_shard, sketch_solve and exact_solve (by rule name)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821 (Snakemake global)

import torch  # noqa: E402

from hessmask.jobs import experiment_data, setup_logging  # noqa: E402
from hessmask.store import open_dataset, provenance, write_dataset  # noqa: E402
from hessmask.study import eigenvector_encoding, exact_store, hessian_operator, shard_store, sketch_store  # noqa: E402
from hessmask.training import Checkpoint  # noqa: E402

sm = snakemake  # noqa: F821
log = setup_logging(sm.log)
torch.set_num_threads(sm.threads)
exp, eigen = sm.params.experiment, sm.params.eigen
data = experiment_data(exp["model"], exp["dataset"], exp["synthetic_samples"], exp["train"]["seed"],
                       sm.input.data, sm.params.imagenet_root)
checkpoint = Checkpoint.load(sm.input.checkpoint, map_location="cpu")
operator = hessian_operator(checkpoint, data, sm.wildcards.split, sm.params.samples, eigen)
log.info("%s: D = %d, %d examples of %s, step %s", sm.rule, operator.dim, operator.num_examples,
         sm.wildcards.split, sm.wildcards.step)
if sm.rule == "sketch_shard":
    ds = shard_store(operator, eigen, int(sm.wildcards.shard))
    encoding = {}
elif sm.rule == "sketch_solve":
    seed = eigen["sketch"]["seed"] + int(sm.wildcards.step)
    ds = sketch_store(operator, [open_dataset(p) for p in sm.input.shards], eigen, seed)
    encoding = eigenvector_encoding(ds.sizes["param"], ds.sizes["k_index"])
else:
    ds = exact_store(operator, sm.params.k, eigen)
    encoding = eigenvector_encoding(ds.sizes["param"], ds.sizes["k_index"])
ds.attrs.update(provenance(eigen, split=sm.wildcards.split, step=int(sm.wildcards.step)))
write_dataset(ds, sm.output[0], encoding=encoding)
log.info("wrote %s (%d products)", sm.output[0], operator.num_products)
