"""The subspace kinds of the degrees-of-freedom study by name, with their labels, and the job grid.

Without torch, so that what only names the subspaces or lays out the jobs (the config checks, the
rules, the figures) does not pay for importing the training code: the Snakemake process starts
without torch. A subspace kind is called a *subspace* everywhere (config ``dof.subspaces``, the
``subspace`` dimension of the dof stores), so that ``method`` always names an eigen method.

The jobs: the **start-step experiment** trains, for each start step t and run r, every start-step
subspace (burn_in, hessian_topd, mask_topd) from the run's own w_t, with the run's data order and
random basis, paired across subspaces: one job per (t, chunk of ``dof.runs_per_job`` runs). Run 0
follows the experiment's own training (its checkpoints); run r >= 1 its own initialization and SGD
trajectory (rule
dof_run_checkpoints). Random affine subspaces are burn-in subspaces at t = 0 (w_0 and the run's
Gaussian basis), so they come from the t = 0 jobs. The **lottery subspaces** (lottery_subspace,
lottery_ticket) are functions of the experiment's one full training; one job each trains them for
every run.
"""

from __future__ import annotations

from typing import Any, Mapping

#: The subspace kinds: the one list the config schema, the rules, the stores and the figures use.
SUBSPACES = ("random_affine", "burn_in", "lottery_subspace", "lottery_ticket", "hessian_topd", "mask_topd")
#: Subspaces whose offset is a run's w_t at a start step t (``dof.start_step``, swept over ``dof.start_steps``).
START_STEP_SUBSPACES = ("burn_in", "hessian_topd", "mask_topd")
#: Subspaces built from the experiment's full training (its trajectory or its final magnitudes).
LOTTERY_SUBSPACES = ("lottery_subspace", "lottery_ticket")
#: The pairs of start-step subspaces the store compares run by run (fewer dimensions first?).
PAIRS = (("hessian_topd", "burn_in"), ("mask_topd", "burn_in"), ("hessian_topd", "mask_topd"))

#: What each subspace is, for stores and figure legends.
LABELS = {
    "random_affine": "random affine (t = 0)",
    "burn_in": "burn-in affine",
    "lottery_subspace": "lottery subspace",
    "lottery_ticket": "lottery ticket",
    "hessian_topd": "top-d Hessian eigenspace",
    "mask_topd": "top-d magnitude mask",
}


#: what each variable of a subspace job's store means: (units, long name)
RESULT_ATTRS = {
    "train_loss": ("nats", "mean cross-entropy over the train split after the last step (eval mode)"),
    "train_accuracy": ("1", "top-1 accuracy over the train split after the last step (eval mode)"),
    "test_loss": ("nats", "mean cross-entropy over the test split after the last step (eval mode)"),
    "test_accuracy": ("1", "top-1 accuracy over the test split after the last step (eval mode)"),
    "best_train_accuracy": ("1", "best train accuracy over the evaluations after step 0 (every dof.eval_every "
                                 "Adam steps and the last; seed 004: the best value Adam achieved)"),
    "best_test_accuracy": ("1", "best test accuracy over the same evaluations"),
    "offset_train_accuracy": ("1", "train accuracy of the offset itself (theta = 0, d = 0)"),
    "offset_test_accuracy": ("1", "test accuracy of the offset itself (theta = 0, d = 0)"),
    "batch_loss": ("nats", "batch cross-entropy before each Adam step"),
}
#: the scalar fields of a SubspaceResult that a store holds per training
RESULT_FIELDS = tuple(name for name in RESULT_ATTRS if name != "batch_loss")



# ----------------------------------------------------------------------------- the job grid


def start_steps(dof: Mapping[str, Any]) -> list[int]:
    """Every start step t of the start-step experiment: ``dof.start_step``, ``dof.start_steps``, and
    0 where random_affine is trained (it is burn_in at t = 0)."""
    steps = {dof["start_step"], *(dof.get("start_steps") or [])}
    if "random_affine" in dof["subspaces"]:
        steps.add(0)
    return sorted(steps)


def start_subspaces(dof: Mapping[str, Any], step: int) -> list[str]:
    """The subspaces the (t, run) job trains: the configured start-step subspaces at a configured
    start step, and burn_in at t = 0 where random_affine is configured (the same training)."""
    configured = step == dof["start_step"] or step in (dof.get("start_steps") or [])
    chosen = [s for s in START_STEP_SUBSPACES if s in dof["subspaces"]] if configured else []
    if step == 0 and "random_affine" in dof["subspaces"] and "burn_in" not in chosen:
        chosen.insert(0, "burn_in")
    return chosen


