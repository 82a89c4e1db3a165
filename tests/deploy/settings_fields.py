"""Which APERTURE_* environment variables a service really reads, for the tests of its deployment files
(Dockerfiles, docker-compose.yml, k8s/). pydantic-settings ignores variables it does not know, so a
misspelt or retired name in a deployment file would silently do nothing; these tests catch it."""

from pydantic_settings import BaseSettings


def variable_is_read(name: str, *settings_classes: type[BaseSettings]) -> bool:
    """Whether `name` is the environment variable of a field of one of these settings classes (each with
    its own env_prefix, e.g. APERTURE_ or APERTURE_CASA_)."""
    for settings in settings_classes:
        prefix = str(settings.model_config.get("env_prefix", "")).upper()
        if name.startswith(prefix) and name[len(prefix) :].lower() in settings.model_fields:
            return True
    return False
