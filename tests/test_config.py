"""Config validation: defaults filled, unknown keys and wrong types named."""

import copy

import pytest
import yaml

from hessmask.config import ConfigError, deep_update, load_config, validate_config


def test_defaults_filled(repo):
    cfg = validate_config({})
    assert cfg["results"] == "results"
    assert cfg["synthetic"]["samples"] == 50
    assert {g["name"] for g in cfg["synthetic"]["grids"]} == {"vs_D", "vs_rho", "table"}


def test_default_config_is_valid(repo):
    cfg = load_config(repo / "config.yaml")
    assert cfg["synthetic"]["seed"] == 12345


@pytest.mark.parametrize("overlay", ["ci.yaml", "paper.yaml"])
def test_overlays_valid(repo, overlay):
    load_config(repo / "config.yaml", repo / "configs" / overlay)


@pytest.mark.parametrize(
    "bad,key",
    [
        ({"synthetc": {}}, "synthetc"),
        ({"synthetic": {"sample": 3}}, "synthetic.sample"),
        ({"synthetic": {"samples": "many"}}, "synthetic.samples"),
        ({"synthetic": {"samples": 2.5}}, "synthetic.samples"),
        ({"synthetic": {"grids": [{"name": "a", "D": [8], "rho": [1.5]}]}}, "synthetic.grids[0].rho[0]"),
        ({"synthetic": {"grids": [{"name": "a", "D": [8], "rho": [0]}]}}, "synthetic.grids[0].rho[0]"),
        ({"synthetic": {"grids": [{"name": "a", "D": [0], "rho": [0.5]}]}}, "synthetic.grids[0].D[0]"),
        ({"synthetic": {"grids": [{"name": "a", "D": [8], "rho": [0.5, 0.5]}]}}, "synthetic.grids[0].rho"),
        ({"synthetic": {"modalities": ["OX"]}}, "synthetic.modalities[0]"),
    ],
)
def test_bad_values_name_the_key(bad, key):
    with pytest.raises(ConfigError) as info:
        validate_config(bad)
    assert f"'{key}'" in str(info.value)


def test_deep_update_replaces_lists():
    base = {"a": {"b": [1, 2], "c": 1}}
    deep_update(base, {"a": {"b": [3]}})
    assert base == {"a": {"b": [3], "c": 1}}


def test_schema_documents_every_key(repo):
    """Every property in the schema carries a description or is a grid item field."""
    schema = yaml.safe_load((repo / "schemas" / "config.schema.yaml").read_text())

    def walk(node, path):
        for name, sub in node.get("properties", {}).items():
            if path != "grid":
                assert "description" in sub, f"{path}.{name} lacks a description"
            walk(sub, name)
        if "items" in node and isinstance(node["items"], dict):
            walk(node["items"], "grid")

    walk(schema, "")


@pytest.mark.parametrize("overlay", ["rehearsal.yaml", "mnist16.yaml", "cifar10_3c3d.yaml", "cifar100_allcnnc.yaml",
                                     "imagenet_resnet18.yaml"])
def test_every_overlay_valid(repo, overlay, tmp_path):
    for split in ("train", "val"):  # an ImageNet tree in class-folder layout
        (tmp_path / split / "n01440764").mkdir(parents=True)
    load_config(repo / "config.yaml", repo / "configs" / overlay, overrides={"data": {"imagenet_root": str(tmp_path)}})


@pytest.mark.parametrize(
    "changes,data,key",
    [
        ({"train": {"batch_size": 64}, "synthetic_samples": 32}, {}, "experiments.big.train.batch_size"),
        ({"hessian": {"test_samples": 40}, "synthetic_samples": 32}, {}, "experiments.big.hessian.test_samples"),
        ({"dataset": "cifar10", "hessian": {"test_samples": 20000}}, {}, "experiments.big.hessian.test_samples"),
        ({"model": "resnet18", "dataset": "imagenet"}, {}, "data.imagenet_root"),
        ({"model": "resnet18", "dataset": "imagenet"}, {"imagenet_root": "/nonexistent"}, "data.imagenet_root"),
        ({}, {"mirror": "/nonexistent/mirror"}, "data.mirror"),
    ],
)
def test_errors_a_job_would_meet_are_raised_before_the_queue(changes, data, key):
    changes = deep_update({"eigen": {"methods": SKETCH_ONLY},
                           "metrics": {"summary_rho": 0.000001}, "train": {"batch_size": 8},
                           "hessian": {"train_samples": 0, "test_samples": 2}}, changes)
    config = _experiment(**changes)
    config["data"] = data
    with pytest.raises(ConfigError, match=f"'{key}'"):
        validate_config(config)


