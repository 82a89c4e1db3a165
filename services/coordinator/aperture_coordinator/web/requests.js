// The requests page: build a request from the form, estimate it (dry run), submit it; follow the user's
// requests as they run (progress, jobs, QA), fetch a version's products, run a request again or cancel it.
// Everything goes through /api/v1/requests with the user's bearer token.

import { $, ApiProblem, call, connectTokenInput, describe, explain, oneAtATime, showStatus, token } from "./client.js";
import {
  button, cell, clampedCell, element, formatBytes, formatDuration, progressBar, qaWords, stateBadge, table,
  timeElement,
} from "./render.js";

const API = "/api/v1/requests";
const REFRESH_MS = 3000;
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
// Versions whose products can be listed: ended, and not cancelled (a cancelled version's outputs are removed).
const DELIVERED = new Set(["succeeded", "failed"]);

// -- messages ------------------------------------------------------------------------------------------

function clearErrors() {
  for (const slot of document.querySelectorAll("#request-form [data-error-for]")) slot.textContent = "";
  for (const input of document.querySelectorAll("#request-form [aria-invalid]")) input.removeAttribute("aria-invalid");
  $("#form-message").textContent = "";
}

/** The error slot for an API field such as `cubes.0.spectral_axis.width`: that row's width, or the
 * nearest enclosing slot (the row, the cubes, the form) when there is no input of that name. */
function slotFor(field) {
  const parts = field.split(".");
  if (parts[0] === "cubes" && /^\d+$/.test(parts[1] || "")) {
    const row = document.querySelectorAll("#cubes > li")[Number(parts[1])];
    if (row) {
      for (let end = parts.length; end >= 2; end--) {
        const name = parts.slice(2, end).join(".");
        const slot = row.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
        if (slot) return slot;
      }
    }
    return $('#request-form [data-error-for="cubes"]');
  }
  // A field of the request itself (mous_id, robust, ...): its slot outside the cube rows.
  return [...document.querySelectorAll(`#request-form [data-error-for="${CSS.escape(field)}"]`)]
    .find((slot) => !slot.closest("#cubes")) || null;
}

function showFieldErrors(error) {
  const unplaced = [];
  for (const { field, message } of error.errors) {
    const slot = field ? slotFor(String(field)) : null;
    if (!slot) {
      unplaced.push(field ? `${field}: ${message}` : message);
      continue;
    }
    slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
    const input = slot.parentElement.querySelector("[data-field]");
    if (input && slot.dataset.errorFor) input.setAttribute("aria-invalid", "true");
  }
  if (unplaced.length || !error.errors.length) {
    $("#form-message").textContent = unplaced.length ? unplaced.join("; ") : error.message;
  }
}

function reportFormProblem(error) {
  const meaning = error instanceof ApiProblem ? explain(error) : null;
  if (meaning) {
    showStatus(meaning, true);
  } else if (error instanceof ApiProblem) {
    showFieldErrors(error);
  } else {
    $("#form-message").textContent = `The coordinator could not be reached: ${error.message}`;
  }
}

// -- the form ------------------------------------------------------------------------------------------

let rowsMade = 0;

function addCube() {
  const row = $("#cube-row").content.firstElementChild.cloneNode(true);
  rowsMade += 1;
  for (const input of row.querySelectorAll("[data-field]")) {
    input.id = `cube${rowsMade}-${input.dataset.field.replace(".", "-")}`;
    row.querySelector(`label[data-for="${input.dataset.field}"]`).htmlFor = input.id;
    const slot = row.querySelector(`[data-error-for="${input.dataset.field}"]`);
    slot.id = `${input.id}-error`;
    input.setAttribute("aria-describedby", slot.id);
  }
  row.querySelector(".remove-cube").addEventListener("click", () => row.remove());
  $("#cubes").append(row);
  return row;
}

function numberOrNull(input) {
  const text = input.value.trim();
  return text === "" ? null : Number(text);
}

