// The live panel of a queued or running run: polls the watch view every second,
// stops once the run has ended, then reloads the page once to show its end.
"use strict";
(function () {
  const panel = document.getElementById("mc-live");
  if (!panel) {
    return;
  }
  // The script runs: the page needs no reload to stay current.
  document.querySelectorAll('meta[http-equiv="refresh"]').forEach((meta) => meta.remove());
  const show = (id, text) => {
    document.getElementById(id).textContent = text || "—";
  };
  const update = (run) => {
    show("mc-status", run.shown);
    show("mc-count", run.count_text);
    show("mc-rate", run.rate_text);
    show("mc-eta", run.eta_text);
    const bar = document.getElementById("mc-progress");
    if (run.rows_total) {
      bar.max = run.rows_total;
      bar.value = run.rows_done || 0;
    }
    document.getElementById("mc-output").textContent = run.output_tail;
    const stop = document.getElementById("mc-stop-form");
    if (stop && run.status === "running") {
      stop.hidden = false;
    }
  };
  const poll = () => {
    fetch(panel.dataset.watchUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((run) => {
        update(run);
        if (run.ended) {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(() => window.setTimeout(poll, 5000));
  };
  poll();
})();
