// What the coordinator's pages share to talk to its API: the bearer token the person types in (kept in
// this tab's session storage, so that it follows them from page to page), one JSON call, and what a
// refused answer means to a person.

const TOKEN_KEY = "aperture.token";

export const $ = (selector, root = document) => root.querySelector(selector);

/** An answer the API refused: its status, the Problem's detail and its per-field errors. */
export class ApiProblem extends Error {
  constructor(status, detail, errors) {
    super(detail);
    this.status = status;
    this.errors = errors;
  }
}

export function token() {
  return $("#token").value.trim();
}

/** Fill the token input from this tab's storage; on a change store it and call `changed`. */
export function connectTokenInput(changed) {
  const input = $("#token");
  input.value = sessionStorage.getItem(TOKEN_KEY) || "";
  input.addEventListener("change", () => {
    sessionStorage.setItem(TOKEN_KEY, token());
    showStatus("");
    changed();
  });
}

/** A JSON call; the token goes along whenever there is one (some endpoints do without). */
export async function call(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = answer.detail || `${response.status} ${response.statusText}`;
    throw new ApiProblem(response.status, detail, answer.errors || []);
  }
  return answer;
}

export function showStatus(text, problem = false) {
  const status = $("#status");
  status.textContent = text;
  status.hidden = !text;
  status.classList.toggle("problem", problem);
}

/** What a 401 or 429 means to the person at the page; other problems are shown where they arise. */
export function explain(error) {
  if (error.status === 401) {
    return `Your token was not accepted (401): check it, or ask an operator for one. ${error.message}`;
  }
  if (error.status === 429) {
    return `Too many requests (429): ${error.message}`;
  }
  return null;
}

/** A problem as one sentence: the meaning of a 401/429, else the detail and the fields' messages. */
export function describe(error) {
  if (!(error instanceof ApiProblem)) return `the coordinator could not be reached: ${error.message}`;
  const meaning = explain(error);
  if (meaning) return meaning;
  const messages = error.errors.map(({ message }) => message).filter((message) => message && message !== error.message);
  return [error.message, ...messages].join(" ");
}

/** `refresh` made safe to call from a timer and from buttons alike: one run at a time, in order, so that
 * a slow answer cannot overwrite a newer one. */
export function oneAtATime(refresh) {
  let running = Promise.resolve();
  return () => {
    // A refresh shows its own problems; one that threw anyway must not stop the ones after it.
    running = running.catch(() => undefined).then(() => refresh());
    return running;
  };
}
