"""FaceBank: source faces from image files and folders, embeddings cached on disk.

- An image file is one source face, named by its file stem (`alice.jpg` -> `alice`);
  the largest face in it is used (with a warning when there are several).
- A sub-folder is one identity named by the folder (`bob/1.jpg, bob/2.png` -> `bob`):
  the embeddings of its images are averaged (raw: arithmetic mean; normed: the
  mean of the unit vectors, re-normalised). Its bad images are skipped with a
  warning; a folder with no usable image is an error.
- Each image's embedding is cached under `embeddings_cache_dir()` keyed by the
  SHA-256 of the file's bytes and the models used (ArcFace weights hash,
  detector, landmarker), so a renamed file still hits and changed weights miss.
- Bad input raises `SourceFaceError` naming the file and the fix; `load()` keeps
  the good ones and returns the messages.
- An embedding is checked (512 finite values, not zero) before it is cached or
  used; a cached one that fails the check is recomputed.
- Thread-safe: the TUI adds faces on a worker thread while the frame thread reads
  `faces`/`get` (a lock guards the name -> face table; the slow work runs outside it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from pathlib import Path

import cv2
import numpy as np

from livecam.errors import SourceFaceError
from livecam.face.embed import embedding_problem
from livecam.face.geometry import align_matrix, warp_crop
from livecam.face.types import SourceFace
from livecam.io.images import read_image_file
from livecam.paths import atomic_output, printable

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
THUMB = 96
EMBEDDING_DIM = 512
MAX_CACHE_MEMBER = 1 << 20  # the largest member written is the 27 KB thumbnail
DEFAULT_MAX_MP = 40.0


def read_image(path: Path, max_mp: float = DEFAULT_MAX_MP) -> np.ndarray:
    """BGR uint8 image, or SourceFaceError naming the file (too many pixels: refused before decoding)."""
    return read_image_file(path, printable(path), max_mp, SourceFaceError)


def _valid_cached(z) -> dict | None:
    """A cache entry's arrays when they have the shapes the bank writes, else None (recomputed)."""
    emb, thumb, warns = z["embedding"], z["thumbnail"], z["warnings"]
    if (emb.shape != (EMBEDDING_DIM,) or emb.dtype.kind != "f" or not np.all(np.isfinite(emb))
            or thumb.shape != (THUMB, THUMB, 3) or thumb.dtype != np.uint8
            or warns.ndim != 1 or warns.dtype.kind != "U" or warns.size > 16):
        return None
    return {"embedding": emb.astype(np.float32), "thumbnail": thumb, "warnings": warns.tolist()}


def _small_members(cache: Path) -> bool:
    """No member of the .npz inflates beyond what the bank writes (a zip bomb is not loaded)."""
    import zipfile

    with zipfile.ZipFile(cache) as zf:
        infos = zf.infolist()
        return len(infos) == 3 and all(i.file_size <= MAX_CACHE_MEMBER for i in infos)


