"""Encrypted-release commands of `mobile-mlops`: decrypt a release, rotate the release keyset."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from cli.options import settings
from pipelines.core.errors import PipelineError

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def cmd_decrypt(args: argparse.Namespace) -> int:
    from cli.gitops import project_settings, verify_keys
    from pipelines.release.encryption import decrypt_release
    from pipelines.release.folder import verify_release
    from pipelines.release.signing import verify_folder
    from pipelines.release_format.keyset import load_keyset, origin

    folder, out = Path(args.release), Path(args.out)
    manifest = verify_release(folder)  # ciphertext hashes; then the signature over them and the manifest
    verify_folder(folder, verify_keys(args, folder))
    if manifest.encryption is None:
        raise PipelineError(f"{folder}: not an encrypted release (manifest.json has no encryption record)")
    loaded = project_settings(args, folder)
    handle = load_keyset(loaded)  # missing: one line naming where it was looked for
    restored = decrypt_release(folder, out, handle, manifest.encryption, origin(loaded.params.release.keyset, loaded))
    print(f"OK {folder}: {len(restored)} model files decrypted to {out}, every sha256 as in manifest.json "
          f"(key {manifest.encryption.key_id})")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    from pipelines.release_format.keyset import origin, rotate_keyset

    loaded = settings(args)
    previous, new = rotate_keyset(loaded)
    where = origin(loaded.params.release.keyset, loaded)
    if previous is None:
        print(f"created the release keyset {where}: primary key {new}")
    else:
        print(f"rotated the release keyset {where}: primary key {new} (was {previous}); new releases use it, "
              "older releases still decrypt with the keys kept in the keyset")
    return 0


def register(add: Add, leaf: Callable[..., argparse.ArgumentParser],
             with_params: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `decrypt` and `keys rotate` to the `mobile-mlops` parser."""
    decrypt = add("decrypt", cmd_decrypt, "Verify an encrypted release, then write it with its model files decrypted "
                                          "to --out (nothing is written on a wrong or missing key).")
    decrypt.add_argument("release", help="release folder, e.g. releases/adult-income/1")
    decrypt.add_argument("--out", required=True, metavar="DIR", help="new (or empty) folder for the decrypted release")
    decrypt.add_argument("--public-key", action="append", default=[], metavar="FILE",
                         help="trust only this PEM public key (repeatable); default: the project's keys/")
    decrypt.add_argument("--params", default=None, help="project params file (its release.keyset and keys/)")
    keys = add("keys", lambda a: 2, "The release encryption keyset (params release.keyset).")
    rotate = leaf(keys, "rotate", cmd_rotate,
                  "add a new primary key to the release keyset (old releases still decrypt)",
                  "Add a fresh key (release.keyset.template) to the release keyset and make it primary: releases made "
                  "from now on use it, older ones still decrypt. local: rewrites the file (mode 600); kms: rewrites "
                  "the wrapped keyset; env: rotate it where the secret is stored.")
    with_params(rotate)
