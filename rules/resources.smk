# What a job asks of the machine or the cluster: GPUs, threads, memory, its conda environment,
# the SLURM settings an experiment or the environment configures, and the eigen jobs' resources
# and priorities. Functions only (the rules use them).

from hessmask.eigen.methods import method as eigen_method  # noqa: E402


def gpus(wildcards, stage):
    """GPUs requested by a job of ``stage`` (train, eigen, dof): configured, or 1 on a cuda device."""
    exp = experiment(wildcards)
    if stage == "dof":
        return int(exp["dof"]["device"].startswith("cuda"))
    configured = exp["resources"][f"{stage}_gpus"]
    return configured if configured is not None else int(exp[stage]["device"].startswith("cuda"))


def stage_gpus(stage):
    """The ``gpu`` resource of the jobs of ``stage``."""

    def gpu(wildcards):
        return gpus(wildcards, stage)

    gpu.__name__ = f"{stage}_gpus"
    return gpu


def conda_env(stage):
    """The conda environment of a job of ``stage`` (train, eigen, dof): envs/gpu.yaml where the
    experiment's ``<stage>.device`` is cuda, else envs/cpu.yaml."""

    def env(wildcards, *_):
        device = experiment(wildcards)[stage]["device"]
        return str(Path(workflow.basedir, "envs", "gpu.yaml" if device.startswith("cuda") else "cpu.yaml"))

    return env


#: experiments.<name>.resources.slurm keys -> the SLURM executor's resource names; the
#: HESSMASK_SLURM_* variables are the fallbacks of the first three
SLURM_SETTINGS = {
    "partition": "slurm_partition",
    "account": "slurm_account",
    "qos": "qos",
    "extra": "slurm_extra",
    "gpu_model": "gpu_model",
}
SLURM_ENVIRONMENT = {
    "partition": "HESSMASK_SLURM_PARTITION",
    "gpu_partition": "HESSMASK_SLURM_GPU_PARTITION",
    "account": "HESSMASK_SLURM_ACCOUNT",
}


def slurm_setting(exp, key, gpu):
    """One SLURM setting of a job of ``exp`` (None: the experiment and the environment leave it
    to the site profile). GPU jobs take ``gpu_partition`` before ``partition``."""
    keys = ["gpu_partition", key] if key == "partition" and gpu else [key]
    for name in keys:
        value = exp["resources"]["slurm"][name] if exp else None
        value = value if value is not None else os.getenv(SLURM_ENVIRONMENT.get(name, ""), "") or None
        if value is not None:
            return value
    return None


def slurm_resource(stage, key):
    """A resource function: the SLURM setting ``key`` of a job of ``stage`` of the job's experiment."""

    def setting(wildcards):
        return slurm_setting(experiment(wildcards), key, stage != "cpu" and gpus(wildcards, stage) > 0)

    setting.__name__ = f"slurm_{key}_of_{stage}"
    return setting


def cluster(stage=None):
    """SLURM resources of the jobs of ``stage`` (train, eigen, dof: per experiment and device;
    cpu: CPU jobs of an experiment; None: jobs of no experiment). Only settings that something
    configures become resources of the rule, so a site profile's default-resources and
    set-resources stay in force for the rest (a rule's resource, even an empty one, would
    override them)."""
    configured = {}
    for key, resource in SLURM_SETTINGS.items():
        if stage is None:
            value = slurm_setting(None, key, False)
            if value is not None:
                configured[resource] = value
            continue
        candidates = [slurm_setting(exp, key, gpu) for exp in EXPERIMENTS.values() for gpu in (False, True)]
        if any(v is not None for v in candidates):
            configured[resource] = slurm_resource(stage, key)
    return configured


def job_threads(stage):
    """CPUs of a job of ``stage`` (train, eigen, dof): its ``threads``, plus ``data.loader_workers``
    decoding threads for ImageNet experiments (so a GPU job is not starved by image decoding)."""

    def threads(wildcards):
        exp = experiment(wildcards)
        extra = config["data"]["loader_workers"] if exp["dataset"] == "imagenet" else 0
        settings = exp["dof"] if stage == "dof" else exp[stage]
        return settings["threads"] + extra

    return threads


def memory(key):
    """``resources.<key>`` of the job's experiment in MB, times the attempt: a job retried after
    running out of memory asks for more."""

    def mem_mb(wildcards, attempt):
        return experiment(wildcards)["resources"][key] * attempt

    return mem_mb


def stage_resources(stage, mem_key, runtime_key):
    """The resources of a job of ``stage`` (train, eigen, dof): its GPUs, memory and wall time from
    ``experiments.<name>.resources`` and the SLURM settings the experiment configures."""
    return dict(
        gpu=stage_gpus(stage),
        mem_mb=memory(mem_key),
        runtime=experiment_key("resources", runtime_key),
        **cluster(stage),
    )


def eigen_priority(wildcards):
    """Snakemake priority of an eigen store job: its method's (hessmask.eigen.methods: the long
    exact solves start before the other eigen jobs of their step)."""
    return eigen_method(wildcards.method).priority
