"""`livecam` command line: run | bench | models | engines | faces | profiles | doctor.

Each area registers its own subcommands (`register(subparsers)`) and keeps its
heavy imports inside the handler, so `livecam --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from livecam import __version__
from livecam.errors import LivecamError

# Modules that add subcommands, in help order.
COMMAND_MODULES = (
    "livecam.commands",  # run, bench, doctor
    "livecam.demo",  # demo
    "livecam.inference.cli",  # models, engines
    "livecam.face.cli",  # faces
    "livecam.profiles",  # profiles
)


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options every model-using command takes."""
    parser.add_argument("--models-dir", metavar="DIR", help="take hub models from DIR (no network); env LIVECAM_MODELS_DIR")
    parser.add_argument("--profile", metavar="NAME", help="profile name or TOML path (default: 'default')")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a setting, e.g. --set detector.every_n=4 (repeatable)",
    )


def settings_from_args(args: argparse.Namespace):
    """Profile (default 'default') plus --set overrides, validated."""
    from livecam.profiles import load_profile
    from livecam.settings import apply_overrides

    settings = load_profile(getattr(args, "profile", None) or "default")
    return apply_overrides(settings, getattr(args, "overrides", []) or [])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livecam", description="Real-time face swap to a virtual camera.")
    parser.add_argument("--version", action="version", version=f"livecam {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LivecamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
