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
    """The config schema, with the lists that the library owns filled in: the subspace methods of
    ``experiments.<name>.dof.methods`` (allowed values and default) are :data:`hessmask.dof.METHODS`,
    the test matrices of ``experiments.<name>.eigen.sketch.kind`` are :data:`hessmask.sketch.KINDS`."""
    from hessmask.dof_methods import METHODS
    from hessmask.eigen_methods import KINDS

    with open(path) as fh:
        schema = yaml.safe_load(fh)
    experiment = schema["definitions"]["experiment"]["properties"]
    methods = experiment["dof"]["properties"]["methods"]
    methods["items"]["enum"] = list(METHODS)
    methods["default"] = list(METHODS)
    experiment["eigen"]["properties"]["sketch"]["properties"]["kind"]["enum"] = list(KINDS)
    return schema


def validate_config(config: Mapping[str, Any], schema: Mapping | None = None) -> dict:
    """Return a validated copy of ``config`` with defaults filled in.

    Raises ConfigError naming the offending key for the first (most specific) violation; the
    message lists all violations when there are several.
    """
    schema = load_schema() if schema is None else schema
    filled = coerce_numbers(copy.deepcopy(dict(config)), schema)
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
    """The record steps whose Hessians are decomposed."""
    steps = exp["eigen"]["steps"]
    return list(exp["record_steps"]) if steps is None else list(steps)


def exact_steps(exp: Mapping[str, Any]) -> list[int]:
    """The decomposed steps that also get the exact solve (none if eigen.exact is off)."""
    if not exp["eigen"]["exact"]:
        return []
    steps = exp["eigen"]["exact_steps"]
    return eigen_steps(exp) if steps is None else list(steps)


def krylov_steps(exp: Mapping[str, Any]) -> list[int]:
    """The decomposed steps that also get the block Krylov solve (none if it is off)."""
    krylov = exp["eigen"]["block_krylov"]
    if not krylov["enabled"]:
        return []
    return eigen_steps(exp) if krylov["steps"] is None else list(krylov["steps"])


def hessian_splits(exp: Mapping[str, Any]) -> list[str]:
    """Splits with a non-empty Hessian subset."""
    return [s for s in ("train", "test") if exp["hessian"][f"{s}_samples"] > 0]


def sketch_sizes(exp: Mapping[str, Any]) -> tuple[int, int]:
    """(outer, inner) of the experiment's sketch."""
    sketch = exp["eigen"]["sketch"]
    return sketch["outer"], sketch["inner"] or 2 * sketch["outer"]


def exact_k(exp: Mapping[str, Any]) -> int:
    """Eigenvectors kept by the exact solve."""
    dim = MODEL_DIMS[exp["model"]]
    k = exp["eigen"]["exact_k"]
    return min(dim, k if k is not None else max(1, round(max(exp["masks"]["rho"]) * dim)))


