"""A published release's model, as the drift check (data) and the next release (release) load it."""
from __future__ import annotations

import hashlib
from pathlib import Path

from pipelines.core.config import Settings
from pipelines.core.errors import PipelineError
from pipelines.core.io import read_json
from pipelines.core.paths import RELEASE_MANIFEST_FILE, tflite_file
from pipelines.release_format.keyset import decrypt_bytes, load_keyset
from pipelines.release_format.keyset import origin as keyset_origin

# A release ships its selected variants, not all of them: the drift check runs the most precise one it has.
REFERENCE_MODELS = tuple(tflite_file(v) for v in ("float32", "float16", "dynamic_int8", "int8"))


def reference_model(release: Path) -> Path | None:
    """The most precise TFLite model a release carries."""
    return next((release / name for name in REFERENCE_MODELS if (release / name).is_file()), None)


def reference_model_bytes(settings: Settings, release: Path) -> tuple[str, bytes] | None:
    """(file name, content) of the most precise TFLite model a release carries; an encrypted release's model is
    decrypted in memory with the release keyset (a missing or wrong key is one line)."""
    if (plain := reference_model(release)) is not None:
        return plain.name, plain.read_bytes()
    manifest = release / RELEASE_MANIFEST_FILE
    encrypted = (read_json(manifest).get("encryption") or {}).get("files", {}) if manifest.is_file() else {}
    name = next((n for n in REFERENCE_MODELS if n in encrypted), None)
    if name is None:
        return None
    where = keyset_origin(settings.params.release.keyset, settings)
    content = decrypt_bytes(load_keyset(settings), release / encrypted[name]["ciphertext"], name.encode(), where)
    if hashlib.sha256(content).hexdigest() != encrypted[name]["sha256"]:
        raise PipelineError(f"{release / encrypted[name]['ciphertext']}: decrypts to content whose sha256 differs "
                            f"from {RELEASE_MANIFEST_FILE}")
    return name, content
