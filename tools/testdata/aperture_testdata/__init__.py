"""Simulated ALMA-like MOUSs with a known truth, for Aperture's tests and demos (`aperture-make-mous`).

Importing the package needs no CASA; generating and measuring do (they configure it offline first).
"""

from aperture_testdata.generator import GeneratedMous, generate_mous
from aperture_testdata.measure import phase_scatter_deg
from aperture_testdata.truth import MousTruth

__all__ = ["GeneratedMous", "MousTruth", "generate_mous", "phase_scatter_deg"]
