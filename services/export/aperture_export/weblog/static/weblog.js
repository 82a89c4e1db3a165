// The Aperture weblog's row filter: shows the rows of a page (images, jobs) whose target contains the text
// typed and whose spw, kind and QA band match the choices, hides sections left empty, and opens those
// with matches. Without JavaScript the form stays hidden and every section still opens by hand.
"use strict";

(function () {
  const form = document.getElementById("filter");
  if (!form) {
    return;
  }
  const rows = Array.from(document.querySelectorAll("[data-filter-row]"));
  const groups = Array.from(document.querySelectorAll("[data-filter-group]"));
  const status = document.getElementById("filter-status");

  function choices() {
    const value = (name) => (form.elements[name] ? form.elements[name].value.trim() : "");
    return { target: value("target").toLowerCase(), spw: value("spw"), kind: value("kind"), band: value("band") };
  }

  function matches(row, chosen) {
    const data = row.dataset;
    return (!chosen.target || data.target.toLowerCase().includes(chosen.target))
      && (!chosen.spw || data.spw.split(" ").includes(chosen.spw))
      && (!chosen.kind || data.kind === chosen.kind)
      && (!chosen.band || data.band === chosen.band);
  }

  function apply() {
    const chosen = choices();
    const active = Object.values(chosen).some(Boolean);
    let shown = 0;
    for (const row of rows) {
      row.hidden = !matches(row, chosen);
      shown += row.hidden ? 0 : 1;
    }
    for (const group of groups) {
      const hasMatches = group.querySelector("[data-filter-row]:not([hidden])") !== null;
      group.hidden = !hasMatches;
      if (active && hasMatches) {
        group.open = true;
      }
    }
    status.textContent = active ? `${shown} of ${rows.length} shown` : `${rows.length} in all`;
  }

  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("reset", () => setTimeout(apply, 0));
  form.hidden = false;
  apply();
})();
