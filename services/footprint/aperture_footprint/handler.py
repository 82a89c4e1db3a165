"""The footprint stage: fetch an image's PB-corrected FITS and its PB, write where it looks on the sky
(a MOC, an STC-S polygon) and its ObsCore record, and store them beside the image as products."""

from pathlib import Path

from aperture_contracts.jobs import FootprintJob
from aperture_contracts.products import FootprintResult
from aperture_shared.worker import JobContext, JobOutcome

from aperture_footprint.moc import moc_file_stem
from aperture_footprint.obscore import ProductIdentity
from aperture_footprint.steps import FootprintStepResult

MJD_UNIX_EPOCH = 40587.0


def product_identity(job: FootprintJob, image_name: str) -> ProductIdentity:
    """What the image's header does not say: its place in the package, the MOUS, the on-source time and
    when the observation ran (from ingest's metadata; the header has only its start)."""
    sets = job.metadata.measurement_sets
    return ProductIdentity(
        access_url=image_name,  # relative to the package; an archive rewrites it when it publishes
        exposure_s=max(sum(ms.exposure_s for ms in sets), 1e-3),
        obs_id=job.mous_id,
        obs_collection=job.obs_collection,
        obs_publisher_did=f"ivo://aperture/products?{image_name}",
        t_min_mjd=min(ms.time_start.timestamp() for ms in sets) / 86400.0 + MJD_UNIX_EPOCH,
        t_max_mjd=max(ms.time_end.timestamp() for ms in sets) / 86400.0 + MJD_UNIX_EPOCH,
    )


async def make_footprint(job: FootprintJob, context: JobContext) -> JobOutcome:
    image = job.image
    inputs = context.scratch / "input"
    inputs.mkdir(parents=True)
    image_path = inputs / Path(image.pbcor.key).name
    pb_path = inputs / Path(image.pb.key).name
    await context.get_file(image.pbcor, image_path)
    await context.get_file(image.pb, pb_path)
    stem = moc_file_stem(pb_path)
    step = FootprintStepResult.model_validate(
        await context.casa(
            "aperture_footprint.steps:make_footprint",
            {
                "image": str(image_path), "pb": str(pb_path), "output_dir": str(context.scratch / "footprint"),
                "stem": stem, "pb_limit": job.pb_limit,
                "identity": product_identity(job, image_path.name).model_dump(mode="json"),
            },
        )
    )
    moc = await context.put_file(Path(step.moc_fits).name, Path(step.moc_fits), "application/fits", product=True)
    moc_json = await context.put_file(Path(step.moc_json).name, Path(step.moc_json), "application/json",
                                      product=True)
    obscore_json = await context.put_file(Path(step.obscore_json).name, Path(step.obscore_json),
                                          "application/json", product=True)
    votable = await context.put_file(Path(step.votable).name, Path(step.votable), "application/x-votable+xml",
                                     product=True)
    return JobOutcome(
        result=FootprintResult(
            kind=image.kind.value, target=image.target, spw_ids=image.spw_ids, moc=moc, moc_json=moc_json,
            moc_order=step.moc_order, area_deg2=step.area_deg2, s_region=step.obscore.s_region,
            pb_limit=job.pb_limit, obscore=step.obscore, votable=votable,
        ),
        outputs=[moc, moc_json, obscore_json, votable],
    )
