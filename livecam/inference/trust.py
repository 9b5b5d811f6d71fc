"""Who may hand this machine a TensorRT engine: Ed25519 keys for shared engine manifests.

A serialized TensorRT engine is native code: deserializing one from someone else is
running their program. So engine sharing is opt-in per hub repo and by key:

- `engines push` signs the manifest it uploads with this user's Ed25519 key (made once,
  kept in `<config dir>/engine-trust/signing_key.pem`, mode 0600);
- `engines pull` (and the automatic pull under LIVECAM_ENGINE_REPO) accepts a manifest only
  when its signature verifies against a public key the user listed as trusted *for that
  repo* (`livecam engines trust KEY --repo ID`, kept in `trusted.json`).

Anything else (no signature, a key not listed, a bad signature, an unreadable trust
file) is a `TrustError`: the pull stops before a byte reaches the engine cache.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from livecam.errors import LivecamError

ALGORITHM = "ed25519"
PREFIX = "ed25519:"
ANY_REPO = "*"
MAX_SIGNATURE_BYTES = 4096


class TrustError(LivecamError):
    """A shared engine manifest is unsigned, signed by an untrusted key, or does not verify."""


def trust_dir() -> Path:
    from livecam.paths import config_dir

    return config_dir() / "engine-trust"


def _signing_key_path() -> Path:
    return trust_dir() / "signing_key.pem"


def _trusted_path() -> Path:
    return trust_dir() / "trusted.json"


def key_id(public_raw: bytes) -> str:
    """A short, stable name for a public key: the first 16 hex of its SHA-256."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def public_key_text(public_raw: bytes) -> str:
    """`ed25519:<base64 of the 32 raw bytes>`: what a user copies to another machine."""
    return PREFIX + base64.b64encode(public_raw).decode("ascii")


def parse_public_key(text: str) -> bytes:
    """The 32 raw bytes of an `ed25519:<base64>` public key; TrustError for anything else."""
    raw_text = text.strip()
    if raw_text.startswith(PREFIX):
        raw_text = raw_text[len(PREFIX):]
    try:
        raw = base64.b64decode(raw_text, validate=True)
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 32:
        raise TrustError(f"{text[:80]!r} is not an Ed25519 public key",
                         "copy the line `livecam engines key` prints on the publishing machine "
                         "(it starts with ed25519:)")
    return raw


