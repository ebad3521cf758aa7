# What `all` builds: every final output the config asks for, by stage. Functions only.


def all_targets():
    """Every final output the config asks for."""
    return synthetic_targets() + experiment_targets() + dof_targets()


def synthetic_targets():
    """The synthetic baselines' store, table and figures (where the synthetic study runs)."""
    if not config["synthetic"]["enabled"]:
        return []
    figures = [
        LAYOUT.figure("synthetic", f"{kind}_{modality}.{ext}")
        for kind in SYNTHETIC_FIGURES
        for modality in config["synthetic"]["modalities"]
        for ext in ("png", "pdf")
    ]
    tables = [LAYOUT.path("synthetic", f"baselines_table.{ext}") for ext in ("csv", "md")]
    return [LAYOUT.path("synthetic", "grassmann_baselines.zarr"), *tables, *figures]


def experiment_targets():
    """Each experiment's stores, its eigen stores (results too: a deleted one is rebuilt), metrics,
    summary and figures."""
    targets = []
    for name, exp in EXPERIMENTS.items():
        targets += [LAYOUT.experiment_store(name, store) for store in ("training", "theta", "masks")]
        if enabled_methods(exp["eigen"]["methods"]) and hessian_splits(exp):
            targets += [LAYOUT.experiment_store(name, "metrics"), LAYOUT.path(name, "summary.md")]
            targets += [
                LAYOUT.eigen_store(name, method, split, step)
                for split, step in eigen_jobs(exp)
                for method in enabled_methods(exp["eigen"]["methods"], step)
            ]
            targets += [LAYOUT.figure(name, f"{fig}.{ext}") for fig in EXPERIMENT_FIGURES for ext in ("png", "pdf")]
    return targets


def dof_targets():
    """Each dof experiment's store and figures, and the quadratic well."""
    targets = []
    for name in DOF_EXPERIMENTS:
        targets.append(LAYOUT.path("dof", f"{name}.zarr"))
        targets += [LAYOUT.figure("dof", name, f"{fig}.{ext}") for fig in DOF_FIGURES for ext in ("png", "pdf")]
    if config["dof_quadratic"]["enabled"]:
        targets += [LAYOUT.path("dof", "quadratic_well.zarr")]
        targets += [LAYOUT.figure("dof", f"quadratic_well.{ext}") for ext in ("png", "pdf")]
    return targets


def figure_outputs(table, ext, *where, category=None, subcategory=None):
    """The figure files of a table of hessmask.figures under ``figures/<where...>/``, keyed
    ``<name>_<ext>``; with ``category`` the PNGs are registered for the report, under
    ``subcategory`` (None: each figure's label)."""
    outputs = {}
    for name, figure in table.items():
        path = LAYOUT.figure(*where, f"{name}.{ext}")
        if category is not None:
            path = report(
                path, category=category, subcategory=subcategory or figure.label, caption=f"../report/{figure.caption}"
            )
        outputs[f"{name}_{ext}"] = path
    return outputs
