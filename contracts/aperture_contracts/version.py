"""The contracts' version. Bump the major on any incompatible change to a message or body."""

from typing import Final, Literal

SCHEMA_VERSION: Final = "1.0"
SchemaVersion = Literal["1.0"]
