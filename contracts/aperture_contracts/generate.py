"""Write the JSON Schema files and the AsyncAPI document under contracts/ from the models.

    python -m aperture_contracts.generate          # rewrite
    python -m aperture_contracts.generate --check  # exit 1 when a checked-in file is stale
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from aperture_contracts import api, campaigns, events, jobs, ledger, manifest, obscore, packaging, reports, topology
from aperture_contracts.enums import MemoryClass, Stage
from aperture_contracts.version import SCHEMA_VERSION

CONTRACTS_DIR = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = CONTRACTS_DIR / "schemas"
ASYNCAPI_PATH = CONTRACTS_DIR / "asyncapi.json"

# Every model that crosses a boundary: messages on the broker, HTTP bodies, files in packages.
MESSAGE_MODELS: dict[str, type[BaseModel]] = {
    "IngestJob": jobs.IngestJob,
    "CalibrationJob": jobs.CalibrationJob,
    "FindcontJob": jobs.FindcontJob,
    "ImagingJob": jobs.ImagingJob,
    "PreviewsJob": jobs.PreviewsJob,
    "FootprintJob": jobs.FootprintJob,
    "ExportJob": jobs.ExportJob,
    "JobStarted": events.JobStarted,
    "JobSucceeded": events.JobSucceeded,
    "JobFailed": events.JobFailed,
    "CancelJobs": events.CancelJobs,
}
DOCUMENT_MODELS: dict[str, type[BaseModel]] = {
    "RestoreManifest": packaging.RestoreManifest,
    "IngestReport": reports.IngestReport,
    "ProductManifest": manifest.Manifest,
    "ObsCoreRecord": obscore.ObsCoreRecord,
    "SubmitFromStorage": api.SubmitFromStorage,
    "MousSummary": api.MousSummary,
    "MousDetail": api.MousDetail,
    "MousList": api.MousList,
    "Problem": api.Problem,
    "Health": api.Health,
    "CampaignCreate": campaigns.CampaignCreate,
    "CampaignSubmitted": campaigns.CampaignSubmitted,
    "CampaignView": campaigns.CampaignView,
    "CampaignList": campaigns.CampaignList,
    "CampaignRetried": campaigns.CampaignRetried,
    "CampaignRelease": campaigns.CampaignRelease,
    "CampaignReleased": campaigns.CampaignReleased,
    "CampaignReport": campaigns.CampaignReport,
    "LedgerPage": ledger.LedgerPage,
    "LedgerSummary": ledger.LedgerSummary,
}


def schema_documents() -> dict[Path, dict[str, Any]]:
    documents: dict[Path, dict[str, Any]] = {}
    for name, model in {**MESSAGE_MODELS, **DOCUMENT_MODELS}.items():
        schema = model.model_json_schema()
        schema["$id"] = f"https://aperture.dev/schemas/v{SCHEMA_VERSION}/{name}.json"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        documents[SCHEMAS_DIR / f"aperture.{name}.v{SCHEMA_VERSION}.json"] = schema
    return documents


def _message(name: str, summary: str) -> dict[str, Any]:
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{name}"},
    }


def asyncapi_document() -> dict[str, Any]:
    """The queues and messages, in AsyncAPI 3.0."""
    schemas: dict[str, Any] = {}
    for name, model in MESSAGE_MODELS.items():
        schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    job_messages = {Stage.INGEST: "IngestJob", Stage.CALIBRATION: "CalibrationJob", Stage.FINDCONT: "FindcontJob",
                    Stage.IMAGING: "ImagingJob", Stage.PREVIEWS: "PreviewsJob", Stage.FOOTPRINT: "FootprintJob",
                    Stage.EXPORT: "ExportJob"}
    for stage in Stage:
        channel = f"jobs.{stage.value}"
        message = job_messages.get(stage)
        channels[channel] = {
            "address": topology.job_queue(stage),
            "description": (
                f"Work queue of the {stage.value} stage: exchange {topology.JOBS_EXCHANGE} (direct), "
                f"routing key {stage.value!r}; quorum queue, delivery limit {topology.DELIVERY_LIMIT}, "
                f"dead letters to {topology.DEAD_LETTER_EXCHANGE}. Larger workers have their own queue beside it: "
                + ", ".join(
                    f"{topology.job_queue(stage, size)} (routing key {topology.job_routing_key(stage, size)!r})"
                    for size in MemoryClass if size is not MemoryClass.STANDARD
                )
                + "."
                + ("" if message else " No message type yet: the stage's service is not built.")
            ),
            "messages": {message: {"$ref": f"#/components/messages/{message}"}} if message else {},
        }
        if message:
            operations[f"dispatch{message}"] = {
                "action": "send", "channel": {"$ref": f"#/channels/{channel}"},
                "summary": "The coordinator dispatches a job (through its outbox).",
            }
            operations[f"consume{message}"] = {
                "action": "receive", "channel": {"$ref": f"#/channels/{channel}"},
                "summary": f"A {stage.value} worker takes a job; it acknowledges once the job's completion "
                "event is confirmed.",
            }
    channels["events"] = {
        "address": topology.EVENTS_QUEUE,
        "description": f"Completion events: exchange {topology.EVENTS_EXCHANGE}, routing key "
        f"{topology.EVENTS_ROUTING_KEY!r}; consumed by the coordinator.",
        "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in ("JobStarted", "JobSucceeded", "JobFailed")},
    }
    channels["control"] = {
        "address": topology.CONTROL_EXCHANGE,
        "description": "Fanout to every worker (each binds a private queue): stop these jobs.",
        "messages": {"CancelJobs": {"$ref": "#/components/messages/CancelJobs"}},
    }
    channels["dead-letters"] = {
        "address": topology.DEAD_LETTER_QUEUE,
        "description": "Messages that could not be processed, with the reason in the header "
        "x-aperture-dead-reason (or x-first-death-reason when the broker's delivery limit was reached).",
        "messages": {},
    }
    operations["publishEvents"] = {"action": "send", "channel": {"$ref": "#/channels/events"}}
    operations["consumeEvents"] = {"action": "receive", "channel": {"$ref": "#/channels/events"}}
    operations["cancelJobs"] = {"action": "send", "channel": {"$ref": "#/channels/control"}}
    summaries = {
        "IngestJob": "Check, describe and restore an MS package.",
        "CalibrationJob": "Calibrate the ingested MSs, or pass restored ones through.",
        "FindcontJob": "Find the continuum ranges of one target in one spw.",
        "ImagingJob": "Subtract a target's continuum, or make one of its images.",
        "PreviewsJob": "Quick-looks of one image (moment maps of a cube, a HiPS of an aggregate continuum).",
        "FootprintJob": "The footprint (MOC, STC-S) and ObsCore record of one image.",
        "ExportJob": "Name, list and check the run's products; write casa_commands.log and the weblog.",
        "JobStarted": "A worker took a job attempt.",
        "JobSucceeded": "A job attempt finished; its outputs are stored.",
        "JobFailed": "A job attempt failed, with its error class.",
        "CancelJobs": "Stop these jobs.",
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Aperture messaging",
            "version": SCHEMA_VERSION,
            "description": "Job messages, completion events and control messages on RabbitMQ. Every "
            "message is persistent and carries schema_version, mous_id, job_id and attempt.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {name: _message(name, summaries[name]) for name in MESSAGE_MODELS},
            "schemas": schemas,
        },
    }


def rendered() -> dict[Path, str]:
    files = {path: json.dumps(doc, indent=2, sort_keys=True) + "\n" for path, doc in schema_documents().items()}
    files[ASYNCAPI_PATH] = json.dumps(asyncapi_document(), indent=2, sort_keys=True) + "\n"
    return files


def stale_files() -> list[Path]:
    """Checked-in files that differ from what the models give, and generated files that are missing."""
    wanted = rendered()
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    extra = [p for p in SCHEMAS_DIR.glob("*.json") if p not in wanted] if SCHEMAS_DIR.exists() else []
    return stale + extra


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"stale: {path.relative_to(CONTRACTS_DIR)}", file=sys.stderr)
        if stale:
            print("run `make contracts` and commit the result", file=sys.stderr)
        return 1 if stale else 0
    SCHEMAS_DIR.mkdir(exist_ok=True)
    for path in SCHEMAS_DIR.glob("*.json"):
        path.unlink()
    for path, text in rendered().items():
        path.write_text(text)
    print(f"wrote {len(rendered())} files under {CONTRACTS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
