"""Profiles: named TOML presets of every setting, shipped and user-made.

A profile is a TOML file whose tables are the settings sections and whose keys
are the setting names, so `[detector] every_n = 4` (or the TOML dotted form
`detector.every_n = 4`) is the same key as `--set detector.every_n=4`. A
profile only lists what it changes; the rest comes from the schema defaults.

Name resolution (`load_profile`): a path to a .toml file; else the user
profiles dir (`livecam.paths.user_profiles_dir()`), then the shipped presets
(`profiles/` in the repo: default, quality, speed, cpu). Shipped presets are
read-only: `save_profile` writes user profiles, and `delete_profile` refuses
to touch a shipped one.

Loading validates every key through `Settings.with_nested(data, origin=path)`,
so a bad file raises `SettingsError` naming the file, the key and the allowed
values, and nothing else changes. Saving writes every key (with its help text
as a comment) to a temp file in the same dir and `os.replace`s it into place:
a crash never leaves a half-written profile, and `load_profile(save_profile(n,
s))` equals `s` exactly.
"""

from __future__ import annotations

import argparse
import os
import re
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from livecam.errors import SettingsError
from livecam.paths import atomic_write, printable, shipped_profiles_dir, user_profiles_dir
from livecam.settings import SECTIONS, Settings, apply_overrides, spec

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ProfileEntry:
    """One profile file found by `list_profiles`."""

    name: str
    path: Path
    shipped: bool  # a read-only preset from profiles/
    shadowed: bool = False  # a shipped preset hidden by a user profile of the same name


# -- names and paths ---------------------------------------------------------------
def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.endswith(".toml"):
        raise SettingsError(
            f"invalid profile name {name!r}",
            "use letters, digits, '-', '_' or '.', at most 64 characters, without '.toml' "
            "(or pass a path to a .toml file)",
        )
    return name


def _looks_like_path(text: str) -> bool:
    return text.endswith(".toml") or os.sep in text or (os.altsep is not None and os.altsep in text)


def profile_path(name_or_path: str | os.PathLike) -> Path:
    """The file `load_profile(name_or_path)` would read; raises SettingsError if none."""
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, Path) or _looks_like_path(text):
        path = Path(text).expanduser()
        if not path.is_file():
            what = "is not a regular file" if path.exists() else "does not exist"
            raise SettingsError(f"profile file {printable(path)} {what}", "pass an existing .toml file or a profile name")
        return path
    name = _check_name(text)
    for directory in (user_profiles_dir(), shipped_profiles_dir()):
        path = directory / f"{name}.toml"
        if path.is_file():
            return path
    available = ", ".join(e.name for e in list_profiles() if not e.shadowed) or "(none)"
    raise SettingsError(
        f"no profile named {name!r}",
        f"available profiles: {available} (`livecam profiles list`); or pass a path to a .toml file",
    )


def list_profiles() -> list[ProfileEntry]:
    """User profiles then shipped presets, each group sorted by name."""
    user = sorted(user_profiles_dir().glob("*.toml")) if user_profiles_dir().is_dir() else []
    shipped = sorted(shipped_profiles_dir().glob("*.toml")) if shipped_profiles_dir().is_dir() else []
    user_names = {p.stem for p in user}
    entries = [ProfileEntry(p.stem, p, shipped=False) for p in user if _NAME_RE.match(p.stem)]
    entries += [ProfileEntry(p.stem, p, shipped=True, shadowed=p.stem in user_names) for p in shipped]
    return entries


# -- load --------------------------------------------------------------------------
MAX_PROFILE_BYTES = 1 << 20


