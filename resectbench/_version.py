"""The installed version of resectbench (a leaf module: anything may import it without cycles)."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("resectbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"
