"""The four networks of the study, defined here (no torchvision import).

- ``mlp``: 256-20-20-20-20-20-10 with tanh after each hidden layer, D = 7030 (seed 000).
- ``3c3d``: DeepOBS's CIFAR-10 3c3d (three conv, three dense layers), D = 895,210.
- ``allcnnc``: DeepOBS's All-CNN-C for CIFAR-100 (Springenberg et al. 2015), D = 1,387,108.
- ``resnet18``: the ImageNet ResNet-18 (He et al. 2016) with BatchNorm, D = 11,689,512.
- ``mlp_tiny``: 256-8-10 with tanh, D = 2146: the same input as ``mlp`` at a size whose exact
  Hessian takes seconds (tests and the CI config).

Parameters are initialized from an explicit seed (``build_model(name, seed)``), so the same seed
gives bitwise the same network. Run ``python -m hessmask.models`` for the parameter counts.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hessmask.config import DEFAULT_CLASSES  # noqa: F401 (re-exported)

#: name -> input shape (C, H, W) at the paper's input size.
INPUT_SHAPES: dict[str, tuple[int, int, int]] = {
    "mlp": (1, 16, 16),
    "mlp_tiny": (1, 16, 16),
    "3c3d": (3, 32, 32),
    "allcnnc": (3, 32, 32),
    "resnet18": (3, 224, 224),
}


class MLP(nn.Module):
    """Fully connected tanh network; hidden widths as given, no activation after the last layer."""

    def __init__(self, in_features: int = 256, hidden: tuple[int, ...] = (20, 20, 20, 20, 20), classes: int = 10):
        super().__init__()
        widths = (in_features, *hidden)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Linear(widths[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = torch.tanh(layer(x))
        return self.out(x)


class TFSamePad(nn.Module):
    """TensorFlow 'same' padding for a k x k window of stride 2 on even inputs: pad right/bottom."""

    def __init__(self, value: float = 0.0):
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, 1, 0, 1), value=self.value)


class ThreeC3D(nn.Module):
    """DeepOBS 3c3d: conv64-5x5 valid, conv96-3x3 valid, conv128-3x3 same, each ReLU + maxpool
    3x3/2 'same'; dense 512, 256, classes."""

    def __init__(self, classes: int = 10):
        super().__init__()
        pool = lambda: nn.Sequential(TFSamePad(float("-inf")), nn.MaxPool2d(3, 2))  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 5), nn.ReLU(), pool(),
            nn.Conv2d(64, 96, 3), nn.ReLU(), pool(),
            nn.Conv2d(96, 128, 3, padding=1), nn.ReLU(), pool(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(3 * 3 * 128, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
            nn.Linear(256, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class AllCNNC(nn.Module):
    """DeepOBS All-CNN-C: dropout 0.2, 3x conv96, dropout 0.5, 3x conv192, dropout 0.5,
    conv192-3x3 valid, conv192-1x1, conv<classes>-1x1, ReLU after each, global average pool."""

    def __init__(self, classes: int = 100):
        super().__init__()
        conv = lambda a, b, k=3, s=1, p=1: [nn.Conv2d(a, b, k, s, p), nn.ReLU()]  # noqa: E731
        self.net = nn.Sequential(
            nn.Dropout(0.2),
            *conv(3, 96), *conv(96, 96), TFSamePad(), *conv(96, 96, s=2, p=0),
            nn.Dropout(0.5),
            *conv(96, 192), *conv(192, 192), TFSamePad(), *conv(192, 192, s=2, p=0),
            nn.Dropout(0.5),
            *conv(192, 192, p=0), *conv(192, 192, k=1, p=0), *conv(192, classes, k=1, p=0),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class ResNet18(nn.Module):
    """ImageNet ResNet-18 (torchvision layout and parameter order)."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, inplanes = [], 64
        for planes, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            layers.append(nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes)))
            inplanes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _init_deepobs(model: nn.Module, conv_bias: float) -> None:
    """DeepOBS initialization: Xavier-normal conv weights, Xavier-uniform dense weights."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_normal_(m.weight)
            nn.init.constant_(m.bias, conv_bias)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.constant_(m.bias, 0.0)


def _init_resnet(model: nn.Module) -> None:
    """torchvision's ResNet initialization: Kaiming-normal (fan_out) convs, unit BatchNorm."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _mlp(classes: int) -> nn.Module:
    return MLP(classes=classes)  # PyTorch's default Linear init, as in the authors' code


