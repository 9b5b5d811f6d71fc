"""`livecam` command line: run | bench | models | engines | faces | profiles | doctor.

Each area registers its own subcommands (`register(subparsers)`) and keeps its
heavy imports inside the handler, so `livecam --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys

from livecam import __version__
from livecam.errors import LivecamError
from livecam.paths import printable

# Modules that add subcommands, in help order.
COMMAND_MODULES = (
    "livecam.commands",  # run, bench, doctor
    "livecam.demo",  # demo
    "livecam.inference.cli",  # models, engines
    "livecam.face.cli",  # faces
    "livecam.profiles",  # profiles
    "livecam.remote.cli",  # serve
)


class _PrintableFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record), keep_newlines=True)


def positive(kind=float, *, zero: bool = False):
    """An argparse type: a finite number > 0 (>= 0 with `zero`); argparse names the option on failure.

    `--stats-every 0` would print thousands of lines a second, `nan` spin a core, `--duration -5`
    end at once: options that size a loop are checked before anything starts."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number {'>=' if zero else '>'} 0")
        return value

    parse.__name__ = kind.__name__  # argparse's messages name the type
    return parse


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
    for handler in logging.getLogger().handlers:  # file names and cached text in log lines: no escape sequences
        if type(handler) is logging.StreamHandler and not isinstance(handler.formatter, _PrintableFormatter):
            handler.setFormatter(_PrintableFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LivecamError as exc:
        print(f"error: {printable(exc, keep_newlines=True)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
