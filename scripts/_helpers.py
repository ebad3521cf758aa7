"""What every workflow script shares (script-side glue, not the library): its entry point.

Each script is ``main(snakemake)`` plus ``run(main, globals())``. Run by Snakemake, ``run`` passes
the ``snakemake`` object Snakemake injected. Run by hand, it builds that object for one job from the
command line, with the same inputs, outputs, params, wildcards, threads and config the workflow
would give it, so that a failing job can be rerun in a debugger without Snakemake scheduling it::

    python scripts/eigen.py eigen_store experiment=mlp_mnist5k method=seigh split=train step=40
    python -m pdb scripts/step_metrics.py experiment=ci_mlp split=test step=6 --configfile configs/ci.yaml

The first argument names the rule when a script serves several (the eigen rules); otherwise it is the
script's own rule. Its inputs must exist (run the workflow up to them first); its outputs are
written where the workflow writes them, and Snakemake's records of them are not touched. The BLAS
thread pools are limited to the job's threads, as Snakemake limits them, so the job computes the same bits.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
# a script run by hand imports hessmask from the repository, as the workflow's jobs do
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))


def run(main: Callable[[Any], None], namespace: Mapping[str, Any], rules: Sequence[str] = ()) -> None:
    """Call ``main(snakemake)`` with the job's ``snakemake`` object, after setting up its log file.

    Args:
        main: the script's work, taking the Snakemake object.
        namespace: the script's ``globals()`` (holding ``snakemake`` when Snakemake runs it).
        rules: the rules the script serves, when more than its own name (the first argument of a
            command line then picks one).
    """
    from hessmask.progress import setup_logging, stop_with_workflow

    snakemake = namespace.get("snakemake")
    if snakemake is not None:
        setup_logging(snakemake.log)
        stop_with_workflow()  # no orphan outlives a killed workflow to publish beside its rerun
        main(snakemake)
        return
    from threadpoolctl import threadpool_limits

    snakemake = from_command_line(Path(namespace["__file__"]).stem, rules, sys.argv[1:])
    setup_logging(snakemake.log)
    # the job's threads, as Snakemake gives them to a job (OMP_NUM_THREADS and the like): the same
    # BLAS reductions, so the same bits
    with threadpool_limits(limits=snakemake.threads):
        main(snakemake)


def from_command_line(script: str, rules: Sequence[str], argv: Sequence[str]) -> Any:
    """The Snakemake object of the job a command line names (see the module docstring)."""
    parser = argparse.ArgumentParser(prog=f"python scripts/{script}.py",
                                     description="Run one job of the workflow outside Snakemake.")
    if rules:
        parser.add_argument("rule", choices=list(rules), help="the rule of the job")
    parser.add_argument("wildcards", nargs="*", metavar="KEY=VALUE", help="the job's wildcards")
    parser.add_argument("--configfile", action="append", default=[], help="config overlays, as for snakemake")
    parser.add_argument("--directory", default=".", help="the workflow's working directory (default: here)")
    args = parser.parse_args(argv)
    wildcards = {}
    for item in args.wildcards:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"wildcards are KEY=VALUE, got {item!r}")
        wildcards[key] = value
    return mock_snakemake(args.rule if rules else script, wildcards, args.configfile, args.directory)


def mock_snakemake(rule: str, wildcards: Mapping[str, str], configfiles: Sequence[str] = (),
                   directory: str | os.PathLike = ".") -> Any:
    """The ``snakemake`` object Snakemake would give the job of ``rule`` with ``wildcards``: the
    workflow (``Snakefile`` of this repository, ``config.yaml`` and ``configfiles``) is parsed in
    ``directory``, the job built, and its inputs, outputs and log made absolute.

    Raises:
        SystemExit: naming the problem, for an unknown rule or wildcards the rule does not have.
    """
    import snakemake.api  # first: it imports the rest of snakemake in an order that works
    from snakemake import dag as dag_module
    from snakemake import jobs as jobs_module
    from snakemake.iocontainers import Snakemake
    from snakemake.logging import LoggerManager, logger
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        ResourceSettings,
        StorageSettings,
        WorkflowSettings,
    )

    directory = Path(directory).resolve()
    configfiles = [Path(f).resolve() for f in configfiles]
    logger_manager = LoggerManager(logger, OutputSettings())  # never set up: the job logs to its own file
    previous = Path.cwd()
    os.chdir(directory)
    try:
        workflow = snakemake.api.Workflow(config_settings=ConfigSettings(configfiles=configfiles),
                            resource_settings=ResourceSettings(), workflow_settings=WorkflowSettings(),
                            storage_settings=StorageSettings(),
                            dag_settings=DAGSettings(rerun_triggers=[]), logger_manager=logger_manager,
                            overwrite_workdir=directory)
        workflow.include(REPO / "Snakefile", overwrite_default_target=True)  # validates the config, as a run does
        try:
            found = workflow.get_rule(rule)
        except Exception:
            raise SystemExit(f"no rule {rule!r} in the workflow") from None
        missing = sorted(set(found.wildcard_names) - set(wildcards))
        extra = sorted(set(wildcards) - set(found.wildcard_names))
        if missing or extra:
            raise SystemExit(f"rule {rule} has the wildcards {sorted(found.wildcard_names)}; missing {missing}, "
                             f"unknown {extra}")
        workflow.global_resources = {"_cores": 1, "_nodes": 1}
        dag = dag_module.DAG(workflow, rules=[found])
        job = jobs_module.Job(found, dag, dict(wildcards))
        for files in (job.input, job.output, job.log):
            for i, name in enumerate(files):
                files[i] = str(directory / name)
        for name in list(job.output) + list(job.log):
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        return Snakemake(job.input, job.output, job.params, job.wildcards, job.threads, job.resources, job.log,
                         workflow.config, found.name, None)
    finally:
        os.chdir(previous)
