"""The footprint service: where each image looks on the sky (MOC, STC-S) and its ObsCore record."""