def check_semantics(config: Mapping[str, Any]) -> None:
    """Cross-key checks the schema cannot express."""
    synthetic = config.get("synthetic", {})
    for i, grid in enumerate(synthetic.get("grids", [])):
        if len(set(grid["ratios"])) != len(grid["ratios"]):
            raise ConfigError(f"config key 'synthetic.grids[{i}].ratios': duplicate ratios {grid['ratios']}")
    for name, exp in config.get("experiments", {}).items():
        check_experiment(name, exp)
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
    extra = sorted(set(exact_steps(exp)) - set(eigen_steps(exp)))
    if extra:
        raise ConfigError(f"config key '{key}.eigen.exact_steps': {extra} are not in {key}.eigen.steps")
    dim = MODEL_DIMS[model]
    outer, inner = sketch_sizes(exp)
    if exp["eigen"]["sketch"]["enabled"]:
        if inner < outer:
            raise ConfigError(f"config key '{key}.eigen.sketch.inner': {inner} < outer = {outer}")
        if inner > dim:
            raise ConfigError(f"config key '{key}.eigen.sketch.inner': sketch size {inner} exceeds the "
                              f"D = {dim} parameters of {model}")
        shards = exp["eigen"]["sketch"]["shards"]
        blocks = -(-inner // exp["eigen"]["block_size"])
        if shards > blocks:
            raise ConfigError(f"config key '{key}.eigen.sketch.shards': {shards} shards for only {blocks} "
                              f"blocks of {exp['eigen']['block_size']} measurements; lower shards or block_size")
    krylov = exp["eigen"]["block_krylov"]
    if krylov["enabled"]:
        bkey = f"{key}.eigen.block_krylov"
        extra = sorted(set(krylov_steps(exp)) - set(eigen_steps(exp)))
        if extra:
            raise ConfigError(f"config key '{bkey}.steps': {extra} are not in {key}.eigen.steps")
        budget = krylov["budget"] or inner
        block = budget // krylov["passes"]
        if block < 1:
            raise ConfigError(f"config key '{bkey}.passes': {krylov['passes']} passes for a budget of {budget} "
                              "products leave an empty block")
        if block > dim:
            raise ConfigError(f"config key '{bkey}.budget': blocks of {block} columns exceed D = {dim}")
        k = krylov["k"] or outer
        if k > block * krylov["passes"]:
            raise ConfigError(f"config key '{bkey}.k': {k} Ritz pairs from a Krylov space of at most "
                              f"{block * krylov['passes']} dimensions")
        blocks = -(-block // exp["eigen"]["block_size"])
        if krylov["shards"] > blocks:
            raise ConfigError(f"config key '{bkey}.shards': {krylov['shards']} shards for only {blocks} blocks of "
                              f"{exp['eigen']['block_size']} products per pass; lower shards or eigen.block_size")
    if exp["eigen"]["exact_k"] is not None and exp["eigen"]["exact_k"] > dim:
        raise ConfigError(f"config key '{key}.eigen.exact_k': {exp['eigen']['exact_k']} exceeds D = {dim}")
    if exp["eigen"]["exact"] and exact_steps(exp):
        need_mb = 3 * 8 * dim * dim / 1e6  # the float64 matrix, eigh's eigenvectors and workspace
        if need_mb > exp["resources"]["eigen_mem_mb"]:
            raise ConfigError(f"config key '{key}.eigen.exact': the dense exact solve of D = {dim} needs about "
                              f"{need_mb / 1e3:,.0f} GB (3 D x D float64 matrices), more than "
                              f"{key}.resources.eigen_mem_mb = {exp['resources']['eigen_mem_mb']}; set "
                              f"{key}.eigen.exact: false (the sketched solve streams in bounded memory)")
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
    limits = []
    if exp["eigen"]["sketch"]["enabled"]:
        limits.append((sketch_sizes(exp)[0], f"{key}.eigen.sketch.outer"))
    if exp["eigen"]["exact"] and exact_steps(exp):
        limits.append((exact_k(exp), f"{key}.eigen.exact_k (or max of {key}.masks.rho)"))
    for limit, name in limits:
        if k > limit:
            raise ConfigError(f"config key '{key}.metrics.summary_rho': k = round({rho} x {dim}) = {k} exceeds "
                              f"the {limit} eigenpairs of {name}; lower summary_rho to at most "
                              f"{limit / dim:.3g} or raise {name}")


def checkpoint_steps(exp: Mapping[str, Any]) -> list[int]:
    """Every step a checkpoint is written at: the record steps, 0 and the final step."""
    return sorted({0, exp["train"]["steps"], *exp["record_steps"]})


def dof_levels(dof: Mapping[str, Any]) -> list[float]:
    """Accuracy levels of the degrees-of-freedom success probability."""
    levels = dof["accuracy_levels"]
    return [round(0.1 + 0.01 * i, 2) for i in range(91)] if levels is None else sorted(levels)


def dof_hessian_k(exp: Mapping[str, Any]) -> int:
    """Eigenvectors the eigen store hessian_topd reads holds."""
    return exact_k(exp) if exp["dof"]["hessian_method"] == "exact" else sketch_sizes(exp)[0]


def check_dof(name: str, exp: Mapping[str, Any]) -> None:
    """The degrees-of-freedom grid fits the experiment: steps exist, d fits every basis."""
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
    methods = dof["methods"]
    if "lottery_subspace" in methods:
        available = -(-exp["train"]["steps"] // dof["trajectory_every"])
        if dims[-1] > available:
            raise ConfigError(f"config key '{key}.dims': lottery_subspace at d = {dims[-1]} needs {dims[-1]} "
                              f"trajectory directions, but train.steps / trajectory_every gives {available}")
    if "hessian_topd" in methods:
        split, method, start = dof["hessian_split"], dof["hessian_method"], dof["start_step"]
        if exp["hessian"][f"{split}_samples"] == 0:
            raise ConfigError(f"config key '{key}.hessian_split': the {split} Hessian subset is empty "
                              f"(experiments.{name}.hessian.{split}_samples = 0)")
        solved = exact_steps(exp) if method == "exact" else (
            eigen_steps(exp) if exp["eigen"]["sketch"]["enabled"] else [])
        for field, values in (("start_step", [start]), ("start_steps", dof["start_steps"])):
            for t in values:
                if t not in solved:
                    raise ConfigError(f"config key '{key}.{field}': hessian_topd needs the {method} eigen store "
                                      f"at step {t}, solved only at {solved}")
        if dims[-1] > dof_hessian_k(exp):
            raise ConfigError(f"config key '{key}.dims': hessian_topd at d = {dims[-1]} needs that many "
                              f"eigenvectors; the {method} store holds {dof_hessian_k(exp)}")


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
