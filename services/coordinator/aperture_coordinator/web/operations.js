// The operations page: every MOUS (GET /api/v1/mous, filtered by state) and every user's requests
// (GET /api/v1/requests with an operator's token), refreshed every few seconds.

import { $, ApiProblem, call, connectTokenInput, describe, explain, oneAtATime, showStatus, token } from "./client.js";
import { cell, clampedCell, element, progressBar, qaWords, stateBadge, timeCell } from "./render.js";

const MOUS_API = "/api/v1/mous";
const REQUESTS_API = "/api/v1/requests";
const REFRESH_MS = 5000;
const LIMIT = 500; // the most either endpoint answers at once

/** Replace a table's rows only when the answer changed, so that a reader's selection survives a refresh. */
function showRows(tableBody, answer, rows) {
  const text = JSON.stringify(answer);
  if (tableBody.dataset.answer === text) return;
  tableBody.dataset.answer = text;
  tableBody.replaceChildren(...rows());
}

function stateCell(state) {
  return element("td", { className: "state" }, stateBadge(state));
}

// -- MOUS ----------------------------------------------------------------------------------------------

function mousRow(mous) {
  return element("tr", { attrs: { "data-mous-id": mous.mous_id } },
    cell(mous.mous_id, "id"), stateCell(mous.state), clampedCell(mous.reason, "reason"), cell(String(mous.run)),
    timeCell(mous.submitted_at), timeCell(mous.updated_at));
}

async function readMous() {
  const state = $("#mous-state").value;
  const query = new URLSearchParams({ limit: String(LIMIT) });
  if (state) query.set("state", state);
  try {
    const list = await call(`${MOUS_API}?${query}`);
    const which = state ? ` ${state}` : "";
    const shown = list.items.length < list.total ? ` (the newest ${list.items.length} shown)` : "";
    $("#mous-message").textContent = list.total ? `${list.total}${which} MOUS${shown}.` : `No${which} MOUS.`;
    showRows($("#mous > tbody"), list, () => list.items.map(mousRow));
  } catch (error) {
    $("#mous-message").textContent = `The MOUS could not be read: ${describe(error)}`;
  }
}

// -- requests ------------------------------------------------------------------------------------------

function requestRow(request) {
  const latest = request.versions[request.versions.length - 1];
  return element("tr", { attrs: { "data-request-id": request.request_id } },
    cell(request.request_id, "id"), cell(request.owner, "owner"), cell(request.mous_id), cell(String(latest.version)),
    stateCell(latest.state), clampedCell(latest.reason, "reason"),
    element("td", {}, progressBar(latest.progress, `Version ${latest.version}`)),
    cell(qaWords(latest.passed_qa) || "—", "qa"), timeCell(latest.updated_at));
}

/** Whether the token is an operator's, as far as its list tells: a user's token lists its own requests
 * only, so requests of two owners or more mean an operator's. One owner (or none) cannot tell them apart. */
function tellRole(identity, list) {
  // The API names the token's role (GET /requests/whoami): a user's token sees its own requests only.
  const owners = [...new Set(list.requests.map((request) => request.owner))].sort();
  const message = $("#role-message");
  message.hidden = identity.role === "operator";
  if (identity.role !== "operator") {
    message.textContent = `This view is for operators. This token is ${identity.user}'s (role ${identity.role}) `
      + "and sees only their own requests; ask for an operator's token to see everyone's.";
  }
  return owners;
}

async function readRequests() {
  if (!token()) {
    $("#requests-message").textContent = "Enter an operator's token to see every user's requests.";
    $("#role-message").hidden = true;
    showRows($("#all-requests > tbody"), null, () => []);
    return;
  }
  try {
    const [identity, list] = await Promise.all([
      call(`${REQUESTS_API}/whoami`), call(`${REQUESTS_API}?limit=${LIMIT}`),
    ]);
    const owners = tellRole(identity, list);
    const shown = list.requests.length < list.total ? ` (the newest ${list.requests.length} shown)` : "";
    $("#requests-message").textContent = `${list.total} request(s) this token may see, of ${owners.length} `
      + `user(s)${shown}: ${owners.join(", ") || "none"}.`;
    showRows($("#all-requests > tbody"), list, () => list.requests.map(requestRow));
  } catch (error) {
    const meaning = error instanceof ApiProblem ? explain(error) : null;
    if (meaning) showStatus(meaning, true);
    $("#requests-message").textContent = meaning || `The requests could not be read: ${describe(error)}`;
  }
}

// -- start ---------------------------------------------------------------------------------------------

const refresh = oneAtATime(() => Promise.all([readMous(), readRequests()]));

function start() {
  connectTokenInput(refresh);
  $("#mous-state").addEventListener("change", refresh);
  refresh();
  setInterval(refresh, REFRESH_MS);
  document.body.dataset.ready = "true";
}

start();
