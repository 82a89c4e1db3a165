"""Aperture's contracts: every job message, completion event, HTTP body and package manifest.

The models are the single source of truth; `python -m aperture_contracts.generate` writes the JSON Schema
files and the AsyncAPI document under `contracts/` from them, and a test fails when those are stale.
"""

from aperture_contracts.version import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION"]
