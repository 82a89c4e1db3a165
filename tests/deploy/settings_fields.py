"""Which APERTURE_* environment variables a service really reads, for the tests of its deployment files
(Dockerfiles, docker-compose.yml, k8s/). pydantic-settings ignores variables it does not know, so a
misspelt or retired name in a deployment file would silently do nothing; these tests catch it."""

from aperture_calibration.settings import CalibrationSettings
from aperture_contracts.enums import Stage
from aperture_export.settings import ExportSettings
from aperture_findcont.settings import FindcontSettings
from aperture_footprint.settings import FootprintSettings
from aperture_imaging.settings import ImagingSettings
from aperture_ingest.settings import IngestSettings
from aperture_previews.settings import PreviewsSettings
from pydantic_settings import BaseSettings

# The settings of each stage's worker (besides aperture_shared.settings.CasaSettings, which every worker
# reads too), by the stage's name: the worker is aperture-<stage>, whatever its memory class.
STAGE_WORKER_SETTINGS: dict[str, type[BaseSettings]] = {
    Stage.INGEST: IngestSettings, Stage.CALIBRATION: CalibrationSettings, Stage.FINDCONT: FindcontSettings,
    Stage.IMAGING: ImagingSettings, Stage.PREVIEWS: PreviewsSettings, Stage.FOOTPRINT: FootprintSettings,
    Stage.EXPORT: ExportSettings,
}


def variable_is_read(name: str, *settings_classes: type[BaseSettings]) -> bool:
    """Whether `name` is the environment variable of a field of one of these settings classes (each with
    its own env_prefix, e.g. APERTURE_ or APERTURE_CASA_)."""
    for settings in settings_classes:
        prefix = str(settings.model_config.get("env_prefix", "")).upper()
        if name.startswith(prefix) and name[len(prefix) :].lower() in settings.model_fields:
            return True
    return False
