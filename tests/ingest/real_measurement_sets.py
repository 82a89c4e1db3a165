"""Names of the real Measurement Sets in the pyuvdata 2.4.5 wheel that the ingest tests use."""

VLA = "multi_1.ms"  # VLA Ka band, J1008+0730, 28 ANTENNA rows (18 with data), no intents
VLA_HIGHER_FREQUENCY = "multi_2.ms"  # the same scan 4 MHz higher
VLA_TWO_SPWS = "day2_TDEM0003_10s_norx_1scan.ms"  # two 64-channel spws, some rows flagged
MWA = "1102865728_small.ms"  # one 112 s MWA snapshot, 128 tiles (121 with data)
ALMA_EXCERPT = "X5707_1spw_1scan_10chan_1time_1bl_noatm.ms"  # ALMA band 3, shipped as .tar.gz
