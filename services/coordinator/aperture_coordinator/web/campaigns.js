// The campaigns page, for operators: every campaign with its members by state, throughput and expected
// completion; a campaign's report opened under its row (failures by error class with examples, time per
// MOUS, products); pause, resume, cancel, and retry of one error class. Everything goes through
// /api/v1/campaigns with the operator's bearer token, refreshed every few seconds; what the reader opened
// stays open across refreshes.

import { $, ApiProblem, call, connectTokenInput, describe, oneAtATime, showStatus, token } from "./client.js";
import {
  button, cell, clampedCell, element, formatBytes, formatDuration, progressMeter, stateBadge, table, timeElement,
} from "./render.js";

const API = "/api/v1/campaigns";
const REFRESH_MS = 5000;
const LIMIT = 100;
const COLUMNS = 7;
const ENDED_MEMBER_STATES = ["completed", "failed", "cancelled"];
// Member states in words where the API's word is not the reader's; others are shown as they are.
const MEMBER_STATE_WORDS = { submitted: "in flight" };
// A campaign in these states changes only when someone acts on it (its updated_at moves): its report is
// read again then, or when the reader opens it, not at every refresh. Nor can it be cancelled.
const ENDED = new Set(["completed", "cancelled"]);

/** A refused call in words: what a 403 and a 409 mean on this page, else the shared meanings (401, 429)
 * or the API's own detail. */
function inWords(error) {
  if (error instanceof ApiProblem && error.status === 403) {
    return `This page is for operators, and this token is not an operator's (403): ${error.message}`;
  }
  if (error instanceof ApiProblem && error.status === 409) {
    return `The campaign's state does not allow it now (409): ${error.message}`;
  }
  return describe(error);
}

// -- formats -------------------------------------------------------------------------------------------

const endedMembers = (members) => ENDED_MEMBER_STATES.reduce((sum, state) => sum + (members[state] || 0), 0);

/** "12 of 40 ended (10 completed, 2 failed), 3 in flight, 25 pending (5 held)". */
function membersSentence(campaign) {
  const { members, total } = campaign;
  if (!total) return "no members";
  const count = (state) => `${members[state]} ${MEMBER_STATE_WORDS[state] || state}`
    + (state === "pending" && campaign.held ? ` (${campaign.held} held)` : "");
  const ends = ENDED_MEMBER_STATES.filter((state) => members[state]).map(count);
  const parts = [`${endedMembers(members)} of ${total} ended${ends.length ? ` (${ends.join(", ")})` : ""}`];
  // In flight first, then pending (and any state the API adds later).
  const waiting = ["submitted", ...Object.keys(members).filter((state) => state !== "submitted")]
    .filter((state) => !ENDED_MEMBER_STATES.includes(state) && members[state]);
  parts.push(...waiting.map(count));
  return parts.join(", ");
}

function membersProgress(campaign) {
  const text = membersSentence(campaign);
  return progressMeter(endedMembers(campaign.members), campaign.total, text, `Members of ${campaign.name}`);
}

function perHour(rate) {
  return rate === null || rate === undefined ? "—" : `${rate.toFixed(1)} MOUS/h`;
}

function throughputText(throughput) {
  return `${perHour(throughput.last_hour)} in the last hour, ${perHour(throughput.overall_per_hour)} overall`;
}

/** When the campaign should end: a time, or why there is none. */
function expectedCompletion(campaign, report) {
  if (report?.expected_completion_at) return [timeElement(report.expected_completion_at)];
  const why = {
    completed: "completed", cancelled: "cancelled", paused: "none while it is paused",
    awaiting_validation: "none until its held categories are released",
    active: report?.campaign ? "not known yet: no member has ended" : "",
  };
  return [why[campaign.state] ?? ""];
}

function durationsText(durations) {
  if (!durations.count) return "no MOUS has completed yet";
  return `median ${formatDuration(durations.median_s)}, mean ${formatDuration(durations.mean_s)} `
    + `(${durations.count} completed MOUS)`;
}