def chunk_runs(dof: Mapping[str, Any], chunk: int) -> list[int]:
    """The runs of start-step job ``chunk`` (``dof.runs_per_job`` per job; null: all runs in one job)."""
    per = dof["runs_per_job"] or dof["runs"]
    return list(range(chunk * per, min(dof["runs"], (chunk + 1) * per)))


def start_grid(dof: Mapping[str, Any]) -> list[tuple[int, int]]:
    """(t, chunk of runs) of every start-step job of an experiment."""
    per = dof["runs_per_job"] or dof["runs"]
    return [(t, c) for t in start_steps(dof) if start_subspaces(dof, t) for c in range(-(-dof["runs"] // per))]


def lottery_grid(dof: Mapping[str, Any]) -> list[str]:
    """The lottery subspaces of an experiment (one job each, every run)."""
    return [s for s in LOTTERY_SUBSPACES if s in dof["subspaces"]]


def own_runs(dof: Mapping[str, Any]) -> list[int]:
    """The runs that train their own initialization and trajectory (every run but run 0, which is the
    experiment's training)."""
    return list(range(1, dof["runs"]))


def run_steps(dof: Mapping[str, Any]) -> list[int]:
    """The checkpoint steps a run's own training writes: 0 (its w_0, for the full-space reference)
    and every start step."""
    return sorted({0, *start_steps(dof)})


def main_offset_step(subspace: str, dof: Mapping[str, Any]) -> int:
    """The step of a subspace's runs in the main (subspace, d, run) results: t = ``dof.start_step``
    for the start-step subspaces, 0 for random_affine, the rewind step r for the lottery subspaces."""
    if subspace in START_STEP_SUBSPACES:
        return dof["start_step"]
    return 0 if subspace == "random_affine" else dof["rewind_step"]


def main_offset_steps(dof: Mapping[str, Any]) -> dict[str, int]:
    """:func:`main_offset_step` of every configured subspace."""
    return {s: main_offset_step(s, dof) for s in dof["subspaces"]}


def lottery_inputs(subspace: str, dof: Mapping[str, Any], final_step: int) -> dict[str, tuple]:
    """What a lottery job reads, by role: ``("checkpoint", step)`` or ``("trajectory",)``; the
    workflow turns these into paths. The rewind checkpoint gives the network and w_r; the lottery
    ticket also reads the checkpoint whose magnitudes choose it (``dof.ticket_step``, null: the
    final step), the lottery subspace the trajectory's principal directions."""
    if subspace not in LOTTERY_SUBSPACES:
        raise ValueError(f"not a lottery subspace: {subspace!r} (known: {', '.join(LOTTERY_SUBSPACES)})")
    inputs: dict[str, tuple] = {"start": ("checkpoint", dof["rewind_step"])}
    if subspace == "lottery_ticket":
        ticket = dof.get("ticket_step")
        inputs["final"] = ("checkpoint", final_step if ticket is None else ticket)
    else:
        inputs["trajectory"] = ("trajectory",)
    return inputs


#: the dof keys every training job depends on (Adam, its evaluations, the runs' seeds and device)
TRAINING_KEYS = ("steps", "batch_size", "lr", "seed", "device", "eval_every", "vectorize", "dims")
#: the further keys of the start-step jobs: bisection and its levels, the Hessian solve (the
#: subspaces a job trains are its own parameter, :func:`start_subspaces`)
START_KEYS = ("refine_rounds", "sweep_levels", "hessian", "success")
#: the further keys of each lottery job
LOTTERY_KEYS = {"lottery_subspace": ("trajectory_every", "rewind_step"),
                "lottery_ticket": ("ticket_step", "rewind_step")}


def start_job_settings(dof: Mapping[str, Any]) -> dict[str, Any]:
    """The dof settings a (t, run) job depends on (its rerun keys, with :func:`start_subspaces`)."""
    return {k: dof[k] for k in (*TRAINING_KEYS, *START_KEYS)}


def lottery_job_settings(subspace: str, dof: Mapping[str, Any]) -> dict[str, Any]:
    """The dof settings a lottery job depends on."""
    return {k: dof[k] for k in (*TRAINING_KEYS, *LOTTERY_KEYS[subspace], "runs")}


def check_size(dim: int, d: int, what: str = "d") -> None:
    """Refuse a training dimension (or a count of directions) outside [1, D]."""
    if not 1 <= d <= dim:
        raise ValueError(f"{what} = {d} must satisfy 1 <= {what} <= D = {dim}")
