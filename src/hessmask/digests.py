"""What every written file of the study carries so that its readers can check it: digests and manifests.

A zarr store gets, when it is published, a content digest (``attrs["content_digest"]``: sha256 over
the relative path and bytes of every file, the root metadata included with that one attribute left
out) and a manifest (``manifest.json`` in the store's folder: every file with its size, and the
sha256 of every metadata file). A checkpoint or prepared data file gets a sidecar ``<file>.sha256``
(its sha256 and size). Readers check before they compute (:func:`check_store`, :func:`check_file`):
a missing, truncated, resized or altered file stops the job with the file, what differs and the
command that rebuilds it. Checking a store's manifest costs a listing and a few small reads
whatever its size; its full digest is compared where the store is at most
``FULL_CHECK_BYTES`` (a 70 GB ResNet-18 eigen store would take about a minute to hash: ``make
verify`` does that, and every chunk a job reads is also checked against its own zstd checksum).
Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

#: the manifest's name inside a store's folder
MANIFEST = "manifest.json"
#: files of a store folder that are neither hashed nor listed: the manifest, Snakemake's marker
SKIPPED = (MANIFEST, ".snakemake_timestamp")
#: stores of at most this many bytes have their full content digest checked whenever they are opened
FULL_CHECK_BYTES = 64 * 2**20
#: the attribute of a store's root metadata that holds its content digest (left out of the digest)
DIGEST_ATTRIBUTE = "content_digest"


class CorruptFile(RuntimeError):
    """A file or store that is missing a part, was truncated or altered since it was written: the
    message names it, what differs, and how to rebuild it."""


def rebuild_hint(path: Path | str) -> str:
    """How to rebuild a damaged output: delete it; the workflow's next run writes it again."""
    return (f"delete it and let the workflow rebuild it: rm -r '{path}' && snakemake (or: snakemake --forcerun "
            f"'{path}'); `make verify` lists every damaged file of a run")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path | str) -> str:
    """sha256 of a file's bytes, read in 8 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(8 * 2**20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- single files


def sidecar(path: Path | str) -> Path:
    """The digest file of ``path``: ``<path>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def write_file_digest(path: Path | str) -> Path:
    """Record the sha256 and size of ``path`` in its sidecar, atomically."""
    path = Path(path)
    target = sidecar(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(f"sha256:{sha256_file(path)} {path.stat().st_size}\n")
    os.replace(tmp, target)
    return target


def check_file(path: Path | str, what: str = "file") -> None:
    """Refuse ``path`` unless its size and sha256 are those its sidecar recorded when it was written.

    Raises:
        FileNotFoundError: if the file is missing.
        CorruptFile: if its sidecar is missing or unreadable, or its size or digest differ.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} is missing; run the rule that writes it")
    digest_file = sidecar(path)
    try:
        recorded, size = digest_file.read_text().split()
        size = int(size)
    except (OSError, ValueError):
        raise CorruptFile(f"{what} {path} has no readable digest ({digest_file.name}): written by an earlier version, "
                          f"or the digest was deleted; {rebuild_hint(path)}") from None
    actual = path.stat().st_size
    if actual != size:
        raise CorruptFile(f"{what} {path} is {actual} bytes, {size} when it was written (truncated or replaced); "
                          f"{rebuild_hint(path)}")
    if f"sha256:{sha256_file(path)}" != recorded:
        raise CorruptFile(f"{what} {path} differs from the file that was written (its sha256 is not the one in "
                          f"{digest_file.name}); {rebuild_hint(path)}")


# ----------------------------------------------------------------------------- stores


def store_files(path: Path | str) -> Iterator[tuple[str, Path]]:
    """(relative path, file) of every file of a store but ``SKIPPED``, sorted."""
    path = Path(path)
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path).as_posix()
        if relative not in SKIPPED:
            yield relative, file


def canonical_root(data: bytes) -> bytes:
    """The root metadata of a store without its content digest, in a stable spelling."""
    meta = json.loads(data)
    meta.get("attributes", {}).pop(DIGEST_ATTRIBUTE, None)
    return json.dumps(meta, sort_keys=True).encode()


def _file_bytes(relative: str, file: Path) -> bytes:
    data = file.read_bytes()
    return canonical_root(data) if relative == "zarr.json" else data


def content_digest(path: Path | str) -> str:
    """sha256 over the relative path and bytes of every file of a store (the root metadata without
    its own digest): a changed, truncated or deleted chunk, or edited metadata, changes it."""
    digest = hashlib.sha256()
    for relative, file in store_files(path):
        digest.update(relative.encode() + b"\0" + _file_bytes(relative, file) + b"\0")
    return digest.hexdigest()


def write_manifest(path: Path | str) -> dict:
    """Write ``manifest.json`` into a finished store: every file's size, every metadata file's sha256."""
    files = {}
    for relative, file in store_files(path):
        entry = {"size": file.stat().st_size}
        if file.name == "zarr.json":
            entry["sha256"] = sha256_bytes(_file_bytes(relative, file))
        files[relative] = entry
    manifest = {"files": files, "bytes": sum(f["size"] for f in files.values())}
    (Path(path) / MANIFEST).write_text(json.dumps(manifest, sort_keys=True, indent=0) + "\n")
    return manifest


def check_store(path: Path | str, full: bool | None = None) -> None:
    """Refuse a store that is not as it was written: every file of its manifest present with its
    size, no file added, every metadata file (the root's attributes included) unaltered, and, where
    the store is at most ``FULL_CHECK_BYTES`` or ``full`` is True, its content digest.

    Raises:
        FileNotFoundError: if there is no store at ``path``.
        CorruptFile: naming the store, what differs and how to rebuild it.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no zarr store at {path}; run the workflow rule that produces it")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        listed = manifest["files"]
    except (OSError, ValueError, KeyError):
        raise CorruptFile(f"store {path} has no readable {MANIFEST}: written by an earlier version, or damaged; "
                          f"{rebuild_hint(path)}") from None
    present = dict(store_files(path))
    missing = sorted(set(listed) - set(present))
    added = sorted(set(present) - set(listed))
    if missing or added:
        parts = ([f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}"] if missing else []) + (
            [f"not written with it {added[:5]}"] if added else [])
        raise CorruptFile(f"store {path} has files that differ from its manifest ({'; '.join(parts)}); "
                          f"{rebuild_hint(path)}")
    for relative, entry in listed.items():
        file = present[relative]
        if "sha256" in entry:  # metadata: its content (the root's attributes included)
            if sha256_bytes(_file_bytes(relative, file)) != entry["sha256"]:
                raise CorruptFile(f"store {path}: the metadata {relative} was altered since the store was written; "
                                  f"{rebuild_hint(path)}")
            continue
        size = file.stat().st_size
        if size != entry["size"]:
            raise CorruptFile(f"store {path}: {relative} is {size} bytes, {entry['size']} when written (truncated or "
                              f"replaced); {rebuild_hint(path)}")
    if full or (full is None and manifest.get("bytes", 0) <= FULL_CHECK_BYTES):
        recorded = json.loads((path / "zarr.json").read_bytes()).get("attributes", {}).get(DIGEST_ATTRIBUTE)
        if recorded is None:
            raise CorruptFile(f"store {path} records no content digest; {rebuild_hint(path)}")
        if content_digest(path) != recorded:
            raise CorruptFile(f"store {path}: the content of a chunk differs from the one written (its content digest "
                              f"is not the recorded one); {rebuild_hint(path)}")
