"""Running CASA: configured for offline data once per process, always out of the worker's process."""
