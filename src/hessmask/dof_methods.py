"""The subspace methods of the degrees-of-freedom study by name, with their labels.

A module of its own, without torch, so that what only names the methods (the config checks, the
rules, the figures) does not pay for importing ``hessmask.dof``; ``hessmask.dof`` re-exports them.
"""

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