def read_profile_file(path: Path) -> dict:
    """The raw TOML tables of a profile file; SettingsError names the file on any error."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_PROFILE_BYTES:  # a FIFO or a device never hangs us
            raise OSError(f"not a regular file of at most {MAX_PROFILE_BYTES // 1024} KiB")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{printable(path)}: cannot read profile ({exc})",
                            "check the file exists and is UTF-8 text") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{printable(path)}: not valid TOML ({exc})",
                            "fix the TOML syntax (see `livecam profiles show default`)") from exc
    except RecursionError:  # `x = [[[[...` nested deeper than Python's stack
        raise SettingsError(f"{printable(path)}: not a profile (values nested too deeply)",
                            "a profile is [section] tables of key = value (see `livecam profiles show default`)"
                            ) from None


def load_profile(name_or_path: str | os.PathLike = "default", base: Settings | None = None) -> Settings:
    """Settings from a profile name or .toml path, validated; raises SettingsError.

    Keys the profile does not list take `base`'s values (schema defaults when
    None). "default" works with no user files (the shipped preset, or the
    schema defaults if even that is missing).
    """
    base = Settings() if base is None else base
    try:
        path = profile_path(name_or_path)
    except SettingsError:
        if os.fspath(name_or_path) == "default":
            return base
        raise
    data = read_profile_file(path)
    return base.with_nested(data, origin=str(path))


# -- save / delete -----------------------------------------------------------------
def _toml_value(value) -> str:
    import tomli_w

    if isinstance(value, tuple):
        value = list(value)
    return tomli_w.dumps({"v": value}).strip()[len("v = "):]


def to_toml(settings: Settings, header: str = "", comments: bool = True) -> str:
    """Every setting as TOML, one table per section, help text as comments."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    data = settings.to_dict()
    for section in SECTIONS:
        if lines:
            lines.append("")
        lines.append(f"[{section}]")
        for name, value in data[section].items():
            line = f"{name} = {_toml_value(value)}"
            if comments:
                line += f"  # {spec(f'{section}.{name}').help}"
            lines.append(line)
    return "\n".join(lines) + "\n"


def save_profile(name: str, settings: Settings) -> Path:
    """Write `settings` as user profile `name` atomically; returns the path."""
    _check_name(name)
    directory = user_profiles_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.toml"
    text = to_toml(settings, header=f"livecam profile '{name}', saved {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                   "Every key is a dotted setting key (`--set section.name=value`).")
    return atomic_write(path, text)


def delete_profile(name: str) -> Path:
    """Delete user profile `name`; shipped presets are read-only. Returns the deleted path."""
    _check_name(name)
    path = user_profiles_dir() / f"{name}.toml"
    if path.is_file():
        path.unlink()
        return path
    if (shipped_profiles_dir() / f"{name}.toml").is_file():
        raise SettingsError(
            f"profile {name!r} is a shipped preset and is read-only",
            f"save a copy under another name (`livecam profiles save my-{name} --from {name}`) and change that",
        )
    raise SettingsError(f"no user profile named {name!r}", "see `livecam profiles list`")


# -- CLI ---------------------------------------------------------------------------
def register(subparsers) -> None:
    parser = subparsers.add_parser("profiles", help="list, show, save and delete setting presets")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    sub = parser.add_subparsers(dest="profiles_command", metavar="ACTION")

    p = sub.add_parser("list", help="list user profiles and shipped presets")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("show", help="print a profile with every key resolved (default: 'default')")
    p.add_argument("name", nargs="?", default="default", help="profile name or .toml path")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("save", help="save a user profile: a base profile plus --set overrides")
    p.add_argument("name", help="profile name")
    p.add_argument("--from", dest="base", default="default", metavar="NAME", help="base profile (default: 'default')")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set detector.every_n=4 (repeatable)")
    p.set_defaults(func=_cmd_save)

    p = sub.add_parser("delete", help="delete a user profile (shipped presets are read-only)")
    p.add_argument("name", help="profile name")
    p.set_defaults(func=_cmd_delete)


def _cmd_list(args: argparse.Namespace) -> int:
    entries = list_profiles()
    width = max((len(e.name) for e in entries), default=4)
    for e in entries:
        kind = "shipped" if e.shipped else "user"
        note = "  (hidden by the user profile)" if e.shadowed else ""
        print(f"{e.name:<{width}}  {kind:<7}  {e.path}{note}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    settings = apply_overrides(load_profile(args.name), args.overrides)
    try:
        where = str(profile_path(args.name))
    except SettingsError:
        where = "schema defaults"
    print(to_toml(settings, header=f"profile {args.name!r} from {where}" + (" with --set overrides" if args.overrides else "")), end="")
    return 0


def _cmd_save(args: argparse.Namespace) -> int:
    settings = apply_overrides(load_profile(args.base), args.overrides)
    path = save_profile(args.name, settings)
    print(f"saved profile {args.name!r} to {path}")
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    path = delete_profile(args.name)
    print(f"deleted profile {args.name!r} ({path})")
    return 0


__all__ = [
    "ProfileEntry", "delete_profile", "list_profiles", "load_profile", "profile_path",
    "read_profile_file", "register", "save_profile", "to_toml",
]
