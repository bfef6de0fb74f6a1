"""Release signatures with OpenSSF model signing (elliptic-curve keys, offline).

Embedded default: a P-256 key pair generated on first use under keys/private/ (git-ignored); its public
half is also written to keys/release-signing.pub when that file does not exist yet, to be committed.
Production: MOBILE_MLOPS_SIGNING_KEY names the private key file (optionally encrypted, with the password
in MOBILE_MLOPS_SIGNING_KEY_PASSWORD). Verification trusts the public keys committed under keys/.
Key material is never printed: messages name key files and fingerprints only.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.core.errors import PipelineError
from pipelines.core.hashing import tree_sha256
from pipelines.core.io import write_private

if TYPE_CHECKING:
    from pipelines.core.config import Settings

SIGNATURE = "model.sig"
MANIFEST_NAME = "manifest.json"  # pipelines.release.folder.MANIFEST (that module imports this one)
KEY_ENV = "MOBILE_MLOPS_SIGNING_KEY"
PASSWORD_ENV = "MOBILE_MLOPS_SIGNING_KEY_PASSWORD"


def _hashing_config():
    import model_signing

    # Every file is signed (git files too), except the signature itself.
    return model_signing.hashing.Config().set_ignored_paths(paths=[SIGNATURE], ignore_git_paths=False)


def _public_pem(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(public_key_file: Path) -> str:
    """sha256 of the PEM public key: the `hint` a model-signing bundle carries."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_public_key(Path(public_key_file).read_bytes())
    except (OSError, ValueError) as exc:
        raise PipelineError(f"{public_key_file}: not a PEM public key") from exc
    return hashlib.sha256(_public_pem(key)).hexdigest()


def generate_key_pair(private: Path, public: Path) -> None:
    """A new P-256 key pair: PKCS#8 private key (mode 600) and PEM public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    write_private(private, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    public.parent.mkdir(parents=True, exist_ok=True)
    public.write_bytes(_public_pem(key.public_key()))


def _derived_public(private: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization

    password = os.environ.get(PASSWORD_ENV)
    try:
        key = serialization.load_pem_private_key(private.read_bytes(), password.encode() if password else None)
    except (ValueError, TypeError):
        # the library's message can quote key details; say only what the user can fix
        raise PipelineError(f"{private}: not a usable PEM private key (wrong or missing {PASSWORD_ENV}?)") from None
    return _public_pem(key.public_key())


def signing_key(private_default: Path, public_default: Path) -> Path:
    """The private key to sign with: $MOBILE_MLOPS_SIGNING_KEY, else the project key, made on first use.

    A generated key's public half is kept beside it (keys/private/*.pub) and, if the project has no
    committed key yet, also written to `public_default` for committing.
    """
    if env := os.environ.get(KEY_ENV):
        private = Path(env).expanduser()
        if not private.is_file():
            raise PipelineError(f"{KEY_ENV}: no private key file at {private}")
        return private
    local_public = private_default.with_suffix(".pub")
    if not private_default.is_file():
        generate_key_pair(private_default, local_public)
    elif not local_public.is_file():
        local_public.write_bytes(_derived_public(private_default))
    if not public_default.exists():
        public_default.parent.mkdir(parents=True, exist_ok=True)
        public_default.write_bytes(local_public.read_bytes())
    return private_default


def sign_folder(folder: Path, private_key: Path) -> Path:
    """Sign every file in `folder` (manifest included) into folder/model.sig."""
    import model_signing

    _derived_public(private_key)  # a clear one-line error for an unreadable key, before the library's
    signature = folder / SIGNATURE
    signature.unlink(missing_ok=True)
    password = os.environ.get(PASSWORD_ENV)
    config = model_signing.signing.Config().set_hashing_config(_hashing_config())
    config.use_elliptic_key_signer(private_key=private_key,
                                   password=password.encode() if password else None)  # type: ignore[arg-type]
    config.sign(folder, signature)
    return signature


def signature_hint(folder: Path) -> str:
    """The public-key fingerprint recorded in folder/model.sig."""
    path = folder / SIGNATURE
    if not path.is_file():
        raise PipelineError(f"{path}: missing; the release is not signed")
    try:
        return json.loads(path.read_text())["verificationMaterial"]["publicKey"]["hint"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PipelineError(f"{path}: not a model-signing signature bundle") from exc


def _signed_digests(folder: Path) -> dict[str, str]:
    """File -> sha256 as the signature's (possibly forged) payload lists them; used to name a mismatch."""
    bundle = json.loads((folder / SIGNATURE).read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}


