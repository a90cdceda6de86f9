"""The data package's error types, in a leaf module so that decode, sources and tfds_source
can all raise them without importing each other (no import circle)."""
from __future__ import annotations


class DataError(ValueError):
  """A data problem a user must fix (missing folder, no usable image, bad split sizes)."""


class BadImage(Exception):
  """An image that cannot be used; str(e) is '<file>: <reason>'."""