/** The form as a RequestCreate body; empty optional fields are left out (the API's defaults). */
function requestBody() {
  const body = { mous_id: $("#mous_id").value.trim(), cubes: [] };
  for (const row of document.querySelectorAll("#cubes > li")) {
    const value = (name) => row.querySelector(`[data-field="${name}"]`);
    const axis = {
      mode: value("spectral_axis.mode").value,
      start: numberOrNull(value("spectral_axis.start")),
      width: numberOrNull(value("spectral_axis.width")),
      nchan: numberOrNull(value("spectral_axis.nchan")),
      velocity_convention: value("spectral_axis.velocity_convention").value,
      frame: value("spectral_axis.frame").value,
    };
    const rest = numberOrNull(value("spectral_axis.rest_frequency_hz"));
    if (rest !== null) axis.rest_frequency_hz = rest;
    body.cubes.push({ spw_id: numberOrNull(value("spw_id")), spectral_axis: axis });
  }
  for (const name of ["robust", "target_resolution_arcsec", "field_size_arcsec"]) {
    const number = numberOrNull($(`#${name}`));
    if (number !== null) body[name] = number;
  }
  return body;
}

function showEstimate(estimate) {
  $("#estimate-size").textContent = formatBytes(estimate.product_bytes);
  $("#estimate-largest").textContent = formatBytes(estimate.largest_cube_bytes);
  $("#estimate-images").textContent = String(estimate.images);
  $("#estimate-time").textContent = `about ${formatDuration(estimate.run_time_s)} (${estimate.run_time_basis})`;
  const mitigation = $("#estimate-mitigation");
  mitigation.replaceChildren(...estimate.mitigation.map((line) => {
    const item = document.createElement("li");
    item.textContent = line;
    return item;
  }));
  $("#estimate-result").hidden = false;
}

async function estimateRequest() {
  clearErrors();
  $("#estimate-result").hidden = true;
  try {
    const answer = await call(`${API}?dry_run=true`, { method: "POST", body: requestBody() });
    showStatus("");
    showEstimate(answer.estimate);
  } catch (error) {
    reportFormProblem(error);
  }
}

async function submitRequest(event) {
  event.preventDefault();
  clearErrors();
  try {
    const created = await call(API, { method: "POST", body: requestBody() });
    showStatus(`Request ${created.request_id} accepted.`);
    await refreshList();
  } catch (error) {
    reportFormProblem(error);
  }
}

// -- what the person opened, kept across refreshes -----------------------------------------------------
// The list is rebuilt whenever the API's answer changes (every few seconds while a version runs); what the
// person opened is kept here, by key, and the rebuilt list takes it from here.

/** <details> the person opened or closed, by key; one they have not touched shows its default. */
const detailsOpen = new Map();
/** The product listings shown, by version key: a ProductList, or {loading} or {error} while there is none. */
const productListings = new Map();

const versionKey = (requestId, version) => `${requestId}/v${version}`;

function keptDetails(key, summaryText, openByDefault, ...content) {
  const details = element("details", { attrs: { "data-key": key } },
    element("summary", { text: summaryText, attrs: { "data-key": `${key}/summary` } }), ...content);
  details.open = detailsOpen.has(key) ? detailsOpen.get(key) : openByDefault;
  let shown = details.open;
  details.addEventListener("toggle", () => {
    if (details.open === shown) return; // the toggle of being built open, not the person's
    shown = details.open;
    detailsOpen.set(key, shown);
  });
  return details;
}

// -- one version ---------------------------------------------------------------------------------------

function timesLine(version) {
  const line = element("p", { className: "times" }, "Asked ", timeElement(version.created_at));
  if (version.started_at) line.append(", started ", timeElement(version.started_at));
  if (version.ended_at) {
    line.append(", ended ", timeElement(version.ended_at));
    if (version.started_at) {
      const seconds = (Date.parse(version.ended_at) - Date.parse(version.started_at)) / 1000;
      line.append(` (${formatDuration(seconds)})`);
    }
  }
  return line;
}

function ratio(value) {
  return value === null || value === undefined ? "—" : `${value.toFixed(2)} ×`;
}

function qaTable(key, version) {
  const failing = version.qa.filter((check) => !check.passed).length;
  const rows = version.qa.map((check) => element(
    "tr", { className: check.passed ? "passed" : "not-passed" },
    cell(check.image), cell(check.kind), cell(check.spw_ids.join(", ")), cell(ratio(check.rms_ratio), "ratio"),
    cell(ratio(check.beam_ratio), "ratio"), cell(qaWords(check.passed), "qa-passed"),
    cell(check.notes.join("; "), "notes"),
  ));
  const summary = `QA per image: ${version.qa.length} image(s), ${failing ? `${failing} not passed` : "all passed"}`;
  // Open by default where something did not pass: that is what the person will want to read.
  return keptDetails(`qa:${key}`, summary, failing > 0, table(
    "qa", `Result QA of version ${version.version}: each image's rms and beam against what the data should give`,
    ["Image", "Kind", "Spws", "rms × expected", "beam × expected", "Passed", "Notes"], rows,
  ));
}

