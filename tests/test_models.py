"""Models: shapes, parameter counts, seeded initialization."""

import pytest
import torch

from hessmask.models import INPUT_SHAPES, MODELS, build_model, num_parameters

EXPECTED_D = {"mlp_tiny": 2146, "mlp": 7030, "3c3d": 895_210, "allcnnc": 1_387_108, "resnet18": 11_689_512}


@pytest.mark.parametrize("name", list(MODELS))
def test_parameter_count(name):
    assert num_parameters(build_model(name, seed=0)) == EXPECTED_D[name]


@pytest.mark.parametrize("name", ["mlp", "3c3d", "allcnnc"])
def test_output_shape(name):
    model = build_model(name, seed=0).eval()
    out = model(torch.zeros(3, *INPUT_SHAPES[name]))
    assert out.shape == (3, {"mlp": 10, "3c3d": 10, "allcnnc": 100}[name])


def test_resnet18_output_shape_small_input():
    # the network is fully convolutional up to the global pool; 64x64 keeps the test fast
    out = build_model("resnet18", seed=0).eval()(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 1000)


@pytest.mark.parametrize("name", list(MODELS))
def test_same_seed_same_init(name):
    a, b, c = build_model(name, 5), build_model(name, 5), build_model(name, 6)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg", 0)


def test_cli_prints_counts():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "hessmask.models"], capture_output=True, text=True, check=True).stdout
    assert "mlp" in out and "7,030" in out and "11,689,512" in out


def test_config_table_of_dims_matches_models():
    from hessmask.config import MODEL_DIMS

    assert MODEL_DIMS == EXPECTED_D
