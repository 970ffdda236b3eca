"""Reading the reference profile that ships beside a model (`--profile-uri`, `--profile-sha256`):
the same URI schemes and sha256 pin as the model, checked before the JSON is parsed."""

from __future__ import annotations

from pydantic import ValidationError

from modelrollout.profile.schema import Profile
from modelrollout.server.fetch import FetchError, one_line, read_pinned_file
from modelrollout.server.loading import ModelLoadError


def load_profile(uri: str, sha256: str | None, pvc_root: str | None = None) -> Profile:
    """The profile, or ModelLoadError naming the URI (the server then stays unready)."""
    try:
        data = read_pinned_file(uri, sha256, "reference profile", "JSON file", pvc_root)
    except FetchError as exc:
        raise ModelLoadError(str(exc)) from None
    try:
        return Profile.model_validate_json(data)
    except ValidationError as exc:
        raise ModelLoadError(f"reference profile {uri}: {one_line(exc)}") from None
