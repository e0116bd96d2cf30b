"""Fetch the REAL test assets that package registries carry (PyPI sdists and packages), into a cache.

    python tools/fetch_test_assets.py DIR

Writes into DIR:
  scrfd.onnx                      the real SCRFD 2.5G-KPS detector from the `scrfd==0.3.0` sdist
  solvay_conference_1927.jpg, newton.png, gauss.png     photos from the same sdist
  truth_faces.json                newton/gauss ground truth (bbox + 5 keypoints), from its tests
  astronaut.png, camera.png       from scikit-image's bundled data
  assets.json                     what was fetched, with SHA-256s; a second run with all files intact
                                  does nothing (the cache)
Nothing here is committed: several weights are licensed for non-commercial research only.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

SCRFD_SDIST = "scrfd==0.3.0"
SCRFD_SDIST_SHA256 = "35855c664d565492aab0068f1c64b4957a15ca6cd106b9c8b1642d67cfeeb5fc"
SCRFD_MODEL_SHA256 = "9c162a817c7dd32d35d1f1c6ae6445032d6e73c6c5fe61d8b5b663ba8bc86b30"
SDIST_MEMBERS = {
    "models/scrfd.onnx": "scrfd.onnx",
    "images/solvay_conference_1927.jpg": "solvay_conference_1927.jpg",
    "images/newton.png": "newton.png",
    "images/gauss.png": "gauss.png",
}
MANIFEST = "assets.json"


class AssetError(Exception):
    pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cached(directory: Path) -> bool:
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return False
    files = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
    return bool(files) and all(
        (directory / name).is_file() and _sha256(directory / name) == digest for name, digest in files.items()
    )


def _download_sdist(workdir: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        SCRFD_SDIST,
        "-d",
        str(workdir),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    archives = list(workdir.glob("scrfd-*.tar.gz"))
    if result.returncode != 0 or not archives:
        raise AssetError(f"pip could not download {SCRFD_SDIST}: {result.stderr.strip()[-500:]}")
    if _sha256(archives[0]) != SCRFD_SDIST_SHA256:
        raise AssetError(f"{archives[0].name} does not have the expected SHA-256; refusing to use it")
    return archives[0]


def _truth_from_source(source: str) -> dict[str, list[dict[str, object]]]:
    """Read the sdist's tests/truth_faces.py without importing it (it imports the scrfd package)."""

    def value(node: ast.expr) -> object:
        if isinstance(node, ast.Call):
            return {kw.arg: value(kw.value) for kw in node.keywords}
        if isinstance(node, ast.List):
            return [value(item) for item in node.elts]
        if isinstance(node, ast.Dict):
            return {value(k): value(v) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
        return ast.literal_eval(node)

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "TRUTH_FACES":
            assert node.value is not None
            truth = value(node.value)
            assert isinstance(truth, dict)
            return truth
    raise AssetError("TRUTH_FACES not found in the scrfd sdist's tests/truth_faces.py")


def _extract(archive: Path, directory: Path) -> None:
    with tarfile.open(archive) as tar:
        prefix = tar.getnames()[0].split("/")[0]
        for member, target in SDIST_MEMBERS.items():
            handle = tar.extractfile(f"{prefix}/{member}")
            if handle is None:
                raise AssetError(f"{archive.name} has no {member}")
            (directory / target).write_bytes(handle.read())
        truth_handle = tar.extractfile(f"{prefix}/tests/truth_faces.py")
        if truth_handle is None:
            raise AssetError(f"{archive.name} has no tests/truth_faces.py")
        truth = _truth_from_source(truth_handle.read().decode("utf-8"))
    (directory / "truth_faces.json").write_text(json.dumps(truth, indent=2), encoding="utf-8")
    if _sha256(directory / "scrfd.onnx") != SCRFD_MODEL_SHA256:
        raise AssetError("scrfd.onnx from the sdist does not have the expected SHA-256")


def _skimage_images(directory: Path) -> None:
    try:
        from PIL import Image
        from skimage import data
    except ImportError as exc:
        raise AssetError(f"scikit-image and Pillow are needed for the sample photos: {exc}") from exc
    Image.fromarray(data.astronaut()).save(directory / "astronaut.png")
    Image.fromarray(data.camera()).save(directory / "camera.png")


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an OS lock on `lock_path` (released on exit or when the process dies), so that processes
    fetching into the same folder at once (pytest-xdist workers) fetch it once, one after the other."""
    with lock_path.open("a+b") as handle:
        if os.name == "nt":
            import msvcrt

            handle.seek(0)
            while True:
                try:
                    msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after ten seconds: keep waiting
                    continue
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if os.name == "nt":
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def fetch(directory: Path, sample_photos: bool = True) -> Path:
    """Fetch into `directory` (a no-op when its files are intact). `sample_photos=False` skips the
    scikit-image photos, for machines without scikit-image (the benchmark needs only the sdist).

    Safe to call from several processes at once: one fetches while the others wait for it, and each
    file (the manifest last) is moved into place whole, so a reader never sees a half-written one."""
    directory.mkdir(parents=True, exist_ok=True)
    if _cached(directory):
        return directory
    with _exclusive(directory.with_name(directory.name + ".lock")):
        if _cached(directory):  # another process fetched it while this one waited
            return directory
        with tempfile.TemporaryDirectory(dir=directory.parent, prefix=f".{directory.name}-") as tmp:
            staging = Path(tmp) / "files"
            staging.mkdir()
            _extract(_download_sdist(Path(tmp)), staging)
            names = [*SDIST_MEMBERS.values(), "truth_faces.json"]
            if sample_photos:
                _skimage_images(staging)
                names += ["astronaut.png", "camera.png"]
            manifest = {
                "source": {SCRFD_SDIST: SCRFD_SDIST_SHA256, "scikit-image": "skimage.data"},
                "files": {name: _sha256(staging / name) for name in names},
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            for name in [*names, MANIFEST]:
                (staging / name).replace(directory / name)
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    try:
        fetch(args.directory)
    except AssetError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(f"test assets ready in {args.directory}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
