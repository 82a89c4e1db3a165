"""The previews service: quick-look PNGs, moment maps, spectra and the HiPS of a MOUS's continuum images."""
