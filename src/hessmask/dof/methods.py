"""The subspace kinds of the degrees-of-freedom study by name, with their labels, and the job grid.

Without torch, so that what only names the subspaces or lays out the jobs (the config checks, the
rules, the figures) does not pay for importing the training code: the Snakemake process starts
without torch. A subspace kind is called a *subspace* everywhere (config ``dof.subspaces``, the
``subspace`` dimension of the dof stores, the rules' ``{subspace}`` wildcard), so that ``method``
always names an eigen method.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

#: The subspace kinds: the one list the config schema, the rules, the stores and the figures use.
SUBSPACES = ("random_affine", "burn_in", "lottery_subspace", "lottery_ticket", "hessian_topd", "mask_topd")
#: Subspaces whose offset is w_t at a start step t (``dof.start_step``, swept over ``dof.start_steps``).
START_STEP_SUBSPACES = ("burn_in", "hessian_topd", "mask_topd")
#: Subspaces that draw a fresh w_0 per run under ``dof.init: per_run`` (seed 004 section 2: the success
#: probability is over the random subspace *and* the random initialization). The other subspaces are
#: functions of one full training trajectory and stay conditioned on the experiment's w_0.
PER_RUN_INIT_SUBSPACES = ("random_affine", "burn_in")

#: What each subspace is, for stores and figure legends.
LABELS = {
    "random_affine": "random affine (t = 0)",
    "burn_in": "burn-in affine",
    "lottery_subspace": "lottery subspace",
    "lottery_ticket": "lottery ticket",
    "hessian_topd": "top-d Hessian eigenspace",
    "mask_topd": "top-d magnitude mask",
}


# ----------------------------------------------------------------------------- the job grid


def start_steps(dof: Mapping[str, Any]) -> list[int]:
    """Every start step t of the experiment: ``dof.start_step`` and the sweep ``dof.start_steps``."""
    return sorted({dof["start_step"], *(dof.get("start_steps") or [])})


def offset_steps(subspace: str, dof: Mapping[str, Any]) -> list[int]:
    """The checkpoint steps a subspace starts from: every t for START_STEP_SUBSPACES, 0 for
    random_affine, the rewind step r for the lottery subspaces."""
    if subspace in START_STEP_SUBSPACES:
        return start_steps(dof)
    return [0] if subspace == "random_affine" else [dof["rewind_step"]]


def main_offset_step(subspace: str, dof: Mapping[str, Any]) -> int:
    """The step of a subspace's runs in the main (subspace, d, run) results: t = ``dof.start_step``."""
    return dof["start_step"] if subspace in START_STEP_SUBSPACES else offset_steps(subspace, dof)[0]


def main_offset_steps(dof: Mapping[str, Any]) -> dict[str, int]:
    """:func:`main_offset_step` of every configured subspace."""
    return {s: main_offset_step(s, dof) for s in dof["subspaces"]}


def chunk_runs(dof: Mapping[str, Any], chunk: int) -> list[int]:
    """The runs of job ``chunk`` (``dof.runs_per_job`` per job; null: all runs in one job)."""
    per = dof["runs_per_job"] or dof["runs"]
    return list(range(chunk * per, min(dof["runs"], (chunk + 1) * per)))


def dim_groups(dof: Mapping[str, Any]) -> list[list[int]]:
    """The d values of each job: ``dof.dims`` in consecutive groups of ``dof.dims_per_job`` (null:
    every d of a (subspace, t, chunk of runs) in one job, one process start-up instead of one per d)."""
    dims = [int(d) for d in dof["dims"]]
    per = dof.get("dims_per_job") or len(dims)
    return [dims[i:i + per] for i in range(0, len(dims), per)]


def dims_label(dims: Sequence[int]) -> str:
    """The ``d=`` part of a subspace job's path: its d values joined by ``_`` (``5_10_20``; one d: ``5``)."""
    return "_".join(str(int(d)) for d in dims)


def parse_dims(label: str) -> list[int]:
    """The d values of a :func:`dims_label`."""
    try:
        return [int(d) for d in label.split("_")]
    except ValueError:
        raise ValueError(f"not a list of d values joined by '_': {label!r}") from None


def chunk_grid(dof: Mapping[str, Any]) -> list[tuple[str, int, str, int]]:
    """(subspace, t, :func:`dims_label` of the job's d values, chunk of runs) of every subspace job of
    an experiment."""
    per = dof["runs_per_job"] or dof["runs"]
    chunks = range(-(-dof["runs"] // per))
    return [(s, t, dims_label(dims), c) for s in dof["subspaces"] for t in offset_steps(s, dof)
            for dims in dim_groups(dof) for c in chunks]


def subspace_inputs(subspace: str, step: int, dof: Mapping[str, Any], final_step: int) -> dict[str, tuple]:
    """What a (subspace, t) job reads, by role: ``("checkpoint", step)``, ``("trajectory",)`` or
    ``("eigen", method, split, step)``; the workflow turns these into paths.

    Every job reads the checkpoint at its offset step (its network and buffers, and w_t); the
    lottery ticket also the checkpoint whose magnitudes choose it (``dof.ticket_step``, null: the
    final step), the lottery subspace the trajectory's principal directions, hessian_topd the
    eigen store at t.
    """
    if subspace not in SUBSPACES:
        raise ValueError(f"unknown subspace {subspace!r} (known: {', '.join(SUBSPACES)})")
    inputs: dict[str, tuple] = {"start": ("checkpoint", step)}
    if subspace == "lottery_ticket":
        ticket = dof.get("ticket_step")
        inputs["final"] = ("checkpoint", final_step if ticket is None else ticket)
    if subspace == "lottery_subspace":
        inputs["trajectory"] = ("trajectory",)
    if subspace == "hessian_topd":
        inputs["eigen"] = ("eigen", dof["hessian_method"], dof["hessian_split"], step)
    return inputs


#: The dof keys a subspace job's result depends on, beyond Adam's (the grid keys are wildcards).
_JOB_KEYS = {"lottery_subspace": ("trajectory_every",), "lottery_ticket": ("ticket_step",),
             "hessian_topd": ("hessian_split", "hessian_method")}


def job_settings(subspace: str, dof: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a (subspace, d, chunk) job depends on: Adam's, the seed, the device, ``init``
    for the per-run-init subspaces, and the subspace's own keys (so that changing, say, the lottery
    ticket's step reruns only the lottery-ticket jobs)."""
    keys = ["steps", "batch_size", "lr", "seed", "device", *_JOB_KEYS.get(subspace, ())]
    if subspace in PER_RUN_INIT_SUBSPACES:
        keys.append("init")
    return {k: dof[k] for k in keys}


def check_size(dim: int, d: int, what: str = "d") -> None:
    """Refuse a training dimension (or a count of directions) outside [1, D]."""
    if not 1 <= d <= dim:
        raise ValueError(f"{what} = {d} must satisfy 1 <= {what} <= D = {dim}")