function jobsTable(key, version) {
  const rows = version.jobs.map((job) => element(
    "tr", { attrs: { "data-job-id": job.job_id } },
    cell(job.job_id.split(".").slice(2).join(".")), cell(job.stage), cell(job.kind), cell(job.target),
    cell(job.spw_id === null ? "" : String(job.spw_id)), cell(job.state, "job-state"),
    cell(job.reason), cell(String(job.attempts)),
    cell(job.duration_s === null || job.duration_s === undefined ? "" : formatDuration(job.duration_s)),
  ));
  return keptDetails(`jobs:${key}`, `Jobs (${version.jobs.length})`, false, table(
    "jobs", `The jobs of version ${version.version}`,
    ["Job", "Stage", "Kind", "Target", "Spw", "State", "Reason", "Attempts", "Took"], rows,
  ));
}

function productsTable(listing) {
  const rows = listing.products.map((product) => {
    const link = element("a", { text: product.name, attrs: { href: product.url, download: "" } });
    return element("tr", {}, element("td", {}, link), cell(product.kind), cell(product.target),
      cell(product.spw_ids.join(", ")), cell(formatBytes(product.size), "size"));
  });
  const total = listing.products.reduce((sum, product) => sum + product.size, 0);
  const expiry = element("p", { className: "help links-expire" },
    `${listing.products.length} file(s), ${formatBytes(total)}. The links work without a token until `,
    timeElement(listing.links_expire_at), "; hide and show the products again for new ones.");
  const files = table("products", `The products of version ${listing.version}`,
    ["File", "Kind", "Target", "Spws", "Size"], rows);
  return element("div", {}, expiry, files);
}

function productsArea(request, version) {
  const key = versionKey(request.request_id, version.version);
  const area = element("div", { className: "products-area" });
  if (version.state === "cancelled") {
    area.append(element("p", {
      className: "help no-products",
      text: "Cancelled: nothing was delivered and its outputs are removed. Run the request again for products.",
    }));
    return area;
  }
  if (!DELIVERED.has(version.state)) return area;
  const listing = productListings.get(key);
  const of = `of ${request.request_id} version ${version.version}`;
  const toggle = listing
    ? button("Hide products", `Hide products ${of}`, `products:${key}`, false, () => hideProducts(key))
    : button("Products", `Products ${of}`, `products:${key}`, false,
      () => showProducts(request.request_id, version.version));
  toggle.setAttribute("aria-expanded", String(Boolean(listing)));
  area.append(toggle);
  if (listing?.loading) area.append(element("p", { className: "help", text: "Reading the products…" }));
  else if (listing?.error) area.append(element("p", { className: "error", text: listing.error }));
  else if (listing) area.append(productsTable(listing));
  return area;
}

function versionSection(request, version) {
  const key = versionKey(request.request_id, version.version);
  const headingId = `heading-${request.request_id}-v${version.version}`;
  const section = element("section", {
    className: "version", attrs: { "data-version": String(version.version), "aria-labelledby": headingId },
  });
  section.append(
    element("h3", { attrs: { id: headingId } }, `Version ${version.version} `, stateBadge(version.state)),
    element("p", { className: "version-reason clamp", text: version.reason, attrs: { title: version.reason } }),
    progressBar(version.progress, `Version ${version.version}`),
    timesLine(version),
  );
  if (version.passed_qa !== null && version.passed_qa !== undefined) {
    section.append(element("p", { className: `verdict ${version.passed_qa ? "passed" : "not-passed"}` },
      "QA: ", element("strong", { text: qaWords(version.passed_qa), className: "verdict-word" })));
  }
  if (version.qa.length) section.append(qaTable(key, version));
  if (version.jobs.length) section.append(jobsTable(key, version));
  section.append(productsArea(request, version));
  return section;
}

// -- the list ------------------------------------------------------------------------------------------

