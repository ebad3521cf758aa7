"""The subspace methods of the degrees-of-freedom study by name, with their labels, and the job grid.

A module of its own, without torch, so that what only names the methods or lays out the jobs (the
config checks, the rules, the figures) does not pay for importing ``hessmask.dof``: the Snakemake
process starts without torch. ``hessmask.dof`` re-exports all of it.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

#: The subspace methods: the one list the config schema, the rules, the stores and the figures use.
METHODS = ("random_affine", "burn_in", "lottery_subspace", "lottery_ticket", "hessian_topd", "mask_topd")
#: Methods whose offset is w_t at a start step t (``dof.start_step``, swept over ``dof.start_steps``).
START_STEP_METHODS = ("burn_in", "hessian_topd", "mask_topd")
#: Methods that draw a fresh w_0 per run under ``dof.init: per_run`` (seed 004 section 2: the success
#: probability is over the random subspace *and* the random initialization). The other methods are
#: functions of one full training trajectory and stay conditioned on the experiment's w_0.
PER_RUN_INIT_METHODS = ("random_affine", "burn_in")

#: What each method's subspace is, for stores and figure legends.
METHOD_LABELS = {
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


def offset_steps(method: str, dof: Mapping[str, Any]) -> list[int]:
    """The checkpoint steps a method starts from: every t for START_STEP_METHODS, 0 for
    random_affine, the rewind step r for the lottery methods."""
    if method in START_STEP_METHODS:
        return start_steps(dof)
    return [0] if method == "random_affine" else [dof["rewind_step"]]


def main_offset_step(method: str, dof: Mapping[str, Any]) -> int:
    """The step of a method's runs in the main (method, d, run) results: t = ``dof.start_step``."""
    return dof["start_step"] if method in START_STEP_METHODS else offset_steps(method, dof)[0]


def main_offset_steps(dof: Mapping[str, Any]) -> dict[str, int]:
    """:func:`main_offset_step` of every configured method."""
    return {m: main_offset_step(m, dof) for m in dof["methods"]}


def chunk_runs(dof: Mapping[str, Any], chunk: int) -> list[int]:
    """The runs of job ``chunk`` (``dof.runs_per_job`` per job; null: all runs in one job)."""
    per = dof["runs_per_job"] or dof["runs"]
    return list(range(chunk * per, min(dof["runs"], (chunk + 1) * per)))


def dim_groups(dof: Mapping[str, Any]) -> list[list[int]]:
    """The d values of each job: ``dof.dims`` in consecutive groups of ``dof.dims_per_job`` (null:
    every d of a (method, t, chunk of runs) in one job, one process start-up instead of one per d)."""
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
    """(method, t, :func:`dims_label` of the job's d values, chunk of runs) of every subspace job of
    an experiment."""
    per = dof["runs_per_job"] or dof["runs"]
    chunks = range(-(-dof["runs"] // per))
    return [(m, t, dims_label(dims), c) for m in dof["methods"] for t in offset_steps(m, dof)
            for dims in dim_groups(dof) for c in chunks]


def method_inputs(method: str, step: int, dof: Mapping[str, Any], final_step: int) -> dict[str, tuple]:
    """What a (method, t) job reads, by role: ``("checkpoint", step)``, ``("trajectory",)`` or
    ``("eigen", method, split, step)``; the workflow turns these into paths.

    Every job reads the checkpoint at its offset step (its network and buffers, and w_t); the
    lottery ticket also the checkpoint whose magnitudes choose it (``dof.ticket_step``, null: the
    final step), the lottery subspace the trajectory's principal directions, hessian_topd the
    eigen store at t.
    """
    if method not in METHODS:
        raise ValueError(f"unknown subspace method {method!r} (known: {', '.join(METHODS)})")
    inputs: dict[str, tuple] = {"start": ("checkpoint", step)}
    if method == "lottery_ticket":
        ticket = dof.get("ticket_step")
        inputs["final"] = ("checkpoint", final_step if ticket is None else ticket)
    if method == "lottery_subspace":
        inputs["trajectory"] = ("trajectory",)
    if method == "hessian_topd":
        inputs["eigen"] = ("eigen", dof["hessian_method"], dof["hessian_split"], step)
    return inputs


#: The dof keys a subspace job's result depends on, beyond Adam's (the grid keys are wildcards).
_JOB_KEYS = {"lottery_subspace": ("trajectory_every",), "lottery_ticket": ("ticket_step",),
             "hessian_topd": ("hessian_split", "hessian_method")}


def job_settings(method: str, dof: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a (method, d, chunk) job depends on: Adam's, the seed, the device, ``init``
    for the per-run-init methods, and the method's own keys (so that changing, say, the lottery
    ticket's step reruns only the lottery-ticket jobs)."""
    keys = ["steps", "batch_size", "lr", "seed", "device", *_JOB_KEYS.get(method, ())]
    if method in PER_RUN_INIT_METHODS:
        keys.append("init")
    return {k: dof[k] for k in keys}
