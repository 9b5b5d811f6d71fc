"""`livecam models list|pull|verify` and `livecam engines list|clear|pull|push|key|trust|untrust`."""

from __future__ import annotations

import argparse
import sys

from livecam.paths import printable


def register(subparsers) -> None:
    from livecam.cli import add_common

    models = subparsers.add_parser("models", help="list, download and verify models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION")
    models.set_defaults(func=lambda args: (models.print_help(), 2)[1])

    p = msub.add_parser("list", help="every model: kind, size, licence, where it is")
    add_common(p)
    p.set_defaults(func=cmd_list)

    p = msub.add_parser("pull", help="download models (into --models-dir if given, else the user cache)")
    add_common(p)
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="models to pull (default: those the profile needs, see --profile)")
    p.add_argument("--all", action="store_true", help="every hub-hosted model")
    p.add_argument("--force", action="store_true", help="download again even if present and verified")
    p.add_argument("--repin", action="store_true",
                   help="accept the hub's current file: forget the commit and SHA-256 recorded at the first download")
    p.set_defaults(func=cmd_pull)

    p = msub.add_parser("verify", help="hash-check models (all present ones by default); non-zero exit on any failure")
    add_common(p)
    p.add_argument("names", nargs="*", metavar="NAME")
    p.set_defaults(func=cmd_verify)

    engines = subparsers.add_parser("engines", help="TensorRT engine cache: list, clear, share through a hub repo")
    esub = engines.add_subparsers(dest="engines_command", metavar="ACTION")
    engines.set_defaults(func=lambda args: (engines.print_help(), 2)[1])
    for action, helptext in (("list", "engines cached for this GPU and runtime"),
                             ("clear", "delete the engines cached for this GPU and runtime"),
                             ("pull", "download engines signed by a trusted key (engines run as native code)"),
                             ("push", "upload engines the hub repo lacks, with a manifest signed by your key")):
        p = esub.add_parser(action, help=helptext)
        add_common(p)
        if action in ("pull", "push"):
            p.add_argument("--repo", required=True, metavar="ID", help="hub repo id, e.g. me/livecam-engines")
        p.set_defaults(func=cmd_engines, engines_action=action)
    p = esub.add_parser("key", help="print your engine signing public key (made once) for others to trust")
    p.set_defaults(func=cmd_trust, trust_action="key")
    p = esub.add_parser("trust", help="trust a publisher's public key for engines pulled from one repo")
    p.add_argument("key", metavar="KEY", help="the publisher's `livecam engines key` line (ed25519:...)")
    p.add_argument("--repo", required=True, metavar="ID", help="hub repo id the key may publish to ('*' = any)")
    p.add_argument("--label", default="", help="a note to remember whose key it is")
    p.set_defaults(func=cmd_trust, trust_action="trust")
    p = esub.add_parser("untrust", help="stop trusting a key (for one repo, or for all)")
    p.add_argument("key", metavar="KEY", help="key id or public key")
    p.add_argument("--repo", default=None, metavar="ID")
    p.set_defaults(func=cmd_trust, trust_action="untrust")


def _store(args):
    from livecam.inference.store import ModelStore

    return ModelStore(models_dir=getattr(args, "models_dir", None))


def _fmt_size(mb: float) -> str:
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


