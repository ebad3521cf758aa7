"""Config validation: defaults filled, unknown keys and wrong types named."""

import pytest
import yaml

from hessmask.config import ConfigError, deep_update, load_config, validate_config


def test_defaults_filled(repo):
    cfg = validate_config({})
    assert cfg["results"] == "results"
    assert cfg["synthetic"]["samples"] == 50
    assert {g["name"] for g in cfg["synthetic"]["grids"]} == {"vs_D", "vs_ratio", "table"}


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
        ({"synthetic": {"grids": [{"name": "a", "D": [8], "ratios": [1.5]}]}}, "synthetic.grids[0].ratios[0]"),
        ({"synthetic": {"grids": [{"name": "a", "D": [8], "ratios": [0]}]}}, "synthetic.grids[0].ratios[0]"),
        ({"synthetic": {"grids": [{"name": "a", "D": [0], "ratios": [0.5]}]}}, "synthetic.grids[0].D[0]"),
        ({"synthetic": {"grids": [{"name": "a", "D": [8], "ratios": [0.5, 0.5]}]}}, "synthetic.grids[0].ratios"),
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
def test_every_overlay_valid(repo, overlay):
    load_config(repo / "config.yaml", repo / "configs" / overlay)


def _experiment(**changes):
    exp = {"model": "3c3d", "dataset": "synthetic", "record_steps": [0], "train": {"steps": 0}}
    return {"experiments": {"big": deep_update(exp, changes)}}


@pytest.mark.parametrize(
    "changes,key,text",
    [
        ({"eigen": {"exact": True}}, "experiments.big.eigen.exact", "dense exact solve of D = 895210"),
        ({"eigen": {"exact": False, "sketch": {"outer": 100}}, "metrics": {"summary_rho": 0.001}},
         "experiments.big.metrics.summary_rho", "exceeds the 100 eigenpairs"),
    ],
)
def test_impossible_eigen_settings_name_the_key(changes, key, text):
    with pytest.raises(ConfigError) as info:
        validate_config(_experiment(**changes))
    assert f"'{key}'" in str(info.value) and text in str(info.value)


def test_hessian_subset_smaller_than_the_classes_is_valid():
    cfg = validate_config(_experiment(model="resnet18", hessian={"train_samples": 0, "test_samples": 2},
                                      eigen={"exact": False, "sketch": {"outer": 16, "inner": 32}},
                                      metrics={"summary_rho": 0.000001}))
    assert cfg["experiments"]["big"]["hessian"]["test_samples"] == 2
