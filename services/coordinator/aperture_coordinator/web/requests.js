// The requests page: build a request from the form, estimate it (dry run), submit it, list and cancel
// the user's requests. Everything goes through /api/v1/requests with the user's bearer token.

const API = "/api/v1/requests";
const TOKEN_KEY = "aperture.token";
const REFRESH_MS = 3000;
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

const $ = (selector, root = document) => root.querySelector(selector);

/** An answer the API refused: its status, the Problem's detail and its per-field errors. */
class ApiProblem extends Error {
  constructor(status, detail, errors) {
    super(detail);
    this.status = status;
    this.errors = errors;
  }
}

function token() {
  return $("#token").value.trim();
}

async function call(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiProblem(response.status, answer.detail || `${response.status} ${response.statusText}`, answer.errors || []);
  }
  return answer;
}

// -- messages ------------------------------------------------------------------------------------------

function showStatus(text, problem = false) {
  const status = $("#status");
  status.textContent = text;
  status.hidden = !text;
  status.classList.toggle("problem", problem);
}

/** What a 401 or 429 means to the person at the page; other problems are shown where they arise. */
function explain(error) {
  if (error.status === 401) {
    return `Your token was not accepted (401): check it, or ask an operator for one. ${error.message}`;
  }
  if (error.status === 429) {
    return `Too many requests (429): ${error.message}`;
  }
  return null;
}

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

function formatBytes(bytes) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function formatDuration(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
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

// -- the list ------------------------------------------------------------------------------------------

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function requestRow(request) {
  const latest = request.versions[request.versions.length - 1];
  const row = document.createElement("tr");
  row.dataset.requestId = request.request_id;
  row.append(cell(request.request_id), cell(request.mous_id), cell(String(latest.version)));
  const state = cell(latest.state);
  state.className = "state";
  const reason = cell(latest.reason);
  reason.className = "reason";
  const actions = document.createElement("td");
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.textContent = "Cancel";
  cancel.setAttribute("aria-label", `Cancel ${request.request_id}`);
  cancel.disabled = request.versions.every((version) => TERMINAL.has(version.state));
  cancel.addEventListener("click", () => cancelRequest(request.request_id));
  actions.append(cancel);
  row.append(state, reason, actions);
  return row;
}

let refreshing = null;

async function refreshList() {
  if (!token()) {
    $("#list-message").textContent = "Enter your token to see your requests.";
    $("#requests tbody").replaceChildren();
    return;
  }
  // One refresh at a time: a slow answer must not overwrite a newer one.
  refreshing = (refreshing || Promise.resolve()).then(async () => {
    try {
      const list = await call(`${API}?limit=100`);
      $("#requests tbody").replaceChildren(...list.requests.map(requestRow));
      $("#list-message").textContent = list.total ? `${list.total} request(s).` : "No requests yet.";
    } catch (error) {
      const meaning = error instanceof ApiProblem ? explain(error) : null;
      if (meaning) showStatus(meaning, true);
      $("#list-message").textContent = meaning || `The list could not be read: ${error.message}`;
    }
  });
  return refreshing;
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
  const tokenInput = $("#token");
  tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";
  tokenInput.addEventListener("change", () => {
    sessionStorage.setItem(TOKEN_KEY, token());
    showStatus("");
    refreshList();
  });
  $("#add-cube").addEventListener("click", () => addCube());
  $("#estimate").addEventListener("click", estimateRequest);
  $("#request-form").addEventListener("submit", submitRequest);
  addCube();
  refreshList();
  setInterval(refreshList, REFRESH_MS);
  document.body.dataset.ready = "true";
}

start();