def cmd_list(args) -> int:
    store = _store(args)
    rows = [("NAME", "KIND", "SIZE", "LICENCE", "WHERE")]
    for spec in store.catalog:
        where, path = store.status(spec.name)
        lic = spec.license + ("" if spec.commercial else " [non-commercial]")
        rows.append((spec.name, spec.kind, _fmt_size(spec.size_mb), lic,
                     "not downloaded" if where == "missing" else f"{where}: {path}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    print(f"\nmodels dir: {store.models_dir or '(not set: LIVECAM_MODELS_DIR / --models-dir)'}\n"
          f"user cache: {store.cache_dir}")
    return 0


def cmd_pull(args) -> int:
    from livecam.errors import ModelError

    store = _store(args)
    names = [s.name for s in store.catalog.hub_models()] if args.all else list(args.names)
    if not names:  # what the active profile needs (the default profile unless --profile)
        from livecam.cli import settings_from_args
        from livecam.doctor import required_models

        hub = {s.name for s in store.catalog.hub_models()}
        names = [n for n in required_models(settings_from_args(args)) if n in hub]
        print(f"pulling what profile '{getattr(args, 'profile', None) or 'default'}' needs: {', '.join(names)}",
              file=sys.stderr)
    for n in names:
        store.spec(n)  # unknown names fail before any download
    failures = []
    for n in names:
        try:
            path = store.pull(n, force=args.force or args.repin, repin=args.repin)
            print(f"{n}: ok  {path}")
        except ModelError as exc:
            if len(names) == 1:
                raise
            failures.append(n)
            print(f"error: {exc}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {len(names)} failed: {', '.join(failures)}", file=sys.stderr)
        return 2
    return 0


def cmd_verify(args) -> int:
    store = _store(args)
    explicit = bool(args.names)
    names = list(args.names) if explicit else store.catalog.names()
    for n in names:
        store.spec(n)
    bad = checked = 0
    for n in names:
        res = store.verify(n)
        if res.where == "missing" and not explicit:
            print(f"{n}: not present")
            continue
        checked += 1
        if res.ok:
            print(f"{n}: ok  {res.where}: {res.path}  sha256 {res.sha256[:16]}...")
        else:
            bad += 1
            print(f"{n}: FAILED  {res.message}", file=sys.stderr)
    print(f"{checked - bad} ok, {bad} failed")
    if bad:
        print("  fix: livecam models pull NAME --force (or copy good files into the models dir)", file=sys.stderr)
        return 1
    return 0


def cmd_trust(args) -> int:
    from livecam.inference import trust

    if args.trust_action == "key":
        key = trust.my_public_key(create=True)
        print(key)
        print(f"key id {trust.key_id(trust.parse_public_key(key))}; others trust it with:\n"
              f"  livecam engines trust {key} --repo OWNER/NAME", file=sys.stderr)
        return 0
    if args.trust_action == "trust":
        kid = trust.trust(args.key, args.repo, args.label)
        print(f"trusted key {kid} for engines from {args.repo}: engines it signs run as native code here")
        return 0
    if not trust.untrust(args.key, args.repo):
        print(f"key {printable(args.key)} was not trusted" + (f" for {args.repo}" if args.repo else ""),
              file=sys.stderr)
        return 1
    print(f"no longer trusting {printable(args.key)}" + (f" for {args.repo}" if args.repo else ""))
    return 0


def cmd_engines(args) -> int:
    from livecam.inference.runtime import Runtime
    from livecam.settings import RuntimeSettings

    try:
        from livecam.cli import settings_from_args

        runtime_settings = settings_from_args(args).runtime
    except ImportError:
        runtime_settings = RuntimeSettings()
    cache = Runtime(runtime_settings).engine_cache
    action = args.engines_action
    if action == "list":
        entries = cache.entries()
        print(f"engine cache {cache.dir} (key {cache.key})")
        for e in entries:
            origin = f"  from {printable(e.origin)}" if e.origin else ""
            print(f"  {printable(e.file)}  {printable(e.model)}  {e.precision}  {e.size / 1e6:.1f} MB  "
                  f"built {printable(e.built_at)}{origin}")
        decisions = cache.manifest().get("decisions", {})
        for model, dec in decisions.items():
            print(f"  decision {printable(model)}: {printable(dec)}")
        if not entries:
            print("  (no engines)")
        return 0
    if action == "clear":
        print(f"removed {cache.clear()} engines from {cache.dir}")
        return 0
    if action == "pull":
        files = cache.pull(args.repo)
        print(f"pulled {len(files)} engine(s) into {cache.dir}, each checked against a manifest signed by a key "
              f"you trust for {args.repo}; they run as native code on this machine")
        return 0
    files = cache.push(args.repo)
    print(f"pushed {len(files)} files from {cache.dir} to {args.repo}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="livecam")
    register(parser.add_subparsers())
    a = parser.parse_args()
    raise SystemExit(a.func(a))