def _raw_public(private) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def signing_key(create: bool = True):
    """This user's Ed25519 private key; made (once) when `create` and there is none yet."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = _signing_key_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if not create:
            return None
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes making a key at once keep the first one; 0600 from the start
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return signing_key(create=False)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        return key
    except OSError as exc:
        raise TrustError(f"cannot read the engine signing key {path}: {exc}", f"check the permissions of {path}")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise TrustError(f"the engine signing key {path} is not a readable PEM key ({exc})",
                         f"move {path} away; a new key is made on the next push (re-share its public key)")
    if not isinstance(key, Ed25519PrivateKey):
        raise TrustError(f"the engine signing key {path} is not an Ed25519 key", f"move {path} away")
    return key


def my_public_key(create: bool = False) -> str | None:
    key = signing_key(create=create)
    return public_key_text(_raw_public(key)) if key is not None else None


def sign(data: bytes) -> dict:
    """A detached signature document for `data` (stored beside the manifest as manifest.sig)."""
    key = signing_key(create=True)
    raw = _raw_public(key)
    return {"algorithm": ALGORITHM, "key_id": key_id(raw), "public_key": public_key_text(raw),
            "signature": base64.b64encode(key.sign(data)).decode("ascii")}


# -- the trusted keys --------------------------------------------------------------------
def _read_trusted() -> dict:
    path = _trusted_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"keys": {}}
    except (OSError, ValueError, RecursionError) as exc:
        raise TrustError(f"the trusted engine keys file {path} is unreadable ({type(exc).__name__}); "
                         "no shared engine is accepted", f"fix or delete {path}, then `livecam engines trust` again")
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("public_key"), str) and isinstance(v.get("repos"), list)
            for v in keys.values()):
        raise TrustError(f"the trusted engine keys file {path} is malformed; no shared engine is accepted",
                         f"fix or delete {path}, then `livecam engines trust` again")
    return {"keys": keys}


def _write_trusted(data: dict) -> None:
    from livecam.paths import atomic_write

    atomic_write(_trusted_path(), json.dumps(data, indent=1, sort_keys=True))


def trust(public_key: str, repo: str, label: str = "") -> str:
    """Trust `public_key` for engines pulled from `repo` ('*' = any repo); returns its key id."""
    if not repo or not repo.strip():
        raise TrustError("no repo given to trust the key for", "pass --repo OWNER/NAME (or --repo '*' for any)")
    raw = parse_public_key(public_key)
    kid = key_id(raw)
    data = _read_trusted()
    entry = data["keys"].setdefault(kid, {"public_key": public_key_text(raw), "repos": [], "label": label})
    if repo not in entry["repos"]:
        entry["repos"].append(repo)
    if label:
        entry["label"] = label
    _write_trusted(data)
    return kid


def untrust(key: str, repo: str | None = None) -> bool:
    """Stop trusting a key (by id or public key), for one repo or for all; True if anything changed."""
    data = _read_trusted()
    kid = key if key in data["keys"] else key_id(parse_public_key(key))
    entry = data["keys"].get(kid)
    if entry is None:
        return False
    if repo is None:
        del data["keys"][kid]
    elif repo in entry["repos"]:
        entry["repos"].remove(repo)
        if not entry["repos"]:
            del data["keys"][kid]
    else:
        return False
    _write_trusted(data)
    return True


def trusted_keys() -> dict[str, dict]:
    """{key id: {"public_key", "repos", "label"}} as listed by the user."""
    return _read_trusted()["keys"]


def trusted_for(repo: str) -> dict[str, bytes]:
    """{key id: raw public key} trusted for engines from `repo`."""
    out = {}
    for kid, entry in trusted_keys().items():
        if repo in entry["repos"] or ANY_REPO in entry["repos"]:
            raw = parse_public_key(entry["public_key"])
            out[key_id(raw)] = raw
    return out


def verify(data: bytes, signature_doc: bytes | None, repo: str, what: str) -> str:
    """The id of the trusted key that signed `data`; TrustError otherwise (nothing else is accepted)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    fix_trust = (f"if you trust the publisher, get their public key (`livecam engines key` on their machine) and run "
                 f"`livecam engines trust ed25519:... --repo {repo}`; engines run as native code on this machine")
    trusted = trusted_for(repo)
    if signature_doc is None:
        raise TrustError(f"{what} is not signed: refused (a shared engine is native code)", fix_trust)
    try:
        if len(signature_doc) > MAX_SIGNATURE_BYTES:
            raise ValueError("too large")
        doc = json.loads(signature_doc)
        if not isinstance(doc, dict) or doc.get("algorithm") != ALGORITHM:
            raise ValueError("not an ed25519 signature")
        raw = parse_public_key(str(doc.get("public_key", "")))
        sig = base64.b64decode(str(doc.get("signature", "")), validate=True)
    except (ValueError, TypeError, RecursionError, TrustError) as exc:
        raise TrustError(f"{what}: the signature file is malformed ({exc}): refused", fix_trust) from None
    kid = key_id(raw)
    if trusted.get(kid) != raw:
        raise TrustError(f"{what} is signed by key {kid}, which is not trusted for {repo}: refused", fix_trust)
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(sig, data)
    except InvalidSignature:
        raise TrustError(f"{what}: the signature by key {kid} does not match the manifest "
                         "(altered after signing): refused",
                         "ask the publisher to push again; do not use this repo until then") from None
    return kid


def describe(repo: str = "") -> list[str]:
    """Lines for `livecam doctor`: the signing key, the trusted keys, and whether `repo` is usable."""
    lines = []
    try:
        mine = my_public_key(create=False)
        keys = trusted_keys()
    except TrustError as exc:
        return [f"engine sharing: {exc.message}"]
    lines.append(f"engine signing key: {mine} (id {key_id(parse_public_key(mine))})" if mine
                 else "engine signing key: none yet (made by the first `livecam engines push`)")
    if not keys:
        lines.append("trusted engine keys: none (no shared engine is accepted)")
    for kid, entry in sorted(keys.items()):
        label = f" {entry.get('label')}" if entry.get("label") else ""
        lines.append(f"trusted engine key {kid}{label} for {', '.join(entry['repos'])}")
    if repo:
        n = len(trusted_for(repo))
        lines.append(f"LIVECAM_ENGINE_REPO={repo}: " + (f"{n} trusted key(s); pulled engines run as native code"
                                                          if n else "no trusted key: its engines are refused"))
    return lines