def test_test_matrix_kinds_come_from_the_library():
    """eigen.methods.seigh.kind accepts exactly hessmask.sketch.KINDS (the schema's enum is filled from
    it), defaults to sparse_sign, and an unknown kind names its key."""
    from hessmask.sketch import KINDS

    def config(**sketch):
        return _experiment(eigen={"methods": {**NO_EXACT, "seigh": {"outer": 16, "inner": 32, **sketch}}},
                           metrics={"summary_rho": 0.000001}, train={"batch_size": 8},
                           hessian={"train_samples": 0, "test_samples": 2}, synthetic_samples=32)

    for kind in KINDS:
        validate_config(config(kind=kind))
    assert validate_config(config())["experiments"]["big"]["eigen"]["methods"]["seigh"]["kind"] == "sparse_sign"
    with pytest.raises(ConfigError, match="'experiments.big.eigen.methods.seigh.kind'"):
        validate_config(config(kind="srht"))


#: the eigen methods of the large-D test experiments: no dense exact solve, a small sketch
NO_EXACT = {"exact": {"enabled": False}}
SKETCH_ONLY = {**NO_EXACT, "seigh": {"outer": 16, "inner": 32}}


def _experiment(**changes):
    exp = {"model": "3c3d", "dataset": "synthetic", "record_steps": [0], "train": {"steps": 0}}
    return {"experiments": {"big": deep_update(exp, changes)}}


@pytest.mark.parametrize(
    "changes,key,text",
    [
        ({"eigen": {"methods": {"exact": {"enabled": True}}}}, "experiments.big.eigen.methods.exact.enabled",
         "exact at D = 895210 needs about"),
        ({"eigen": {"methods": {**NO_EXACT, "seigh": {"outer": 100}}}, "metrics": {"summary_rho": 0.001}},
         "experiments.big.metrics.summary_rho", "exceeds the 100 eigenpairs of seigh"),
        ({"eigen": {"methods": {**NO_EXACT, "block_krylov": {"enabled": True, "budget": 4, "passes": 8}}}},
         "experiments.big.eigen.methods.block_krylov.passes", "leave an empty block"),
        ({"eigen": {"methods": {**NO_EXACT, "block_krylov": {"enabled": True, "steps": [5]}}}},
         "experiments.big.eigen.methods.block_krylov.steps", "are not in experiments.big.eigen.steps"),
        ({"eigen": {"methods": {**NO_EXACT, "block_krylov": {"enabled": True, "budget": 64, "k": 65}}}},
         "experiments.big.eigen.methods.block_krylov.k", "from a Krylov space of at most 64 dimensions"),
        ({"eigen": {"block_size": 64, "methods": {**NO_EXACT, "block_krylov": {"enabled": True, "shards": 3}}}},
         "experiments.big.eigen.methods.block_krylov.shards", "3 shards for only 2 blocks"),
        ({"eigen": {"methods": {**NO_EXACT, "seigh": {"outer": 16, "inner": 8}}}},
         "experiments.big.eigen.methods.seigh.inner", "8 < outer = 16"),
    ],
)
def test_impossible_eigen_settings_name_the_key(changes, key, text):
    with pytest.raises(ConfigError) as info:
        validate_config(_experiment(**changes))
    assert f"'{key}'" in str(info.value) and text in str(info.value)


def test_hessian_subset_smaller_than_the_classes_is_valid():
    cfg = validate_config(_experiment(model="resnet18", hessian={"train_samples": 0, "test_samples": 2},
                                      eigen={"methods": SKETCH_ONLY},
                                      metrics={"summary_rho": 0.000001}))
    assert cfg["experiments"]["big"]["hessian"]["test_samples"] == 2


