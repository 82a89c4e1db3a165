"""The export service: ALMA-style product names, the manifest, casa_commands.log and the weblog."""
