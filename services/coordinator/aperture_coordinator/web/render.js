// Small DOM builders and formats the coordinator's pages share: table cells, buttons, sizes, durations,
// times, states and progress bars.

/** An element with its text (set as text, never as HTML) and attributes. */
export function element(tag, { text, className, attrs = {} } = {}, ...children) {
  const made = document.createElement(tag);
  if (text !== undefined) made.textContent = text;
  if (className) made.className = className;
  for (const [name, value] of Object.entries(attrs)) made.setAttribute(name, value);
  made.append(...children);
  return made;
}

export function cell(text, className) {
  return element("td", { text: text ?? "", className });
}

/** A table with a caption (its accessible name), a header row and the given rows, in a box that scrolls
 * sideways where the page is narrower than the table. */
export function table(className, caption, headers, rows) {
  const head = element("tr", {}, ...headers.map((header) => element("th", { text: header, attrs: { scope: "col" } })));
  const made = element(
    "table", { className },
    element("caption", { text: caption }), element("thead", {}, head), element("tbody", {}, ...rows),
  );
  return element("div", { className: "table-scroll" }, made);
}

/** A button with its accessible name (`label`, naming what it acts on) and a `key` that finds it again
 * after the page is rebuilt, so that focus can stay on it. */
export function button(text, label, key, disabled, onClick) {
  const made = element("button", { text, attrs: { type: "button", "aria-label": label, "data-key": key } });
  made.disabled = disabled;
  made.addEventListener("click", onClick);
  return made;
}

/** A cell whose long text shows its first lines only (all of it in the title, and to screen readers). */
export function clampedCell(text, className) {
  return element("td", { className }, element("div", { text, className: "clamp", attrs: { title: text } }));
}

export function formatBytes(bytes) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatDuration(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** A <time> showing an API time in the reader's own zone, the exact value in its datetime attribute. */
export function timeElement(iso) {
  return element("time", { text: new Date(iso).toLocaleString(), attrs: { datetime: iso } });
}

export function timeCell(iso) {
  const td = element("td");
  if (iso) td.append(timeElement(iso));
  return td;
}

/** A request or MOUS state as a badge: the word, coloured by its class (the word alone carries the meaning). */
export function stateBadge(state) {
  return element("span", { text: state, className: `badge state-${state}` });
}

/** "8 of 16 jobs done, 2 running": ended jobs (succeeded, failed, cancelled) of all, then what is under way. */
export function progressText(progress) {
  if (!progress.total) return "its jobs are not planned yet";
  const ended = progress.succeeded + progress.failed + progress.cancelled;
  const parts = [`${ended} of ${progress.total} jobs done`];
  if (progress.running) parts.push(`${progress.running} running`);
  if (progress.failed) parts.push(`${progress.failed} failed`);
  if (progress.cancelled) parts.push(`${progress.cancelled} cancelled`);
  return parts.join(", ");
}

/** A <progress> of `done` of `total` with `text` beside it; `label` names what it is the progress of. With
 * no total the bar has no value: an indeterminate bar (nothing to count yet). */
export function progressMeter(done, total, text, label) {
  const bar = element("progress", { attrs: { "aria-label": `${label}: ${text}` } });
  if (total) {
    bar.max = total;
    bar.value = done;
  }
  return element("span", { className: "progress" }, bar, " ", element("span", { text, className: "progress-text" }));
}

/** A <progress> of ended jobs with its sentence beside it. */
export function progressBar(progress, label) {
  const ended = progress.succeeded + progress.failed + progress.cancelled;
  return progressMeter(ended, progress.total, progressText(progress), label);
}

/** A version's QA verdict in words: passed, not passed, or nothing until it has ended. */
export function qaWords(passed) {
  if (passed === null || passed === undefined) return "";
  return passed ? "passed" : "not passed";
}