def test_numbers_written_as_yaml_strings_are_numbers():
    """YAML 1.1 reads 1e-3 as a string; nested --config values arrive as strings."""
    cfg = validate_config(yaml.safe_load(
        "synthetic: {samples: '31'}\n"
        "experiments:\n  mlp_mnist5k:\n    model: mlp\n    dataset: mnist5k\n    record_steps: [0]\n"
        "    train: {steps: 0, lr: 1e-3, weight_decay: 1.0e-6}\n    masks: {rho: [1e-2, 5e-2]}\n"))
    exp = cfg["experiments"]["mlp_mnist5k"]
    assert cfg["synthetic"]["samples"] == 31 and exp["train"]["lr"] == 0.001
    assert exp["train"]["weight_decay"] == 1e-6 and exp["masks"]["rho"] == [0.01, 0.05]
    with pytest.raises(ConfigError, match="'synthetic.samples'"):
        validate_config({"synthetic": {"samples": "3.5"}})  # a float string is still no integer


def _pins(lines):
    """name -> version of the `name==version` lines (local version tags such as +cpu dropped)."""
    import re

    pins = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^+\s]+)(\+\S+)?", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


@pytest.mark.parametrize("env", ["cpu.yaml", "gpu.yaml"])
def test_conda_envs_pin_the_tested_dependencies(repo, env):
    """Each conda env lists exactly the package's dependencies (less snakemake, which runs the jobs),
    each pinned to the version `make install` installs: constraints.txt, and TORCH_SPEC for torch."""
    import re
    import tomllib

    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in project} - {"snakemake"}
    conda = yaml.safe_load((repo / "envs" / env).read_text())["dependencies"]
    pip_section = next(d["pip"] for d in conda if isinstance(d, dict))
    pinned = _pins(pip_section)
    assert set(pinned) == wanted
    tested = _pins((repo / "constraints.txt").read_text().splitlines())
    tested["torch"] = re.search(r"TORCH_SPEC \?= torch==([0-9.]+)", (repo / "Makefile").read_text()).group(1)
    assert {name: tested[name] for name in wanted} == pinned
    for spec in project:  # the tested versions satisfy pyproject's ranges
        name = re.split(r"[<>=!~ \[]", spec)[0].lower()
        if name in pinned:
            from packaging.specifiers import SpecifierSet

            assert SpecifierSet(spec[len(name):]).contains(pinned[name]), spec


def test_the_snakemake_process_never_imports_torch():
    """The rules' helpers (config schema, job grid, training segments, method names) are
    torch-free: building the DAG does not import torch (`snakemake -n` starts in about 1.5 s
    instead of 3.7 s, for every invocation and, under SLURM, every job)."""
    import subprocess
    import sys
    from pathlib import Path

    program = ("import atexit, runpy, sys\n"
               "atexit.register(lambda: print('torch imported:', 'torch' in sys.modules))\n"
               "sys.argv = ['snakemake', '-n', '--quiet']\n"
               "runpy.run_module('snakemake', run_name='__main__')\n")
    out = subprocess.run([sys.executable, "-c", program], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True)
    assert "torch imported: False" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize(
    "eigen,old,new",
    [
        ({"exact": False}, "experiments.big.eigen.exact", "experiments.big.eigen.methods.exact.enabled"),
        ({"exact_steps": [0]}, "experiments.big.eigen.exact_steps", "experiments.big.eigen.methods.exact.steps"),
        ({"exact_k": 10}, "experiments.big.eigen.exact_k", "experiments.big.eigen.methods.exact.k"),
        ({"sketch": {"outer": 16}}, "experiments.big.eigen.sketch", "experiments.big.eigen.methods.seigh"),
        ({"block_krylov": {"enabled": True}}, "experiments.big.eigen.block_krylov",
         "experiments.big.eigen.methods.block_krylov"),
    ],
)
def test_keys_of_the_earlier_shape_name_their_new_spelling(eigen, old, new):
    with pytest.raises(ConfigError) as info:
        validate_config(_experiment(eigen=eigen))
    assert f"'{old}' was renamed: write it as '{new}" in str(info.value)


def test_renamed_synthetic_and_dof_keys_are_named():
    with pytest.raises(ConfigError, match=r"'synthetic.grids\[0\].ratios' was renamed: write it as "
                                          r"'synthetic.grids\[0\].rho'"):
        validate_config({"synthetic": {"grids": [{"name": "a", "D": [8], "ratios": [0.5]}]}})
    with pytest.raises(ConfigError, match="'synthetic.figure_ratios' was renamed: write it as 'synthetic.figure_rho'"):
        validate_config({"synthetic": {"figure_ratios": [0.5]}})
    with pytest.raises(ConfigError, match="'experiments.big.dof.methods' was renamed: write it as "
                                          "'experiments.big.dof.subspaces"):
        validate_config(_experiment(dof={"methods": ["burn_in"]}))


