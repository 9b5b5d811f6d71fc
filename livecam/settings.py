"""Typed settings with dotted keys: one schema for profiles, `--set` and the TUI.

A `Settings` is an immutable tree of dataclasses. Every leaf has a dotted key
(`detector.every_n`, `masks.types`, ...) and a `Field` spec saying its type and
allowed values. All changes go through `Settings.with_changes`, which validates
each value and raises `SettingsError` naming the key, the value, the allowed
values and where the value came from (a profile file, `--set`, the UI). An
invalid change never produces a half-changed `Settings`.

Profiles (TOML files) are read and written in `livecam.profiles`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from livecam.errors import SettingsError

# Region names of the BiSeNet face parser (model-contracts.md §8) and the
# landmark-hull areas (§8, area mask).
MASK_REGIONS = (
    "skin",
    "left-eyebrow",
    "right-eyebrow",
    "left-eye",
    "right-eye",
    "glasses",
    "nose",
    "mouth",
    "upper-lip",
    "lower-lip",
)
MASK_AREAS = ("upper-face", "lower-face", "mouth")
MASK_TYPES = ("box", "occlusion", "region", "area")
SWAPPER_MODELS = (
    "hyperswap_1a_256",
    "hyperswap_1b_256",
    "hyperswap_1c_256",
    "inswapper_128",
    "inswapper_128_fp16",
    "ghost_1_256",
    "ghost_2_256",
    "ghost_3_256",
)
DETECTOR_MODELS = ("scrfd", "centerface", "yunet")
LANDMARKER_MODELS = ("2dfan4", "2d106det", "none")
OCCLUSION_MODELS = ("xseg_1", "xseg_2", "xseg_3", "many")
REGION_MODELS = ("bisenet_resnet_34", "bisenet_resnet_18")
SELECTOR_MODES = ("one", "many", "reference")
PROVIDERS = ("auto", "tensorrt", "ort-tensorrt", "cuda", "cpu")
ARRAY_BACKENDS = ("auto", "cpu", "gpu")
BLEND_MODES = ("feather", "pyramid")
# Models that can run on a remote Triton server (runtime.remote): the per-face crop models.
REMOTE_MODELS = SWAPPER_MODELS + ("xseg_1", "xseg_2", "xseg_3", "bisenet_resnet_34", "bisenet_resnet_18",
                                  "arcface_w600k_r50")


@dataclass(frozen=True)
class Field:
    """What a leaf setting accepts. `kind` is one of bool,int,float,str,list,tuple."""

    kind: str
    help: str
    choices: tuple | None = None  # for str, or for each item of a list
    min: float | None = None
    max: float | None = None
    length: int | None = None  # for tuple (fixed-length list of numbers)

    def allowed(self) -> str:
        if self.choices is not None:
            base = ", ".join(repr(c) for c in self.choices)
            return f"a list of any of {base}" if self.kind == "list" else f"one of {base}"
        if self.kind in ("int", "float"):
            lo = "-inf" if self.min is None else self.min
            hi = "inf" if self.max is None else self.max
            return f"a{'n integer' if self.kind == 'int' else ' number'} in [{lo}, {hi}]"
        if self.kind == "tuple":
            return f"a list of {self.length} numbers" + (
                f" in [{self.min}, {self.max}]" if self.min is not None else ""
            )
        return {"bool": "true or false", "str": "a string", "list": "a list of strings"}[self.kind]


def _f(default, kind, help, **kw):
    """A dataclass field that carries its `Field` spec in metadata."""
    spec = Field(kind=kind, help=help, **kw)
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda d=tuple(default): d, metadata={"spec": spec})
    return field(default=default, metadata={"spec": spec})


@dataclass(frozen=True)
class CameraSettings:
    device: str = _f("0", "str", "webcam index (0, 1, ...) or device path/name")
    width: int = _f(1280, "int", "requested capture width", min=160, max=7680)
    height: int = _f(720, "int", "requested capture height", min=120, max=4320)
    fps: int = _f(30, "int", "requested capture fps", min=1, max=240)
    mjpg: bool = _f(True, "bool", "ask the camera for MJPG (needed for 720p30+ on most USB webcams)")
    max_image_mp: float = _f(40.0, "float", "refuse input and source-face images above this many megapixels "
                             "(read from the header, before decoding)", min=0.01, max=1000.0)


@dataclass(frozen=True)
class OutputSettings:
    width: int = _f(1280, "int", "virtual camera width (even)", min=160, max=7680)
    height: int = _f(720, "int", "virtual camera height (even)", min=120, max=4320)
    fps: int = _f(30, "int", "virtual camera fps", min=1, max=120)
    device: str = _f("", "str", "virtual camera device (e.g. /dev/video10); empty = first usable")
    badge: bool = _f(False, "bool", "draw an 'AI-modified' badge on the output")


@dataclass(frozen=True)
class RuntimeSettings:
    provider: str = _f("auto", "str", "execution provider ladder start", choices=PROVIDERS)
    device_id: int = _f(0, "int", "GPU index", min=0, max=63)
    fp16: bool = _f(True, "bool", "build FP16 engines where the model allows (checked against FP32)")
    engine_cache: str = _f("", "str", "TensorRT engine cache dir; empty = user cache dir")
    ops: str = _f("auto", "str", "array backend for warps/masks/blends: gpu (CuPy) when available, or force one",
                  choices=ARRAY_BACKENDS)
    remote: str = _f("", "str", "run remote_models on a Triton server (`livecam serve`): grpc://HOST:PORT, "
                                "grpcs:// for TLS; empty = all local")
    remote_models: list = _f(list(SWAPPER_MODELS), "list", "models sent to runtime.remote (the rest run here)",
                             choices=REMOTE_MODELS)
    remote_deadline_ms: int = _f(66, "int", "per-call deadline for remote models (ms, ~2 frame intervals); "
                                            "a late frame passes through", min=5, max=60000)
    remote_token: str = _f("", "str", "access token of the remote server (or env LIVECAM_REMOTE_TOKEN)")
    remote_ca: str = _f("", "str", "CA certificate (PEM) for a grpcs:// server; empty = system roots")


@dataclass(frozen=True)
class DetectorSettings:
    model: str = _f("scrfd", "str", "face detector", choices=DETECTOR_MODELS)
    size: int = _f(640, "int", "detector input size (scrfd: 320/480/640)", min=128, max=1280)
    score: float = _f(0.5, "float", "minimum detection score", min=0.0, max=1.0)
    every_n: int = _f(6, "int", "run the detector every N frames (1 = every frame)", min=1, max=120)
    background: bool = _f(True, "bool", "periodic detections run in a background worker on the latest frame "
                                        "(folded in when done; frames never wait for them)")


@dataclass(frozen=True)
class LandmarkerSettings:
    model: str = _f("2dfan4", "str", "68/106-point landmarker", choices=LANDMARKER_MODELS)
    score: float = _f(0.5, "float", "use landmarker points for alignment above this score", min=0.0, max=1.0)


@dataclass(frozen=True)
class TrackerSettings:
    enabled: bool = _f(True, "bool", "track landmarks between detections (off = detect every frame)")
    smoothing: bool = _f(True, "bool", "One Euro smoothing of landmarks and alignment")
    min_cutoff: float = _f(0.3, "float", "One Euro min cutoff (Hz)", min=0.001, max=100.0)
    beta: float = _f(5.0, "float", "One Euro beta, per face size per second", min=0.0, max=1000.0)
    fb_max: float = _f(1.0, "float", "max forward-backward LK error (px) for a point to survive", min=0.05, max=20.0)


@dataclass(frozen=True)
class SelectorSettings:
    mode: str = _f("one", "str", "which faces to swap", choices=SELECTOR_MODES)
    reference: str = _f("", "str", "reference face image or bank name for mode=reference")
    distance: float = _f(0.3, "float", "max face distance (0..1) for a reference match", min=0.0, max=1.0)
    max_faces: int = _f(4, "int", "max faces swapped in mode=many", min=1, max=16)


@dataclass(frozen=True)
class SwapperSettings:
    model: str = _f("hyperswap_1a_256", "str", "face swapper model", choices=SWAPPER_MODELS)
    source: str = _f("", "str", "active source face name (bank file stem)")
    guard_hold: int = _f(5, "int", "frames to hold the last good swap after a guard reject", min=0, max=120)


@dataclass(frozen=True)
class MaskSettings:
    types: list = _f(["box"], "list", "masks combined by minimum", choices=MASK_TYPES)
    blur: float = _f(0.3, "float", "box mask blur (fraction of crop)", min=0.0, max=1.0)
    padding: tuple = _f((0, 0, 0, 0), "tuple", "box mask padding top,right,bottom,left (%)", length=4, min=0, max=100)
    occlusion_model: str = _f("xseg_1", "str", "occlusion mask model", choices=OCCLUSION_MODELS)
    region_model: str = _f("bisenet_resnet_34", "str", "face parser for region masks", choices=REGION_MODELS)
    regions: list = _f(list(MASK_REGIONS), "list", "face regions kept by the region mask", choices=MASK_REGIONS)
    areas: list = _f(["upper-face", "lower-face"], "list", "landmark hull areas for the area mask", choices=MASK_AREAS)
    mouth: bool = _f(False, "bool", "keep the user's own mouth interior")


@dataclass(frozen=True)
class TemporalSettings:
    enabled: bool = _f(True, "bool", "master switch for temporal filters")
    snap: bool = _f(True, "bool", "where the camera is still, hold up to 60% of the previous output")
    anomaly: bool = _f(True, "bool", "hold the change the swap invents beyond the camera's own (flicker), up to 97%")
    seam: bool = _f(True, "bool", "reuse the previous seam band when motion < 3 px")


@dataclass(frozen=True)
class CompositeSettings:
    blend: str = _f("feather", "str", "paste-back blend", choices=BLEND_MODES)
    color_transfer: bool = _f(True, "bool", "match face colour to the scene (linear light, smoothed)")
    color_momentum: float = _f(0.1, "float", "colour transfer momentum per frame", min=0.0, max=1.0)


@dataclass(frozen=True)
class KeySettings:
    """Hotkeys of the TUI (rebindable in a profile)."""

    bypass: str = _f("b", "str", "toggle bypass")
    next_face: str = _f("]", "str", "next source face")
    prev_face: str = _f("[", "str", "previous source face")
    next_model: str = _f("m", "str", "next swapper model")
    occlusion: str = _f("o", "str", "occlusion mask on/off")
    region: str = _f("r", "str", "region mask on/off")
    temporal: str = _f("t", "str", "temporal filters on/off")
    save_profile: str = _f("s", "str", "save profile")
    load_profile: str = _f("p", "str", "load profile")
    quit: str = _f("q", "str", "quit")


@dataclass(frozen=True)
class Settings:
    camera: CameraSettings = field(default_factory=CameraSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    landmarker: LandmarkerSettings = field(default_factory=LandmarkerSettings)
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    selector: SelectorSettings = field(default_factory=SelectorSettings)
    swapper: SwapperSettings = field(default_factory=SwapperSettings)
    masks: MaskSettings = field(default_factory=MaskSettings)
    temporal: TemporalSettings = field(default_factory=TemporalSettings)
    composite: CompositeSettings = field(default_factory=CompositeSettings)
    keys: KeySettings = field(default_factory=KeySettings)

    # -- access --------------------------------------------------------------
    def get(self, key: str) -> Any:
        section, name = _split(key)
        return getattr(getattr(self, section), name)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Nested plain dict (lists, not tuples), ready for TOML."""
        out: dict[str, dict[str, Any]] = {}
        for sec in dataclasses.fields(self):
            values = {}
            for f in dataclasses.fields(sec.type if isinstance(sec.type, type) else SECTIONS[sec.name]):
                v = getattr(getattr(self, sec.name), f.name)
                values[f.name] = list(v) if isinstance(v, (list, tuple)) else v
            out[sec.name] = values
        return out

    def flat(self) -> dict[str, Any]:
        return {f"{s}.{k}": v for s, d in self.to_dict().items() for k, v in d.items()}

    # -- change --------------------------------------------------------------
    def with_changes(self, changes: dict[str, Any], origin: str = "settings") -> "Settings":
        """A new Settings with `changes` ({dotted key: value}) applied and validated.

        Raises SettingsError naming `origin`, the key and the allowed values on
        the first invalid entry; `self` is never modified.
        """
        per_section: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            section, name = _split(key, origin)
            per_section.setdefault(section, {})[name] = coerce(key, value, origin)
        new = self
        for section, values in per_section.items():
            new = dataclasses.replace(new, **{section: dataclasses.replace(getattr(new, section), **values)})
        if "keys" in per_section:
            clash = hotkey_clash(new.keys)
            if clash:
                raise SettingsError(f"{origin}: {clash}", "give each action its own key (`livecam profiles show "
                                    "default` lists the [keys]; 1-9 pick faces)")
        return new

    def with_nested(self, data: dict[str, Any], origin: str) -> "Settings":
        """Apply a nested mapping as read from a profile ({section: {name: value}})."""
        if not isinstance(data, dict):
            raise SettingsError(f"{origin}: expected a table of sections", "see `livecam profiles show default`")
        flat: dict[str, Any] = {}
        for section, values in data.items():
            if section not in SECTIONS:
                raise SettingsError(
                    f"{origin}: unknown section [{section}]",
                    f"use one of: {', '.join(SECTIONS)}",
                )
            if not isinstance(values, dict):
                raise SettingsError(f"{origin}: [{section}] must be a table of key = value")
            for name, value in values.items():
                flat[f"{section}.{name}"] = value
        return self.with_changes(flat, origin)


SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Settings)}  # type: ignore[misc]


def spec(key: str) -> Field:
    section, name = _split(key)
    for f in dataclasses.fields(SECTIONS[section]):
        if f.name == name:
            return f.metadata["spec"]
    raise AssertionError(key)


def all_keys() -> list[str]:
    return [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


def _split(key: str, origin: str = "settings") -> tuple[str, str]:
    section, _, name = key.partition(".")
    if section not in SECTIONS or not name:
        raise SettingsError(
            f"{origin}: unknown setting '{key}'",
            f"settings are section.name with section one of: {', '.join(SECTIONS)} "
            "(`livecam profiles show default` lists every key)",
        )
    names = [f.name for f in dataclasses.fields(SECTIONS[section])]
    if name not in names:
        raise SettingsError(
            f"{origin}: unknown setting '{key}'",
            f"[{section}] has: {', '.join(names)}",
        )
    return section, name


def coerce(key: str, value: Any, origin: str = "settings") -> Any:
    """Validate `value` for `key`, converting where it is unambiguous."""
    s = spec(key)

    def bad(why: str = "") -> SettingsError:
        return SettingsError(
            f"{origin}: invalid value {value!r} for '{key}'" + (f" ({why})" if why else ""),
            f"'{key}' takes {s.allowed()}",
        )

    if s.kind == "bool":
        if isinstance(value, bool):
            return value
        raise bad()
    if s.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        if (s.min is not None and value < s.min) or (s.max is not None and value > s.max):
            raise bad("out of range")
        return value
    if s.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        value = float(value)
        if not math.isfinite(value):  # NaN passes every < / > test: it would reach the loop
            raise bad("not a finite number")
        if (s.min is not None and value < s.min) or (s.max is not None and value > s.max):
            raise bad("out of range")
        return value
    if s.kind == "str":
        if isinstance(value, int) and not isinstance(value, bool) and s.choices is None:
            value = str(value)  # camera.device = 0
        if not isinstance(value, str):
            raise bad()
        if s.choices is not None and value not in s.choices:
            raise bad()
        if key.startswith("keys."):
            why = hotkey_problem(value)
            if why:
                raise SettingsError(f"{origin}: invalid value {value!r} for '{key}' ({why})",
                                    f"'{key}' takes one key: a character such as 'b' or ']', or a Textual key "
                                    "name such as 'f5', 'space', 'ctrl+b'")
        if key == "selector.reference":
            why = reference_problem(value)
            if why:
                raise SettingsError(f"{origin}: invalid value {value!r} for '{key}' ({why})",
                                    f"'{key}' takes a source face name from the bank, or the path of an existing "
                                    "image file")
        return value
    if s.kind == "list":
        if isinstance(value, str):
            value = [value]  # a single value where a list is expected
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise bad()
        if s.choices is not None:
            unknown = [v for v in value if v not in s.choices]
            if unknown:
                raise bad(f"unknown {', '.join(map(repr, unknown))}")
        return tuple(dict.fromkeys(value))  # ordered, no duplicates, hashable
    if s.kind == "tuple":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value] * (s.length or 1)
        if not isinstance(value, (list, tuple)) or len(value) != s.length:
            raise bad()
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise bad()
        if not all(math.isfinite(v) for v in value):
            raise bad("not a finite number")
        if s.min is not None and any(v < s.min or v > s.max for v in value):
            raise bad("out of range")
        return tuple(value)
    raise AssertionError(s.kind)


_MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")


def hotkey_problem(key: str) -> str:
    """Why `key` cannot be one Textual binding ("" when it can): empty, several keys, unknown names."""
    if not key or key != key.strip():
        return "empty" if not key.strip() else "surrounding spaces"
    if len(key) == 1:
        return "" if key.isprintable() and key != "," else "a control character or a comma"
    if "," in key:
        return "several keys; bind one"
    from textual.keys import ASCII_KEY_NAMES, KEY_ALIASES, Keys, _character_to_key

    *mods, name = key.split("+") if not key.endswith("++") else [*key[:-2].split("+"), "+"]
    if any(m not in _MODIFIERS for m in mods):
        return f"unknown modifier in {key!r} (use {', '.join(_MODIFIERS)})"
    known = ({k.value.split("+")[-1] for k in Keys} | set(KEY_ALIASES) | set(ASCII_KEY_NAMES.values())
             | {_character_to_key(chr(c)) for c in range(0x21, 0x7F)})
    if len(name) == 1 and name.isprintable() or name in known:
        return ""
    return f"{name!r} is not a key name"


def hotkey_clash(keys: "KeySettings") -> str:
    """The first key bound to two actions (the 1-9 face keys included), "" when none: Textual would
    silently fire only one of them."""
    seen = {str(n): f"face {n}" for n in range(1, 10)}
    for name, key in vars(keys).items():
        if key in seen:
            return f"key {key!r} is bound to both {seen[key]} and keys.{name}"
        seen[key] = f"keys.{name}"
    return ""


def reference_problem(value: str) -> str:
    """Why a selector.reference path cannot be used ("" when it can, or when it is a bank name)."""
    if not value or not (os.sep in value or "/" in value or os.path.splitext(value)[1]):
        return ""  # empty or a bank name: resolved against the source faces
    try:
        import stat as _stat

        st = os.stat(value)
    except OSError as exc:
        return f"no such image: {exc.strerror or exc}"
    return "" if _stat.S_ISREG(st.st_mode) else "not a regular file"


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one `--set key=value`. The value is read as TOML; a bare word is a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SettingsError(f"--set {text!r}: expected key=value", "for example --set detector.every_n=4")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_overrides(settings: Settings, overrides: list[str]) -> Settings:
    changes = dict(parse_override(o) for o in overrides)
    return settings.with_changes(changes, origin="--set")