def _normalize(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


class FaceBank:
    """Source faces by name, in the order they were added."""

    def __init__(self, analyser, cache_dir=None, min_face: int = 48):
        from livecam.paths import embeddings_cache_dir

        self.analyser = analyser
        self.cache_dir = Path(cache_dir) if cache_dir else embeddings_cache_dir()
        self.min_face = int(min_face)
        self._faces: dict[str, SourceFace] = {}
        self._lock = threading.Lock()

    # -- access ---------------------------------------------------------------
    @property
    def faces(self) -> list[SourceFace]:
        with self._lock:
            return list(self._faces.values())

    def names(self) -> list[str]:
        with self._lock:
            return list(self._faces)

    def get(self, name: str) -> SourceFace | None:
        """The face named `name` (a file stem or folder name), or None."""
        with self._lock:
            return self._faces.get(name)

    def __len__(self) -> int:
        with self._lock:
            return len(self._faces)

    # -- adding ---------------------------------------------------------------
    def add(self, path) -> SourceFace:
        """Add an image file (one face) or a folder of images (one averaged identity)."""
        path = Path(path).expanduser()
        if path.is_dir():
            face = self._identity(path)
        elif path.is_file():
            face = self._single(path)
        elif path.exists():
            raise SourceFaceError(f"{printable(path)}: not a regular file or folder",
                                  "pass a face image or a folder of them")
        else:
            raise SourceFaceError(f"{printable(path)}: no such file or folder",
                                  "check the path (a face image or a folder of them)")
        with self._lock:
            if face.name in self._faces:  # alice.png and alice.jpg, or bob.png and bob/: keep both, say so
                n = 2
                while f"{face.name} ({n})" in self._faces:
                    n += 1
                new = f"{face.name} ({n})"
                face = dataclasses.replace(face, name=new, warnings=[*face.warnings, (
                    f"{printable(path)}: a source face named '{printable(face.name)}' is already loaded "
                    f"(from {printable(self._faces[face.name].paths[0] if self._faces[face.name].paths else '?')}); "
                    f"this one is '{printable(new)}'")])
            self._faces[face.name] = face
        return face

    def load(self, paths_or_dir) -> list[str]:
        """Add a folder's images (each file a face, each sub-folder an identity) and/or explicit paths.

        Returns the warnings and errors, one line each naming the file; good faces are kept.
        """
        if isinstance(paths_or_dir, (str, os.PathLike)):
            items = [Path(paths_or_dir)]
        else:
            items = [Path(p) for p in paths_or_dir]
        entries: list[Path] = []
        messages: list[str] = []
        for item in items:
            item = item.expanduser()
            if item.is_dir():
                entries.extend(sorted(p for p in item.iterdir()
                                      if p.is_dir() or (p.is_file() and p.suffix.lower() in IMAGE_EXTS)))
            else:
                entries.append(item)
        if not entries:
            messages.append(f"{', '.join(map(str, items))}: no images found (use .jpg, .png, .webp or .bmp files)")
        for entry in entries:
            try:
                face = self.add(entry)
                messages.extend(face.warnings)
            except SourceFaceError as exc:
                messages.append(str(exc))
            except (cv2.error, MemoryError, ValueError, OSError) as exc:  # one bad file never stops start-up
                messages.append(f"{printable(entry)}: skipped ({type(exc).__name__}: {printable(exc)})")
        return messages

    # -- internals ------------------------------------------------------------
    def _single(self, path: Path) -> SourceFace:
        e = self._entry(path)
        return SourceFace(name=path.stem, embedding=e["embedding"], normed_embedding=_normalize(e["embedding"]),
                          thumbnail=e["thumbnail"], paths=[str(path)], warnings=list(e["warnings"]))

    def _identity(self, folder: Path) -> SourceFace:
        images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
        if not images:
            raise SourceFaceError(f"{printable(folder)}: no images in this folder", "put one or more photos of the person in it")
        good, warnings = [], []
        for p in images:
            try:
                good.append((p, self._entry(p)))
            except SourceFaceError as exc:
                warnings.append(f"{exc} (skipped for identity '{folder.name}')")
        if not good:
            raise SourceFaceError(f"{printable(folder)}: none of its {len(images)} images has a usable face",
                                  "add clear, frontal, well-lit photos of the face")
        for _, e in good:
            warnings.extend(e["warnings"])
        raw = np.mean([e["embedding"] for _, e in good], axis=0).astype(np.float32)
        normed = _normalize(np.mean([_normalize(e["embedding"]) for _, e in good], axis=0))
        return SourceFace(name=folder.name, embedding=raw, normed_embedding=normed, thumbnail=good[0][1]["thumbnail"],
                          paths=[str(p) for p, _ in good], warnings=warnings)

    def _cache_key(self, data: bytes) -> Path:
        s = self.analyser.settings
        models = f"{self.analyser.embedder_key}-{s.detector.model}-{s.landmarker.model}"
        return self.cache_dir / models / f"{hashlib.sha256(data).hexdigest()}.npz"

    def _entry(self, path: Path) -> dict:
        """{embedding, thumbnail, warnings} for one image, from the cache when it has it."""
        import os
        import stat

        from livecam.io.images import MAX_IMAGE_BYTES, decode_image

        shown = printable(path)
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_IMAGE_BYTES:
                raise SourceFaceError(f"{shown}: not a regular image file of at most {MAX_IMAGE_BYTES >> 20} MB",
                                      "use a JPEG, PNG, WebP or BMP photo of the face")
            data = path.read_bytes()
        except OSError as exc:
            raise SourceFaceError(f"{shown}: cannot read the file ({exc.strerror or exc})",
                                  "check the path and its permissions") from exc
        cache = self._cache_key(data)
        if cache.exists():
            try:
                if _small_members(cache):
                    with np.load(cache, allow_pickle=False) as z:
                        cached = _valid_cached(z)
                    if cached is not None and not embedding_problem(cached["embedding"]):
                        cached["warnings"] = [printable(w).replace("{path}", shown) for w in cached["warnings"]]
                        return cached
            except Exception:  # noqa: BLE001 - a broken cache file is recomputed
                pass
        img = decode_image(data, shown, self.analyser.settings.camera.max_image_mp, SourceFaceError)
        faces = self.analyser.analyse(img, embed=False)
        if not faces:
            raise SourceFaceError(f"{shown}: no face found",
                                  "use a photo with one clear, frontal, well-lit face (not too small, not cut off)")
        face = faces[0]
        if face.size < self.min_face:
            raise SourceFaceError(f"{shown}: the face is only {face.size:.0f} px across "
                                  f"(at least {self.min_face} needed)",
                                  "use a larger or closer photo of the face")
        warnings = []
        if len(faces) > 1:
            warnings.append(f"{{path}}: {len(faces)} faces found; using the largest")
        embedding = self.analyser.embedder.embed(img, face.kps5).astype(np.float32)
        problem = embedding_problem(embedding)
        if problem:  # never cached, never used: it would match every face or none
            raise SourceFaceError(f"{path}: the face embedding {problem}",
                                  "run `livecam doctor` to check the ArcFace model and its provider; "
                                  "--set runtime.fp16=false if it runs in FP16")
        thumb = warp_crop(img, align_matrix(face.kps5, "ffhq_512", THUMB), THUMB)
        self._write(cache, embedding, thumb, warnings)
        return {"embedding": embedding, "thumbnail": thumb,
                "warnings": [w.replace("{path}", shown) for w in warnings]}

    @staticmethod
    def _write(cache: Path, embedding, thumb, warnings) -> None:
        try:
            with atomic_output(cache) as tmp, open(tmp, "wb") as f:
                np.savez(f, embedding=embedding, thumbnail=thumb, warnings=np.array(warnings, dtype=str))
        except OSError:
            pass  # a cache that cannot be written only costs time