// -- what the page shows, kept across refreshes --------------------------------------------------------

let shownList = null;
let shownAnswer = "";
/** Each listed campaign's report, by id: a CampaignReport, or {error}. */
const reports = new Map();
/** The campaigns whose report the reader opened, by id. */
const opened = new Set();

// -- a campaign's report -------------------------------------------------------------------------------

function fact(term, key, ...content) {
  return [element("dt", { text: term }), element("dd", { attrs: { "data-fact": key } }, ...content)];
}

function factsList(report) {
  const campaign = report.campaign;
  const facts = [
    ...fact("Pipeline", "pipeline", `version ${campaign.pipeline_version}, ${campaign.recipe} recipe`),
    ...fact("In flight at most", "max-in-flight", String(campaign.max_in_flight)),
    ...fact("Remaining", "remaining", `${report.remaining} member(s) pending or in flight`),
    ...fact("Expected completion", "expected", ...expectedCompletion(campaign, report)),
    ...fact("Throughput", "throughput", throughputText(report.throughput)),
    ...fact("Time per MOUS", "time-per-mous", durationsText(report.time_per_mous)),
    ...fact("Products", "products", `${report.products} file(s), ${formatBytes(report.product_bytes)}`),
  ];
  if (Object.keys(campaign.parameters).length) {
    facts.push(...fact("Parameters", "parameters", JSON.stringify(campaign.parameters)));
  }
  return element("dl", { className: "facts" }, ...facts);
}

