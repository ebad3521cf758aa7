"""Adapter: config dof_quadratic -> results/dof/quadratic_well.zarr."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821 (Snakemake global)

from hessmask.jobs import setup_logging  # noqa: E402
from hessmask.store import provenance, write_dataset  # noqa: E402
from hessmask.subspace import quadratic_well_dataset  # noqa: E402

sm = snakemake  # noqa: F821
log = setup_logging(sm.log)
ds = quadratic_well_dataset(sm.params.quad)
ds.attrs.update(provenance(sm.params.quad))
write_dataset(ds, sm.output[0])