def _name_mismatch(folder: Path) -> str:
    try:
        signed = _signed_digests(folder)
    except (ValueError, KeyError, TypeError):
        return f"{folder / SIGNATURE}: signature does not match the release"
    actual = {k: v for k, v in tree_sha256(folder).items() if k != SIGNATURE}
    differing = [n for n in signed if n != MANIFEST_NAME and actual.get(n) != signed[n]]
    if actual.get(MANIFEST_NAME) != signed.get(MANIFEST_NAME) and len(differing) > 1:
        return (f"{folder / SIGNATURE}: signature does not match this release: it signs other content "
                f"({len(differing)} files and {MANIFEST_NAME} differ), e.g. another release's signature")
    # model files first, then unsigned additions, the manifest last: it changes along with any of them
    for name in sorted(n for n in signed if n != MANIFEST_NAME):
        if name not in actual:
            return f"{folder / name}: signed but missing"
        if actual[name] != signed[name]:
            return f"{folder / name}: differs from the signed content"
    for name in sorted(set(actual) - set(signed)):
        return f"{folder / name}: not covered by the signature"
    if actual.get(MANIFEST_NAME) != signed.get(MANIFEST_NAME):
        return f"{folder / MANIFEST_NAME}: differs from the signed content"
    return f"{folder / SIGNATURE}: signature is not valid for this content"


def verify_folder(folder: Path, public_keys: list[Path]) -> Path:
    """Check folder/model.sig with the trusted key it names; return that key file or raise naming the problem."""
    import model_signing

    hint = signature_hint(folder)
    trusted: dict[str, Path] = {}
    for key in public_keys:
        trusted.setdefault(fingerprint(key), key)  # the first (committed) file of a fingerprint names it
    if hint not in trusted:
        names = ", ".join(str(p) for p in public_keys) or "none"
        raise PipelineError(f"{folder / SIGNATURE}: signed by an untrusted key {hint[:16]} (trusted: {names}); "
                            "commit the signer's public key under keys/ or pass --public-key")
    try:
        verifier = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=trusted[hint])
        verifier.verify(folder, folder / SIGNATURE)
    except Exception as exc:  # model_signing raises ValueError, protobuf and crypto errors alike
        if "Signature mismatch" in str(exc):
            raise PipelineError(_name_mismatch(folder)) from exc
        raise PipelineError(f"{folder / SIGNATURE}: signature is not valid ({type(exc).__name__})") from exc
    return trusted[hint]


def project_key(settings: Settings) -> Path:
    """The private key a run signs with (see `signing_key`), from params release.signing."""
    config = settings.params.release.signing
    return signing_key(settings.resolve(config.private_key), settings.resolve(config.public_key))


def trusted_keys(settings: Settings, include_local: bool = True) -> list[Path]:
    """Committed public keys (*.pub beside release.signing.public_key), plus local generated ones.

    CI and promotion trust only the committed keys; `verify` on a laptop also trusts the key pair
    generated there, so a local run's release verifies before its public key is committed.
    """
    config = settings.params.release.signing
    folders = [settings.resolve(config.public_key).parent]
    if include_local:
        folders.append(settings.resolve(config.private_key).parent)
    return [key for folder in folders for key in sorted(folder.glob("*.pub"))]
