"""Study configuration: JSON-schema validation with defaults filled and key-named errors.

The schema (``schemas/config.schema.yaml``) is the single documentation of every key. Validation
happens once, when the workflow starts, so a typo or a wrong type stops the run before any job.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import numpy as np
import yaml

from hessmask.data import class_balanced_indices
from hessmask.eigen import methods as eigen_methods
from hessmask.masks import k_of_rho

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


def _with_defaults(validator_class: type) -> type:
    """Extend a jsonschema validator so that ``default`` values are inserted while validating."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # noqa: ANN001 (jsonschema API)
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft7Validator)
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_NUMBER = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")


def coerce_numbers(instance: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """Numbers that arrive as strings, typed by the schema: YAML 1.1 reads ``1e-3`` and ``1.0e6``
    as strings, and Snakemake passes nested ``--config`` values as strings (``'31'``)."""
    root = schema if root is None else root
    if "$ref" in schema:  # local references only: "#/definitions/<name>"
        node = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if isinstance(instance, str):
        text = instance.strip()
        if "integer" in types and _INTEGER.match(text):
            return int(text)
        if "number" in types and _NUMBER.match(text):
            return float(text)
        return instance
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in instance.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                instance[key] = coerce_numbers(value, sub, root)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        instance[:] = [coerce_numbers(item, schema["items"], root) for item in instance]
    return instance


def key_path(path: Any) -> str:
    """Dotted key name of a jsonschema error path, e.g. ``synthetic.grids[0].ratios[2]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def load_schema(path: Path | str = SCHEMA_PATH) -> dict:
    """The config schema, with the lists that the library owns filled in: the subspace kinds of
    ``experiments.<name>.dof.subspaces`` (allowed values and default) are
    :data:`hessmask.dof.methods.SUBSPACES`, and the test matrices of
    ``experiments.<name>.eigen.methods.seigh.kind`` are :data:`hessmask.eigen.methods.KINDS`.

    Raises:
        ConfigError: if the schema has no ``eigen.methods`` block for a registered eigen method, or a
            block for a method the registry does not know (a method is its registry entry and its
            schema block together).
    """
    from hessmask.dof.methods import SUBSPACES

    with open(path) as fh:
        schema = yaml.safe_load(fh)
    experiment = schema["definitions"]["experiment"]["properties"]
    subspaces = experiment["dof"]["properties"]["subspaces"]
    subspaces["items"]["enum"] = list(SUBSPACES)
    subspaces["default"] = list(SUBSPACES)
    blocks = experiment["eigen"]["properties"]["methods"]["properties"]
    if set(blocks) != set(eigen_methods.NAMES):
        raise ConfigError(f"{path}: eigen.methods has blocks for {sorted(blocks)}, the registry "
                          f"(hessmask.eigen.methods.METHODS) names {list(eigen_methods.NAMES)}")
    blocks["seigh"]["properties"]["kind"]["enum"] = list(eigen_methods.KINDS)
    return schema


#: keys that were renamed or moved: (section, key) of an experiment (or the top level) -> the new
#: spelling, relative to the same section; a config that still uses one stops with the new name
MOVED_KEYS = {
    ("eigen", "exact"): "eigen.methods.exact.enabled",
    ("eigen", "exact_steps"): "eigen.methods.exact.steps",
    ("eigen", "exact_k"): "eigen.methods.exact.k",
    ("eigen", "exact_dtype"): "eigen.methods.exact.dtype",
    ("eigen", "sketch"): "eigen.methods.seigh (the same keys)",
    ("eigen", "block_krylov"): "eigen.methods.block_krylov (the same keys)",
    ("dof", "methods"): "dof.subspaces (the same values)",
    ("dof", "hessian_method"): "dof.hessian.method (block_krylov or exact: each run solves its own Hessian)",
    ("dof", "hessian_split"): "dof.hessian.split",
}
#: keys that were removed, with what replaced them: a config that still uses one stops with the reason
REMOVED_KEYS = {
    ("dof", "init"): "every run now has its own initialization and SGD trajectory (run 0: the experiment's own), "
                     "as seed 004's success probability is over w_0 too",
    ("dof", "dims_per_job"): "every d of a run is trained in one vectorized pass (dof.vectorize)",
}
#: renamed keys of the top-level ``synthetic`` section (the mask fraction is rho everywhere)
MOVED_SYNTHETIC_KEYS = {"figure_ratios": "synthetic.figure_rho"}


def reject_moved_keys(config: Mapping[str, Any]) -> None:
    """Stop on a key of an earlier config shape, naming its new spelling (results/README.md lists
    the renames)."""
    lines = []
    for name, exp in (config.get("experiments") or {}).items():
        if not isinstance(exp, Mapping):
            continue
        for (section, key), new in MOVED_KEYS.items():
            if isinstance(exp.get(section), Mapping) and key in exp[section]:
                lines.append(f"config key 'experiments.{name}.{section}.{key}' was renamed: write it as "
                             f"'experiments.{name}.{new}'")
        for (section, key), why in REMOVED_KEYS.items():
            if isinstance(exp.get(section), Mapping) and key in exp[section]:
                lines.append(f"config key 'experiments.{name}.{section}.{key}' was removed ({why}): delete it")
    synthetic = config.get("synthetic")
    if isinstance(synthetic, Mapping):
        for key, new in MOVED_SYNTHETIC_KEYS.items():
            if key in synthetic:
                lines.append(f"config key 'synthetic.{key}' was renamed: write it as '{new}'")
        for i, grid in enumerate(synthetic.get("grids") or []):
            if isinstance(grid, Mapping) and "ratios" in grid:
                lines.append(f"config key 'synthetic.grids[{i}].ratios' was renamed: write it as "
                             f"'synthetic.grids[{i}].rho'")
    if lines:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))


def validate_config(config: Mapping[str, Any], schema: Mapping | None = None) -> dict:
    """Return a validated copy of ``config`` with defaults filled in.

    Raises ConfigError naming the offending key for the first (most specific) violation; the
    message lists all violations when there are several.
    """
    reject_moved_keys(config)
    schema = load_schema() if schema is None else schema
    filled = coerce_numbers(copy.deepcopy(dict(config)), schema)
    check_numbers(filled)
    errors = sorted(_Validator(schema).iter_errors(filled), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors:
            where = key_path(err.absolute_path)
            if err.validator == "additionalProperties":
                extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
                for name in extra:
                    key = f"{where}.{name}" if err.absolute_path else name
                    lines.append(f"unknown config key '{key}' "
                                 f"(allowed: {', '.join(sorted(err.schema.get('properties', {})))})")
            else:
                lines.append(f"config key '{where}': {err.message}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    check_semantics(filled)
    return filled


#: the largest seed a config may set: the derived seeds (seed + step, 2 seed + 2, seed + 0xA905)
#: stay below 2^63, the range of torch's generators (numpy's take any integer)
SEED_MAX = 2**62 - 1
#: folders of the results that are not an experiment's: an experiment of one of these names would
#: write into them
RESERVED_EXPERIMENT_NAMES = ("dof", "synthetic", "figures", "benchmarks", "logs")


def check_numbers(node: Any, path: tuple = ()) -> None:
    """Every number of the config is finite (YAML reads ``.nan`` and ``.inf`` as numbers, and the
    schema's number type accepts them), and every seed is within the generators' range."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            check_numbers(value, path + (key,))
        return
    if isinstance(node, list):
        for i, value in enumerate(node):
            check_numbers(value, path + (i,))
        return
    if isinstance(node, float) and not np.isfinite(node):
        raise ConfigError(f"config key '{key_path(path)}': {node} is not a finite number")
    name = next((p for p in reversed(path) if isinstance(p, str)), "")
    if (name == "seed" or name.endswith("_seed")) and isinstance(node, int) and not isinstance(node, bool) \
            and not 0 <= node <= SEED_MAX:
        raise ConfigError(f"config key '{key_path(path)}': seed {node} is outside [0, 2^62 - 1] (seeds derived from it "
                          "must stay within the range of torch's generators)")


#: Datasets each model can read at its input shape ("synthetic" fits every model).
COMPATIBLE_DATASETS = {
    "mlp": {"mnist5k", "mnist", "synthetic"},
    "mlp_tiny": {"mnist5k", "mnist", "synthetic"},
    "3c3d": {"cifar10", "synthetic"},
    "allcnnc": {"cifar100", "synthetic"},
    "resnet18": {"imagenet", "synthetic"},
}
NUM_CLASSES = {"mnist5k": 10, "mnist": 10, "cifar10": 10, "cifar100": 100, "imagenet": 1000}
#: The number of classes each model is built with unless the data say otherwise.
DEFAULT_CLASSES = {"mlp": 10, "mlp_tiny": 10, "3c3d": 10, "allcnnc": 100, "resnet18": 1000}
#: D of each model with its default classes (tests check these against hessmask.models).
MODEL_DIMS = {"mlp": 7030, "mlp_tiny": 2146, "3c3d": 895_210, "allcnnc": 1_387_108, "resnet18": 11_689_512}


def segment_bounds(record_steps: list[int], total_steps: int) -> list[tuple[int, int]]:
    """(start, end) of each training segment: between consecutive checkpoints, starting at 0."""
    ends = sorted((set(record_steps) | {total_steps}) - {0})
    starts = [0] + ends[:-1]
    return list(zip(starts, ends))


def experiment_classes(exp: Mapping[str, Any]) -> int:
    """The number of classes of an experiment's data (the model's default for synthetic data)."""
    return NUM_CLASSES.get(exp["dataset"], DEFAULT_CLASSES[exp["model"]])


def eigen_steps(exp: Mapping[str, Any]) -> list[int]:
    """The record steps whose Hessians are decomposed (``eigen.steps``; null: every record step)."""
    steps = exp["eigen"]["steps"]
    return list(exp["record_steps"]) if steps is None else list(steps)


def method_steps(exp: Mapping[str, Any], name: str) -> list[int]:
    """The steps eigen method ``name`` solves ([] where it is off; its ``steps`` null: every decomposed step)."""
    block = exp["eigen"]["methods"][name]
    if not block["enabled"]:
        return []
    return eigen_steps(exp) if block["steps"] is None else list(block["steps"])


def eigen_specs(exp: Mapping[str, Any]) -> dict[str, eigen_methods.SolveSpec]:
    """The typed spec of every eigen method of an experiment, its defaults resolved
    (``hessmask.eigen.methods.resolve``; in a validated config they are already filled in)."""
    return eigen_methods.resolve(exp["eigen"], MODEL_DIMS[exp["model"]], max(exp["masks"]["rho"]))


def resolve_eigen(exp: dict) -> None:
    """Fill in an experiment's eigen defaults, once, in place: the steps of ``eigen`` and of each
    method, and every default of a method's spec (the sketch's inner size, the exact solve's k, block
    Krylov's budget and k), so that every job, store and log sees the values used."""
    eigen = exp["eigen"]
    eigen["steps"] = eigen_steps(exp)
    for name, spec in eigen_specs(exp).items():
        block = eigen["methods"][name]
        block["steps"] = eigen["steps"] if block["steps"] is None else list(block["steps"])
        block.update({key: value for key, value in spec.params().items() if key in block})


def hessian_splits(exp: Mapping[str, Any]) -> list[str]:
    """Splits with a non-empty Hessian subset."""
    return [s for s in ("train", "test") if exp["hessian"][f"{s}_samples"] > 0]


def check_semantics(config: Mapping[str, Any]) -> None:
    """Cross-key checks the schema cannot express."""
    synthetic = config.get("synthetic", {})
    for i, grid in enumerate(synthetic.get("grids", [])):
        if len(set(grid["rho"])) != len(grid["rho"]):
            raise ConfigError(f"config key 'synthetic.grids[{i}].rho': duplicate values {grid['rho']}")
    for name, exp in config.get("experiments", {}).items():
        if name in RESERVED_EXPERIMENT_NAMES:
            raise ConfigError(f"config key 'experiments.{name}': {name!r} names a folder of the results that is not "
                              f"an experiment's (reserved: {', '.join(RESERVED_EXPERIMENT_NAMES)}); rename it")
        check_experiment(name, exp)
        resolve_eigen(exp)
        if exp["dof"]["enabled"]:
            check_dof(name, exp)
        if exp.get("enabled", True):
            check_data(name, exp, config.get("data", {}))
    if "dof_quadratic" in config:
        check_dof_quadratic(config["dof_quadratic"])


def check_experiment(name: str, exp: Mapping[str, Any]) -> None:
    """An experiment's steps, subsets and model/dataset pairing are consistent."""
    key = f"experiments.{name}"
    steps = exp["record_steps"]
    if steps != sorted(steps):
        raise ConfigError(f"config key '{key}.record_steps': steps must be sorted ascending, got {steps}")
    total = exp["train"]["steps"]
    if steps[-1] > total:
        raise ConfigError(f"config key '{key}.record_steps': step {steps[-1]} is beyond the trained "
                          f"range ({key}.train.steps = {total}); raise train.steps or drop the step")
    model, dataset = exp["model"], exp["dataset"]
    if dataset not in COMPATIBLE_DATASETS[model]:
        raise ConfigError(f"config key '{key}.dataset': model {model} cannot read dataset {dataset} "
                          f"(compatible: {', '.join(sorted(COMPATIBLE_DATASETS[model]))})")
    extra = sorted(set(eigen_steps(exp)) - set(steps))
    if extra:
        raise ConfigError(f"config key '{key}.eigen.steps': {extra} are not record steps ({key}.record_steps)")
    dim = MODEL_DIMS[model]
    for name, spec in eigen_specs(exp).items():
        block, where = exp["eigen"]["methods"][name], f"{key}.eigen.methods.{name}"
        if block["steps"] is not None:
            extra = sorted(set(block["steps"]) - set(eigen_steps(exp)))
            if extra:
                raise ConfigError(f"config key '{where}.steps': {extra} are not in {key}.eigen.steps")
        if not method_steps(exp, name):
            continue
        try:
            spec.check(dim)
        except eigen_methods.SettingError as err:
            raise ConfigError(f"config key '{where}.{err.key}': {err}") from None
        need_mb = spec.memory_mb(dim)
        if need_mb is not None and need_mb > exp["resources"]["eigen_mem_mb"]:
            raise ConfigError(f"config key '{where}.enabled': {eigen_methods.LABELS[name]} at D = {dim} needs about "
                              f"{need_mb / 1e3:,.0f} GB in one job, more than {key}.resources.eigen_mem_mb = "
                              f"{exp['resources']['eigen_mem_mb']}; set {where}.enabled: false (the sketched "
                              "solve streams in bounded memory)")
    check_reported_k(key, exp)


#: (train, test) examples of each dataset, and the fewest examples of any class per split
DATASET_SIZES = {"mnist5k": ((4000, 1000), (400, 100)), "mnist": ((60000, 10000), (5421, 892)),
                 "cifar10": ((50000, 10000), (5000, 1000)), "cifar100": ((50000, 10000), (500, 100)),
                 "imagenet": ((1_281_167, 50_000), (732, 50))}


def check_data(name: str, exp: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    """What would otherwise fail only inside a job, after the queue: a batch larger than the
    training set, a Hessian subset larger than a class has, a missing ImageNet tree or mirror."""
    key, dataset = f"experiments.{name}", exp["dataset"]
    classes = experiment_classes(exp)
    if dataset == "synthetic":
        sizes = (exp["synthetic_samples"],) * 2
    else:
        sizes, smallest = DATASET_SIZES[dataset]
    if exp["train"]["batch_size"] > sizes[0]:
        raise ConfigError(f"config key '{key}.train.batch_size': {exp['train']['batch_size']} exceeds the {sizes[0]} "
                          f"training examples of {dataset}")
    for i, split in enumerate(("train", "test")):
        n = exp["hessian"][f"{split}_samples"]
        try:
            if dataset == "synthetic":  # the job's own selection over the synthetic labels 0, 1, ..., C-1, 0, ...
                class_balanced_indices(np.arange(sizes[i]) % classes, n, classes)
            elif -(-n // classes) > smallest[i]:
                raise ValueError(f"{n} class-balanced examples need {-(-n // classes)} of some class; the smallest "
                                 f"class has {smallest[i]}")
        except ValueError as err:
            raise ConfigError(f"config key '{key}.hessian.{split}_samples': {err} in the {split} split of "
                              f"{dataset} (raise synthetic_samples or lower the subset)") from None
    if dataset == "imagenet":
        check_imagenet_root(data.get("imagenet_root"))
    mirror = data.get("mirror")
    if mirror and "://" not in str(mirror) and not Path(mirror).is_dir():
        raise ConfigError(f"config key 'data.mirror': {mirror} is not a folder (a local mirror holds the original "
                          "files under their original names; an http(s) URL is also accepted)")
    if mirror and "://" not in str(mirror):
        check_mirror(Path(mirror), dataset, data)


def check_mirror(mirror: Path, dataset: str, data: Mapping[str, Any]) -> None:
    """A local mirror holds the source files of a dataset the run still has to download (neither
    prepared nor downloaded under ``data.dir``), named before any job rather than by its download."""
    from urllib.parse import urlparse

    folder = Path(data.get("dir", "data"))
    sources = (data.get("sources") or {}).get(dataset)
    if not sources or (folder / f"{dataset}.npz").exists():
        return
    names = [Path(urlparse(s["url"]).path).name for s in sources]
    missing = [n for n in names if not (mirror / n).is_file() and not (folder / "raw" / dataset / n).is_file()]
    if missing:
        raise ConfigError(f"config key 'data.mirror': {mirror} lacks the files of {dataset} the run must download: "
                          f"{', '.join(missing)} (a mirror holds them under their original names)")


def check_imagenet_root(root: Any) -> None:
    """``data.imagenet_root`` holds train/ and val/ in class-folder layout (checked before any job)."""
    if not root:
        raise ConfigError("config key 'data.imagenet_root': an ImageNet experiment needs a folder with train/ and "
                          "val/ in class-folder layout (ImageNet is never downloaded)")
    for split in ("train", "val"):
        folder = Path(root, split)
        if not folder.is_dir() or not any(p.is_dir() for p in folder.iterdir()):
            raise ConfigError(f"config key 'data.imagenet_root': {folder} is missing or has no class folders")


def check_reported_k(key: str, exp: Mapping[str, Any]) -> None:
    """The k of the summary (``metrics.summary_rho``) is one every method solves for."""
    dim = MODEL_DIMS[exp["model"]]
    rho = exp["metrics"]["summary_rho"]
    k = k_of_rho(dim, rho)
    for name, spec in eigen_specs(exp).items():
        limit = spec.pairs()
        if method_steps(exp, name) and k > limit:
            where = f"{key}.eigen.methods.{name}"
            raise ConfigError(f"config key '{key}.metrics.summary_rho': k = round({rho} x {dim}) = {k} exceeds "
                              f"the {limit} eigenpairs of {name} ({where}); lower summary_rho to at most "
                              f"{limit / dim:.3g} or let {name} keep more")


def checkpoint_steps(exp: Mapping[str, Any]) -> list[int]:
    """Every step a checkpoint is written at: the record steps, 0 and the final step."""
    return sorted({0, exp["train"]["steps"], *exp["record_steps"]})


def dof_levels(dof: Mapping[str, Any]) -> list[float]:
    """Accuracy levels of the degrees-of-freedom success probability."""
    levels = dof["accuracy_levels"]
    return [round(0.1 + 0.01 * i, 2) for i in range(91)] if levels is None else sorted(levels)


def check_dof(name: str, exp: Mapping[str, Any]) -> None:
    """The degrees-of-freedom grid fits the experiment: steps exist, d fits every basis."""
    from hessmask.dof.methods import start_steps

    key = f"experiments.{name}.dof"
    dof = exp["dof"]
    dims, dim = dof["dims"], MODEL_DIMS[exp["model"]]
    if dims != sorted(dims):
        raise ConfigError(f"config key '{key}.dims': dimensions must be sorted ascending, got {dims}")
    if dims[-1] > dim:
        raise ConfigError(f"config key '{key}.dims': d = {dims[-1]} exceeds the D = {dim} parameters of {exp['model']}")
    steps = checkpoint_steps(exp)
    for field in ("start_step", "rewind_step", "ticket_step", "start_steps"):
        for value in dof[field] if isinstance(dof[field], list) else [dof[field]]:
            if value is not None and value not in steps:
                raise ConfigError(f"config key '{key}.{field}': {value} is not a checkpoint step "
                                  f"(record steps, 0 or train.steps: {steps})")
    if max(start_steps(dof)) > exp["train"]["steps"]:
        raise ConfigError(f"config key '{key}.start_steps': beyond train.steps = {exp['train']['steps']}")
    subspaces = dof["subspaces"]
    if "lottery_subspace" in subspaces:
        available = -(-exp["train"]["steps"] // dof["trajectory_every"])
        if dims[-1] > available:
            raise ConfigError(f"config key '{key}.dims': lottery_subspace at d = {dims[-1]} needs {dims[-1]} "
                              f"trajectory directions, but train.steps / trajectory_every gives {available}")
    if "hessian_topd" in subspaces:
        hessian = dof["hessian"]
        if exp["hessian"][f"{hessian['split']}_samples"] == 0:
            raise ConfigError(f"config key '{key}.hessian.split': the {hessian['split']} Hessian subset is empty "
                              f"(experiments.{name}.hessian.{hessian['split']}_samples = 0)")
        budget = hessian["budget"] or 2 * dims[-1]
        if hessian["method"] == "block_krylov" and budget < dims[-1]:
            raise ConfigError(f"config key '{key}.hessian.budget': {budget} products cannot give the "
                              f"{dims[-1]} eigenvectors hessian_topd needs at d = {dims[-1]}")
        if hessian["method"] == "block_krylov" and budget // hessian["passes"] < 1:
            raise ConfigError(f"config key '{key}.hessian.passes': {hessian['passes']} passes for {budget} products "
                              "leave an empty block")
        if hessian["method"] == "block_krylov" and budget // hessian["passes"] > dim:
            raise ConfigError(f"config key '{key}.hessian.passes': blocks of {budget // hessian['passes']} columns "
                              f"exceed D = {dim}; raise passes")
        if hessian["method"] == "exact" and dim > 20000:
            raise ConfigError(f"config key '{key}.hessian.method': exact needs a dense D x D matrix, D = {dim}; "
                              "use block_krylov")


def check_dof_quadratic(quad: Mapping[str, Any]) -> None:
    key = "dof_quadratic"
    for i, spectrum in enumerate(quad["spectra"]):
        if spectrum["low"] > spectrum["high"]:
            raise ConfigError(f"config key '{key}.spectra[{i}].low': {spectrum['low']} > high = {spectrum['high']}")
    if quad["eps"]["low"] >= quad["eps"]["high"]:
        raise ConfigError(f"config key '{key}.eps.low': must be below eps.high")
    if quad["dims"] is not None and max(quad["dims"]) > quad["dim"]:
        raise ConfigError(f"config key '{key}.dims': d = {max(quad['dims'])} exceeds dim = {quad['dim']}")


def load_config(*paths: Path | str, overrides: Mapping | None = None) -> dict:
    """Load and deep-merge YAML files (later ones win, like ``--configfile``) and validate."""
    merged: dict = {}
    for p in paths:
        with open(p) as fh:
            deep_update(merged, yaml.safe_load(fh) or {})
    if overrides:
        deep_update(merged, dict(overrides))
    return validate_config(merged)


def deep_update(base: dict, new: Mapping) -> dict:
    """Recursive dict merge in place; lists and scalars are replaced (Snakemake's semantics)."""
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base
