"""Reading the reference profile that ships beside a model (`--profile-uri`, `--profile-sha256`):
the same URI schemes and sha256 pin as the model, checked before the JSON is parsed."""

from __future__ import annotations

from pydantic import ValidationError

from modelrollout.profile.schema import Profile
from modelrollout.server.digest import bytes_sha256
from modelrollout.server.fetch import FetchError, one_line, read_artifact
from modelrollout.server.loading import ModelLoadError


def load_profile(uri: str, sha256: str | None, pvc_root: str | None = None) -> Profile:
    """The profile, or ModelLoadError naming the URI (the server then stays unready)."""
    try:
        artifact = read_artifact(uri, pvc_root)
    except FetchError as exc:
        raise ModelLoadError(f"reference profile: {exc}") from None
    if artifact.is_dir:
        raise ModelLoadError(f"reference profile {uri} is a directory; expected one JSON file")
    data = artifact.data
    if sha256 is not None and bytes_sha256(data) != sha256.strip().lower():
        raise ModelLoadError(
            f"reference profile {uri}: sha256 mismatch: expected {sha256}, got {bytes_sha256(data)}"
        )
    try:
        return Profile.model_validate_json(data)
    except ValidationError as exc:
        raise ModelLoadError(f"reference profile {uri}: {one_line(exc)}") from None
