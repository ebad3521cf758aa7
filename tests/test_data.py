"""Datasets: verified downloads from a local HTTP server, parsers, splits and subsets."""

import gzip
import hashlib
import http.server
import io
import pickle
import tarfile
import threading
from functools import partial

import numpy as np
import pytest
import torch

from hessmask import data as hd


@pytest.fixture
def server(tmp_path):
    """A file server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def write_mnist(root, n_train=30, n_test=20):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28)), "y_train": np.arange(n_train) % 10,
        "x_test": rng.integers(0, 256, (n_test, 28, 28)), "y_test": np.arange(n_test) % 10,
    }
    sources = []
    for key, name in hd.MNIST_FILES.items():
        blob = idx_bytes(arrays[key])
        (root / name).write_bytes(blob)
        sources.append({"name": name, "checksum": md5(blob)})
    return arrays, sources


def cifar_tarball(classes: int, n_per_batch=8) -> bytes:
    rng = np.random.default_rng(1)
    label_key = b"labels" if classes == 10 else b"fine_labels"
    members = {f"data_batch_{i}": n_per_batch for i in range(1, 6)} if classes == 10 else {"train": 5 * n_per_batch}
    members["test_batch" if classes == 10 else "test"] = n_per_batch
    buf = io.BytesIO()
    folder = "cifar-10-batches-py" if classes == 10 else "cifar-100-python"
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, n in members.items():
            payload = pickle.dumps({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                    label_key: list(np.arange(n) % classes)})
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def test_download_verifies_and_is_atomic(server, tmp_path):
    root, url = server
    (root / "a.bin").write_bytes(b"hello")
    dest = tmp_path / "dl" / "a.bin"
    hd.download(f"{url}/a.bin", dest, md5(b"hello"))
    assert dest.read_bytes() == b"hello"
    # corrupted file: checksum mismatch, nothing left at dest
    (root / "b.bin").write_bytes(b"corrupt")
    with pytest.raises(hd.DataError, match="checksum mismatch for b.bin"):
        hd.download(f"{url}/b.bin", tmp_path / "dl" / "b.bin", md5(b"original"))
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["a.bin"]
    # missing file on the server
    with pytest.raises(hd.DataError, match="could not download .*missing.bin"):
        hd.download(f"{url}/missing.bin", tmp_path / "dl" / "missing.bin", md5(b""))
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["a.bin"]


def test_mirror_folder_and_url(server, tmp_path):
    root, url = server
    (root / "c.bin").write_bytes(b"mirror")
    assert hd.source_url("https://example.org/x/c.bin", url) == f"{url}/c.bin"
    hd.download("https://unreachable.invalid/x/c.bin", tmp_path / "c1.bin", md5(b"mirror"), mirror=url)
    hd.download("https://unreachable.invalid/x/c.bin", tmp_path / "c2.bin", md5(b"mirror"), mirror=str(root))
    assert (tmp_path / "c2.bin").read_bytes() == b"mirror"


def test_prepare_mnist_from_server(server, tmp_path):
    root, url = server
    arrays, files = write_mnist(root)
    config = {"dir": str(tmp_path / "data"), "mirror": None,
              "sources": {"mnist": [{"url": f"{url}/{f['name']}", "checksum": f["checksum"]} for f in files]}}
    out = hd.prepare_dataset("mnist", tmp_path / "data" / "mnist.npz", config)
    splits = hd.load_prepared(out, "mnist")
    assert tuple(splits.x_train.shape) == (30, 1, 16, 16) and tuple(splits.x_test.shape) == (20, 1, 16, 16)
    assert str(splits.x_train.dtype) == "torch.float32" and str(splits.y_train.dtype) == "torch.int64"
    assert 0.0 <= float(splits.x_train.min()) and float(splits.x_train.max()) <= 1.0
    np.testing.assert_array_equal(splits.y_test.numpy(), arrays["y_test"])


@pytest.mark.parametrize("classes,name", [(10, "cifar10"), (100, "cifar100")])
def test_prepare_cifar_from_server(server, tmp_path, classes, name):
    root, url = server
    blob = cifar_tarball(classes)
    (root / f"{name}.tar.gz").write_bytes(blob)
    config = {"dir": str(tmp_path / "data"), "mirror": None,
              "sources": {name: [{"url": f"{url}/{name}.tar.gz", "checksum": md5(blob)}]}}
    splits = hd.load_prepared(hd.prepare_dataset(name, tmp_path / f"{name}.npz", config), name)
    assert tuple(splits.x_train.shape) == (40, 3, 32, 32) and tuple(splits.x_test.shape) == (8, 3, 32, 32)
    assert splits.num_classes == classes
    # per-channel normalization from the train split
    np.testing.assert_allclose(splits.x_train.mean(dim=(0, 2, 3)).numpy(), 0.0, atol=1e-5)
    np.testing.assert_array_equal(splits.y_test.numpy(), np.arange(8) % classes)


def test_corrupt_parsers(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\x01\x02\x03\x04"))
    with pytest.raises(hd.DataError, match="not an IDX file"):
        hd.read_idx(bad)
    with pytest.raises(hd.DataError, match="not a readable CIFAR"):
        hd.read_cifar_tarball(bad, 10)


def test_missing_prepared_file(tmp_path):
    with pytest.raises(hd.DataError, match="prepare_dataset"):
        hd.load_prepared(tmp_path / "none.npz", "mnist")


def test_imagenet_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    for split in ("train", "val"):
        for cls in ("n01", "n02", "n03"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 256, (300, 260, 3), dtype=np.uint8)).save(folder / f"{i}.JPEG")
    data = hd.ImageNetData(tmp_path)
    assert data.num_classes == 3 and data.size("train") == 6
    x, y = data.batch("test", [0, 5])
    assert tuple(x.shape) == (2, 3, 224, 224) and y.tolist() == [0, 2]
    parallel = hd.ImageNetData(tmp_path, workers=4)  # decoding threads: the same batch, in order
    px, py = parallel.batch("train", [5, 0, 3, 1])
    sx, sy = data.batch("train", [5, 0, 3, 1])
    assert torch.equal(px, sx) and py.tolist() == sy.tolist() == [2, 0, 1, 0]
    with pytest.raises(hd.DataError, match="imagenet_root"):
        hd.ImageNetData(tmp_path / "nowhere")


def test_mnist5k_split():
    arrays = hd.prepare_mnist5k(seed=12345)
    assert arrays["x_train"].shape == (4000, 1, 16, 16) and arrays["x_test"].shape == (1000, 1, 16, 16)
    assert np.bincount(arrays["y_train"]).tolist() == [400] * 10
    assert np.bincount(arrays["y_test"]).tolist() == [100] * 10
    again = hd.prepare_mnist5k(seed=12345)
    np.testing.assert_array_equal(arrays["x_test"], again["x_test"])


def test_class_balanced_indices():
    labels = np.array([0, 1, 0, 2, 1, 0, 2, 2, 1])
    np.testing.assert_array_equal(hd.class_balanced_indices(labels, 6), [0, 1, 2, 3, 4, 6])
    # not a multiple of C: floor(5/3) = 1 of each class, one more of the first 5 mod 3 = 2 classes
    np.testing.assert_array_equal(hd.class_balanced_indices(labels, 5), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(hd.class_balanced_indices(labels, 2), [0, 1])  # fewer samples than classes
    with pytest.raises(ValueError, match="only 3"):
        hd.class_balanced_indices(labels, 12)


def test_corrupt_prepared_dataset_is_named(tmp_path):
    path = tmp_path / "mnist5k.npz"
    hd.save_prepared({"x_train": np.zeros((4, 1, 16, 16), np.float32), "y_train": np.zeros(4, np.int64),
                      "x_test": np.zeros((4, 1, 16, 16), np.float32), "y_test": np.zeros(4, np.int64)}, path)
    assert hd.load_prepared(path, "mnist5k").x_train.shape == (4, 1, 16, 16)
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[:-40])  # truncated
    with pytest.raises(hd.DataError, match=rf"mnist5k.npz is {size - 40} bytes, {size} when it was written.*rm -r"):
        hd.load_prepared(path, "mnist5k")