def _three_c3d(classes: int) -> nn.Module:
    model = ThreeC3D(classes)
    _init_deepobs(model, conv_bias=0.0)
    return model


def _allcnnc(classes: int) -> nn.Module:
    model = AllCNNC(classes)
    _init_deepobs(model, conv_bias=0.1)
    return model


def _resnet18(classes: int) -> nn.Module:
    model = ResNet18(classes)
    _init_resnet(model)
    return model


MODELS: dict[str, Callable[[int], nn.Module]] = {
    "mlp": _mlp,
    "mlp_tiny": lambda classes: MLP(hidden=(8,), classes=classes),
    "3c3d": _three_c3d,
    "allcnnc": _allcnnc,
    "resnet18": _resnet18,
}


def build_model(name: str, seed: int, classes: int | None = None) -> nn.Module:
    """A freshly initialized model; the same (name, seed, classes) gives bitwise the same weights."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    fork_devices: list = []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        return MODELS[name](DEFAULT_CLASSES[name] if classes is None else classes)


def num_parameters(model: nn.Module) -> int:
    """D: the number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def unflattener(named: Iterable[tuple[str, torch.Tensor]]) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """flat (D,) -> {name: view of flat in that parameter's shape}, for the given (name, parameter)
    pairs in their order (the layout of ``parameters_to_vector`` over them); names and shapes are
    read once, and each call is one ``torch.split`` (no copy). A flat vector of another length
    raises RuntimeError."""
    names, shapes = zip(*((name, p.shape) for name, p in named))
    sizes = [int(np.prod(shape)) for shape in shapes]

    def unflatten(flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: part.view(shape) for name, part, shape in zip(names, torch.split(flat, sizes), shapes)}

    return unflatten


#: parameter groups a magnitude mask can leave out (config key masks.exclude)
PARAMETER_GROUPS = ("normalization_scales", "biases")
_NORMALIZATION = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)


def parameter_groups(name: str, classes: int | None = None) -> dict[str, np.ndarray]:
    """Boolean (D,) masks of the parameter groups, in the flattened ``model.parameters()`` order:
    ``normalization_scales`` (the weights of normalization layers) and ``biases`` (every bias)."""
    model = build_model(name, seed=0, classes=classes)
    norm_weights = {id(m.weight) for m in model.modules() if isinstance(m, _NORMALIZATION) and m.weight is not None}
    groups = {group: [] for group in PARAMETER_GROUPS}
    for pname, param in model.named_parameters():
        if not param.requires_grad:
            continue
        size = param.numel()
        groups["normalization_scales"].append(np.full(size, id(param) in norm_weights))
        groups["biases"].append(np.full(size, pname.endswith("bias")))
    return {group: np.concatenate(parts) for group, parts in groups.items()}


def excluded_parameters(name: str, groups: list[str] | tuple[str, ...],
                        classes: int | None = None) -> np.ndarray | None:
    """The union of the named parameter groups as a boolean (D,), or None for no group."""
    if not groups:
        return None
    masks = parameter_groups(name, classes)
    unknown = sorted(set(groups) - set(masks))
    if unknown:
        raise ValueError(f"unknown parameter groups {unknown}; known: {list(PARAMETER_GROUPS)}")
    return np.logical_or.reduce([masks[g] for g in groups])


def main() -> None:
    """Print each model's name, input shape and parameter count D."""
    print(f"{'model':<10} {'input':<14} {'D':>12}")
    for name in MODELS:
        model = build_model(name, seed=0)
        print(f"{name:<10} {str(INPUT_SHAPES[name]):<14} {num_parameters(model):>12,}")


if __name__ == "__main__":
    main()
