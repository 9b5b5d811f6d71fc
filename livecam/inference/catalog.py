"""The model catalog: `models/catalog.toml` read into `ModelSpec`s.

One source of truth for every model: where it comes from (hub repo + file, or a
file inside an installed package), its size, licence and input contract. Code
reads it through `load_catalog()`; nothing else hard-codes model sources.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from livecam.errors import ModelError

KINDS = ("detector", "landmarker", "embedder", "swapper", "occluder", "parser", "converter")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str
    file: str
    license: str
    commercial: bool
    size_mb: float
    repo: str = ""  # hub repo id ("" for package models)
    revision: str = "main"
    hash_file: str = ""  # published CRC32 .hash on the hub ("" = none)
    package: str = ""  # "pkg/relative/path" for package-shipped models
    sha256: str = ""  # known SHA-256 where fixed (package files)
    vendor: str = ""
    verified_source: bool = True
    # The file declares fixed N/H/W but the model is fully convolutional (CenterFace):
    # the loader runs a copy with those dims made symbolic.
    dynamic_dims: bool = False
    contract: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def hub(self) -> bool:
        return bool(self.repo)

    @property
    def source(self) -> str:
        """Where the model comes from, for messages and `models list`."""
        if self.package:
            return f"package {self.package}"
        return f"hf://{self.repo}/{self.file}" + ("" if self.verified_source else " (unverified mirror)")

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.contract.get("inputs", [])]

    @property
    def output_names(self) -> list[str]:
        return [o["name"] for o in self.contract.get("outputs", [])]


@dataclass(frozen=True)
class Catalog:
    path: Path
    models: dict  # name -> ModelSpec, in file order

    def __contains__(self, name: str) -> bool:
        return name in self.models

    def __iter__(self):
        return iter(self.models.values())

    def __len__(self) -> int:
        return len(self.models)

    def names(self) -> list[str]:
        return list(self.models)

    def get(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise ModelError(
                f"unknown model '{name}' (not in the catalog {self.path})",
                "pick one of: " + ", ".join(self.models),
            ) from None

    def hub_models(self) -> list[ModelSpec]:
        return [m for m in self.models.values() if m.hub]


def _spec(name: str, table: dict, path: Path) -> ModelSpec:
    def need(key):
        if key not in table:
            raise ModelError(f"catalog {path}: model '{name}' has no '{key}'", f"add '{key}' to [{name}] in {path}")
        return table[key]

    kind = need("kind")
    if kind not in KINDS:
        raise ModelError(f"catalog {path}: model '{name}' has kind '{kind}'", f"use one of {', '.join(KINDS)}")
    if not table.get("repo") and not table.get("package"):
        raise ModelError(f"catalog {path}: model '{name}' has neither 'repo' nor 'package'",
                         f"add the hub repo (or the package file) to [{name}]")
    return ModelSpec(
        name=name, kind=kind, file=table.get("file", f"{name}.onnx"), license=need("license"),
        commercial=bool(need("commercial")), size_mb=float(need("size_mb")), repo=table.get("repo", ""),
        revision=table.get("revision", "main"), hash_file=table.get("hash_file", ""),
        package=table.get("package", ""), sha256=table.get("sha256", "").lower(), vendor=table.get("vendor", ""),
        verified_source=bool(table.get("verified_source", True)),
        dynamic_dims=bool(table.get("dynamic_dims", False)), contract=dict(table.get("contract", {})),
    )


@functools.lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int) -> Catalog:
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"model catalog {path} cannot be read: {exc}", "reinstall livecam (pip install -e .)") from exc
    return Catalog(path=path, models={name: _spec(name, table, path) for name, table in data.items()})


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The catalog (default: `livecam.paths.catalog_path()`), cached until the file changes."""
    from livecam.paths import catalog_path

    p = Path(path) if path else catalog_path()
    try:
        mtime = p.stat().st_mtime_ns
    except OSError as exc:
        raise ModelError(f"model catalog {p} is missing", "reinstall livecam (pip install -e .)") from exc
    return _load(p, mtime)