def test_eigen_defaults_are_resolved_once_into_the_config():
    """Every default of an eigen method is filled into the validated config (the one place they are
    resolved): the steps, the sketch's inner size, the exact solve's k, block Krylov's budget and k."""
    cfg = validate_config(_experiment(model="mlp", dataset="mnist5k", record_steps=[0, 5], train={"steps": 5},
                                      eigen={"steps": [5], "methods": {"block_krylov": {"enabled": True}}},
                                      masks={"rho": [0.01, 0.2]}))
    eigen = cfg["experiments"]["big"]["eigen"]
    assert eigen["steps"] == [5] and all(eigen["methods"][m]["steps"] == [5] for m in eigen["methods"])
    assert eigen["methods"]["seigh"]["inner"] == 710 and eigen["methods"]["exact"]["k"] == 1406
    assert eigen["methods"]["block_krylov"]["budget"] == 710 and eigen["methods"]["block_krylov"]["k"] == 355
    from hessmask.config import eigen_specs

    specs = eigen_specs(cfg["experiments"]["big"])
    assert specs["exact"].dtype == "float64" and specs["seigh"].dtype == "float32"  # the block overrides eigen.dtype
    assert "aposteriori_samples" not in specs["exact"].params()  # the exact solve does not read it: no rerun key
    assert validate_config(cfg) == cfg  # resolving again changes nothing


@pytest.mark.parametrize(
    "changes,key,text",
    [
        ({"train": {"lr": float("nan")}}, "experiments.big.train.lr", "nan is not a finite number"),
        ({"train": {"lr": yaml.safe_load(".inf")}}, "experiments.big.train.lr", "inf is not a finite number"),
        ({"dof": {"lr": float("inf")}}, "experiments.big.dof.lr", "inf is not a finite number"),
        ({"train": {"seed": 2**63}}, "experiments.big.train.seed", "is outside [0, 2^62 - 1]"),
        ({"eigen": {"methods": {**NO_EXACT, "seigh": {"outer": 16, "inner": 32, "seed": 2**62}}}},
         "experiments.big.eigen.methods.seigh.seed", "is outside [0, 2^62 - 1]"),
        ({"masks": {"rho": [0.01, 0.01]}}, "experiments.big.masks.rho", "non-unique"),
    ],
)
def test_numbers_seeds_and_lists_are_checked(changes, key, text):
    base = {"eigen": {"methods": copy.deepcopy(SKETCH_ONLY)}, "metrics": {"summary_rho": 0.000001},
            "train": {"batch_size": 8}, "hessian": {"train_samples": 0, "test_samples": 2}, "synthetic_samples": 32}
    with pytest.raises(ConfigError) as info:
        validate_config(_experiment(**deep_update(base, changes)))
    assert f"'{key}'" in str(info.value) and text in str(info.value)


@pytest.mark.parametrize("name", ["dof", "synthetic", "figures", "benchmarks", "logs"])
def test_experiment_names_that_are_result_folders_are_refused(name):
    config = _experiment(eigen={"methods": SKETCH_ONLY}, metrics={"summary_rho": 0.000001}, train={"batch_size": 8},
                         hessian={"train_samples": 0, "test_samples": 2}, synthetic_samples=32)
    config["experiments"] = {name: config["experiments"]["big"]}
    with pytest.raises(ConfigError, match=f"'experiments.{name}': '{name}' names a folder of the results"):
        validate_config(config)


def test_an_empty_mirror_is_named_before_any_job(tmp_path):
    """A dataset still to be downloaded needs its files in the mirror; a prepared one does not."""
    mirror, data = tmp_path / "mirror", tmp_path / "data"
    mirror.mkdir()
    config = {"data": {"mirror": str(mirror), "dir": str(data)},
              "experiments": {"full": {"model": "mlp", "dataset": "mnist", "record_steps": [0], "train": {"steps": 0}}}}
    with pytest.raises(ConfigError, match=r"'data.mirror': .* lacks the files of mnist the run must download: "
                                          r"train-images-idx3-ubyte.gz, train-labels"):
        validate_config(config)
    data.mkdir()
    (data / "mnist.npz").write_bytes(b"prepared")
    validate_config(config)  # prepared: the mirror is not needed
