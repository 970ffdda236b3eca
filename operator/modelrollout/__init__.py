"""modelrollout: progressive rollout of machine-learning models on Kubernetes."""

from importlib.metadata import PackageNotFoundError, version


def _version() -> str:
    """The installed distribution's version: pyproject.toml's `version`, the one place it is set
    (the images' tags and the chart's version follow it)."""
    try:
        return version("modelrollout")
    except PackageNotFoundError:  # a source tree on sys.path, not installed: read pyproject.toml
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0+unknown"


__version__ = _version()