function requestRow(request) {
  const latest = request.versions[request.versions.length - 1];
  const running = request.versions.some((version) => !TERMINAL.has(version.state));
  const id = request.request_id;
  const actions = element("td", { className: "actions" },
    button("Run again", `Run again ${id}`, `rerun:${id}`, running, () => runAgain(id)),
    button("Cancel", `Cancel ${id}`, `cancel:${id}`, !running, () => cancelRequest(id)));
  return element("tr", { attrs: { "data-request-id": id } },
    cell(id, "id"), cell(request.mous_id), cell(String(latest.version)),
    element("td", { className: "state" }, stateBadge(latest.state)), clampedCell(latest.reason, "reason"), actions);
}

/** The row under a request's: its versions, newest first; the earlier ones folded away. */
function detailRow(request) {
  const [latest, ...earlier] = [...request.versions].reverse();
  const content = element("td", { attrs: { colspan: "6" } }, versionSection(request, latest));
  if (earlier.length) {
    content.append(keptDetails(`earlier:${request.request_id}`, `Earlier versions (${earlier.length})`, false,
      ...earlier.map((version) => versionSection(request, version))));
  }
  return element("tr", { className: "request-detail", attrs: { "data-detail-for": request.request_id } }, content);
}

let shownList = null;
let shownAnswer = "";

/** Rebuild the list from the last answer and what the person opened; focus stays on what had it. */
function render() {
  const body = $("#requests > tbody");
  const focused = body.contains(document.activeElement) ? document.activeElement.dataset.key : undefined;
  const requests = shownList?.requests || [];
  body.replaceChildren(...requests.flatMap((request) => [requestRow(request), detailRow(request)]));
  if (focused) body.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
  document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
}

async function readList() {
  if (!token()) {
    $("#list-message").textContent = "Enter your token to see your requests.";
    shownList = null;
    shownAnswer = "";
    render();
    return;
  }
  try {
    const list = await call(`${API}?limit=100`);
    $("#list-message").textContent = list.total ? `${list.total} request(s).` : "No requests yet.";
    const answer = JSON.stringify(list);
    if (answer === shownAnswer) return; // nothing changed: leave the page (and the reader) alone
    shownList = list;
    shownAnswer = answer;
    render();
  } catch (error) {
    const meaning = error instanceof ApiProblem ? explain(error) : null;
    if (meaning) showStatus(meaning, true);
    $("#list-message").textContent = meaning || `The list could not be read: ${error.message}`;
  }
}

const refreshList = oneAtATime(readList);

async function showProducts(requestId, version) {
  const key = versionKey(requestId, version);
  productListings.set(key, { loading: true });
  render();
  try {
    const path = `${API}/${encodeURIComponent(requestId)}/versions/${version}/products`;
    productListings.set(key, await call(path));
  } catch (error) {
    productListings.set(key, { error: `The products could not be listed: ${describe(error)}` });
  }
  if (productListings.has(key)) render(); // unless hidden meanwhile
}

function hideProducts(key) {
  productListings.delete(key);
  render();
}

async function runAgain(requestId) {
  try {
    const request = await call(`${API}/${encodeURIComponent(requestId)}/versions`, { method: "POST" });
    const latest = request.versions[request.versions.length - 1];
    showStatus(`Request ${requestId}: version ${latest.version} ${latest.state}.`);
  } catch (error) {
    showStatus(`Running ${requestId} again: ${describe(error)}`, true);
  }
  await refreshList();
}

async function cancelRequest(requestId) {
  try {
    await call(`${API}/${encodeURIComponent(requestId)}/cancel`, { method: "POST" });
    showStatus(`Request ${requestId} cancelled.`);
  } catch (error) {
    showStatus((error instanceof ApiProblem && explain(error)) || `Cancelling ${requestId}: ${error.message}`, true);
  }
  await refreshList();
}

// -- start ---------------------------------------------------------------------------------------------

function start() {
  connectTokenInput(refreshList);
  $("#add-cube").addEventListener("click", () => addCube());
  $("#estimate").addEventListener("click", estimateRequest);
  $("#request-form").addEventListener("submit", submitRequest);
  addCube();
  refreshList();
  setInterval(refreshList, REFRESH_MS);
  document.body.dataset.ready = "true";
}

start();