/** A state's word as a column header: "In flight", "Pending". */
function stateHeader(state) {
  const words = (MEMBER_STATE_WORDS[state] || state).replaceAll("_", " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function membersTable(campaign) {
  const states = Object.keys(campaign.members);
  const row = element("tr", {},
    ...states.map((state) => cell(String(campaign.members[state]), `members-${state}`)),
    cell(String(campaign.total), "members-total"));
  return table("members", `Members of ${campaign.name} by state`, [...states.map(stateHeader), "Total"], [row]);
}

/** The members by category (array, band, spws, ...), where the report has them. */
function categoriesTable(report) {
  const rows = report.categories.map((category) => element("tr", { attrs: { "data-category": category.category } },
    cell(category.category, "category"), cell(String(category.total)), cell(membersSentence(category)),
    cell(category.sampled ? `${category.sampled} (${category.sample_failed} failed)` : "—"),
    cell(String(category.held || 0))));
  return table("categories", `Members of ${report.campaign.name} by category`,
    ["Category", "Members", "By state", "Sampled", "Held"], rows);
}

function sizesTable(report) {
  const rows = report.time_per_mous_by_size.map((bucket) => element("tr", {},
    cell(bucket.label), cell(String(bucket.count)), cell(formatDuration(bucket.median_s)),
    cell(formatDuration(bucket.mean_s))));
  return table("sizes", `Time per completed MOUS of ${report.campaign.name}, by package size`,
    ["Package size", "MOUS", "Median", "Mean"], rows);
}

function failureClass(campaign, failure) {
  const errorClass = failure.error_class;
  const retry = button(
    `Retry ${errorClass}`, `Retry ${errorClass} failures of ${campaign.name} (${failure.count})`,
    `retry:${campaign.campaign_id}:${errorClass}`, campaign.state === "cancelled",
    () => retryClass(campaign, errorClass),
  );
  const shown = failure.examples.length < failure.count
    ? `the first ${failure.examples.length} of ${failure.count}` : `all ${failure.count}`;
  const rows = failure.examples.map((example) => element("tr", { attrs: { "data-mous-id": example.mous_id } },
    cell(example.mous_id, "id"), cell(example.job_id ?? "—", "job"), clampedCell(example.message, "message")));
  return element("div", { className: "failure-class", attrs: { "data-error-class": errorClass } },
    element("p", {}, element("strong", { text: errorClass }), `: ${failure.count} member(s) failed `, retry),
    table("examples", `Examples of the ${errorClass} failures of ${campaign.name} (${shown})`,
      ["MOUS", "Job", "Message"], rows));
}

function failuresArea(report) {
  const area = element("div", { className: "failures" }, element("h4", { text: "Failures by error class" }));
  if (!report.failures.length) {
    area.append(element("p", { className: "help no-failures", text: "No member has failed." }));
  }
  area.append(...report.failures.map((failure) => failureClass(report.campaign, failure)));
  return area;
}

function reportSection(report) {
  const campaign = report.campaign;
  const headingId = `report-${campaign.campaign_id}`;
  const section = element("section", { className: "report", attrs: { "aria-labelledby": headingId } },
    element("h3", { attrs: { id: headingId } }, `Report of ${campaign.name} `, stateBadge(campaign.state)),
    element("p", { className: "times" }, "Submitted ", timeElement(campaign.created_at), "; read ",
      timeElement(report.generated_at)),
    factsList(report), membersTable(campaign));
  if (report.time_per_mous_by_size.length) section.append(sizesTable(report));
  if (report.categories?.length) section.append(categoriesTable(report));
  section.append(failuresArea(report));
  return section;
}

/** The row under a campaign's: its report, once read. */
function reportRow(campaign) {
  const report = reports.get(campaign.campaign_id);
  const content = element("td", { attrs: { colspan: String(COLUMNS) } });
  if (!report) content.append(element("p", { className: "help", text: "Reading the report…" }));
  else if (report.error) content.append(element("p", { className: "error", text: report.error }));
  else content.append(reportSection(report));
  return element("tr", { className: "campaign-report", attrs: { "data-report-for": campaign.campaign_id } }, content);
}

// -- the list ------------------------------------------------------------------------------------------

function campaignRow(campaign) {
  const id = campaign.campaign_id;
  const name = campaign.name;
  const report = reports.get(id);
  const open = opened.has(id);
  const toggle = button(open ? "Hide report" : "Report", `${open ? "Hide report" : "Report"} of ${name}`,
    `report:${id}`, false, () => toggleReport(id));
  toggle.setAttribute("aria-expanded", String(open));
  const actions = element("td", { className: "actions" }, toggle,
    button("Pause", `Pause ${name}`, `pause:${id}`, campaign.state !== "active", () => steer(campaign, "pause")),
    button("Resume", `Resume ${name}`, `resume:${id}`, campaign.state !== "paused", () => steer(campaign, "resume")),
    button("Cancel", `Cancel ${name}`, `cancel:${id}`, ENDED.has(campaign.state), () => cancelCampaign(campaign)));
  return element("tr", { attrs: { "data-campaign-id": id } },
    element("td", { className: "campaign" }, element("strong", { text: name, className: "name" }), element("br"),
      element("span", { text: id, className: "id help" })),
    element("td", { className: "state" }, stateBadge(campaign.state)),
    clampedCell(campaign.reason, "reason"),
    element("td", { className: "members" }, membersProgress(campaign)),
    cell(report?.throughput ? throughputText(report.throughput) : "", "throughput"),
    element("td", { className: "expected" }, ...expectedCompletion(campaign, report)),
    actions);
}

/** Rebuild the list from the last answers and what the reader opened; focus stays on what had it. */
function render() {
  const body = $("#campaigns > tbody");
  const focused = body.contains(document.activeElement) ? document.activeElement.dataset.key : undefined;
  const campaigns = shownList?.campaigns || [];
  body.replaceChildren(...campaigns.flatMap((campaign) => (
    opened.has(campaign.campaign_id) ? [campaignRow(campaign), reportRow(campaign)] : [campaignRow(campaign)])));
  if (focused) body.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
  document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
}

function forget() {
  shownList = null;
  shownAnswer = "";
  reports.clear();
  render();
}

function needsReport(campaign) {
  const known = reports.get(campaign.campaign_id);
  return !known?.campaign || opened.has(campaign.campaign_id) || !ENDED.has(campaign.state)
    || known.campaign.updated_at !== campaign.updated_at;
}

async function readReport(campaign) {
  const id = campaign.campaign_id;
  try {
    reports.set(id, await call(`${API}/${encodeURIComponent(id)}/report`));
  } catch (error) {
    reports.set(id, { error: `The report could not be read: ${inWords(error)}` });
  }
}

async function readCampaigns() {
  if (!token()) {
    $("#list-message").textContent = "Enter an operator's token to see the campaigns.";
    forget();
    return;
  }
  let list;
  try {
    list = await call(`${API}?limit=${LIMIT}`);
  } catch (error) {
    const words = inWords(error);
    $("#list-message").textContent = `The campaigns could not be read: ${words}`;
    if (error instanceof ApiProblem && (error.status === 401 || error.status === 403)) {
      showStatus(words, true); // a problem of the token typed above; what another token saw goes
      forget();
    }
    return;
  }
  await Promise.all(list.campaigns.filter(needsReport).map(readReport));
  const listed = new Set(list.campaigns.map((campaign) => campaign.campaign_id));
  for (const id of [...reports.keys()]) if (!listed.has(id)) reports.delete(id);
  const shown = list.campaigns.length < list.total ? ` (the newest ${list.campaigns.length} shown)` : "";
  $("#list-message").textContent = list.total ? `${list.total} campaign(s)${shown}.` : "No campaigns yet.";
  // The time a report was read at changes at every refresh; what it says may not.
  const answer = JSON.stringify([list, [...reports].map(([id, { generated_at: _readAt, ...report }]) => [id, report])]);
  if (answer === shownAnswer) return; // nothing changed: leave the page (and the reader) alone
  shownList = list;
  shownAnswer = answer;
  render();
}

const refresh = oneAtATime(readCampaigns);

// -- acting on a campaign ------------------------------------------------------------------------------

function toggleReport(id) {
  if (opened.has(id)) {
    opened.delete(id);
    render();
    return;
  }
  opened.add(id);
  render();
  refresh(); // the report as it is now, not as it was when last read
}

async function steer(campaign, action) {
  const doing = { pause: "Pausing", resume: "Resuming", cancel: "Cancelling" }[action];
  try {
    const view = await call(`${API}/${encodeURIComponent(campaign.campaign_id)}/${action}`, { method: "POST" });
    showStatus(`Campaign ${view.name} is ${view.state}: ${view.reason}.`);
  } catch (error) {
    showStatus(`${doing} ${campaign.name}: ${inWords(error)}`, true);
  }
  await refresh();
}

function cancelCampaign(campaign) {
  const { pending, submitted } = campaign.members;
  const question = `Cancel campaign ${campaign.name}? Its ${pending} pending member(s) are cancelled and its `
    + `${submitted} MOUS run(s) in flight are stopped; completed members keep their products. A cancelled `
    + "campaign cannot be resumed.";
  if (window.confirm(question)) steer(campaign, "cancel");
}

async function retryClass(campaign, errorClass) {
  const query = new URLSearchParams({ error_class: errorClass });
  try {
    const path = `${API}/${encodeURIComponent(campaign.campaign_id)}/retry?${query}`;
    const retried = await call(path, { method: "POST" });
    showStatus(`${retried.members_requeued} ${errorClass} failure(s) of ${campaign.name} put back in its queue.`);
  } catch (error) {
    showStatus(`Retrying the ${errorClass} failures of ${campaign.name}: ${inWords(error)}`, true);
  }
  await refresh();
}

// -- start ---------------------------------------------------------------------------------------------

function start() {
  connectTokenInput(refresh);
  refresh();
  setInterval(refresh, REFRESH_MS);
  document.body.dataset.ready = "true";
}

start();
