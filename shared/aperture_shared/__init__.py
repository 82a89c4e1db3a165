"""What every Aperture service needs, written once: settings, logging, messaging, storage, metrics,
the CASA runner and the worker loop."""
