// baozi dashboard: the overview, queues (the list and one queue), tasks, workers and periodic
// schedules pages. Each page builds its frame once and fills it again on every refresh.

import { drawChart } from "./chart.js";
import {
  api, button, confirmAction, duration, h, jobLink, link, num, pageHead, patch, query, queueLink,
  rows, say, settle, statusBadge, table, when, windowPicker,
} from "./dom.js";

const COUNTERS = [
  ["queued", "ready", "Ready"], ["scheduled", "scheduled", "Scheduled"], ["running", "running", "Running"],
  ["waiting", "waiting", "Waiting"], ["succeeded", "succeeded", "Succeeded"], ["failed", "failed", "Failed"],
  ["cancelled", "cancelled", "Cancelled"],
];

function bucketText(seconds) {
  return seconds % 3600 === 0 ? seconds / 3600 + " h" : seconds % 60 === 0 ? seconds / 60 + " min" : seconds + " s";
}

const KIND_COLOURS = { succeeded: "good", failed: "bad", retried: "s1" };
const DASHES = { failed: "dashed", retried: "dotted" };

const known = (value) => value !== null && value !== undefined;

function latency(q) {
  return known(q.latency_seconds) ? duration(q.latency_seconds) : "–";
}

function perMinute(q) {
  return known(q.rate_per_second) ? (q.rate_per_second * 60).toFixed(1) : "–";
}

// The throughput answer as chart series: per queue, succeeded and failed (a server that counts
// only finished jobs gives one series per queue).
function throughputChart(t, perQueueColours) {
  const names = Object.keys(t.queues).sort();
  const series = [];
  names.forEach((name, i) => {
    const entry = Array.isArray(t.queues[name]) ? { finished: t.queues[name] } : t.queues[name];
    const prefix = perQueueColours ? name + " " : "";
    for (const kind of Object.keys(entry)) {
      const cls = perQueueColours ? "s" + (i % 8) : KIND_COLOURS[kind] || "s" + (series.length % 8);
      series.push({ label: prefix + kind, values: entry[kind], cls, dash: DASHES[kind] });
    }
  });
  const n = Math.max(0, ...series.map((s) => s.values.length));
  const start = t.start ?? t.end - n * t.bucket_seconds;
  const unit = "jobs per " + bucketText(t.bucket_seconds);
  const empty = "no job finished in this window";
  return { label: "Jobs finished", unit, start, end: t.end, bucket: t.bucket_seconds, series, empty };
}

function queueRows(queues) {
  return queues.map((q) => h("tr", { data: { queue: q.name }, className: q.paused ? "paused" : "" },
    h("td", {}, queueLink(q.name), q.paused ? h("span", { className: "badge paused" }, "paused") : null),
    h("td", { className: "n ready" }, num(q.ready)), h("td", { className: "n scheduled" }, num(q.scheduled)),
    h("td", { className: "n running" }, num(q.running)), h("td", { className: "n waiting" }, num(q.waiting)),
    h("td", { className: "n succeeded" }, num(q.succeeded)), h("td", { className: "n failed" }, num(q.failed)),
    h("td", { className: "n latency" }, latency(q)),
    h("td", { className: "n rate" }, perMinute(q)),
  ));
}

function queuesTable() {
  return table("queues-table", "Queues", [["Queue"], ["Ready", "n"], ["Scheduled", "n"], ["Running", "n"],
    ["Waiting", "n"], ["Succeeded", "n"], ["Failed", "n"], ["Latency", "n"], ["Per minute", "n"]]);
}

// -- #/ -------------------------------------------------------------------------------------

function counterLink(status) {
  if (status === "failed") return "#/failed";
  if (status === "scheduled") return "#/scheduled";
  return "#/jobs?status=" + status;
}

function counters(queues, workers) {
  const sum = (key) => queues.reduce((total, q) => total + (q[key] || 0), 0);
  const cards = COUNTERS.map(([status, key, label]) => link(counterLink(status),
    [h("span", { className: "count", testid: "count-" + status }, num(sum(key))), h("span", { className: "label" }, label)],
    { className: "counter status-" + status }));
  cards.push(link("#/workers", [h("span", { className: "count", testid: "count-workers" }, num(workers)),
    h("span", { className: "label" }, "Workers")], { className: "counter" }));
  return cards;
}

export function overviewPage(main, ctx) {
  const cards = h("div", { className: "counters", testid: "counters" });
  const picker = windowPicker(ctx);
  const chart = h("div", { className: "chart-box", testid: "chart-throughput" });
  const queues = queuesTable();
  main.replaceChildren(pageHead("Overview"),
    h("section", { attrs: { "aria-label": "Jobs by status" } }, cards),
    h("section", {}, h("div", { className: "section-head" }, h("h2", {}, "Throughput"), picker.node), chart),
    h("section", {}, h("h2", {}, "Queues"), queues.box));
  let seen = { queues: [], workers: 0 };
  return {
    update(route) { picker.set(route.params); },
    async refresh() {
      await settle([
        [api("api/queues"), (q) => {
          seen.queues = q.queues;
          ctx.sawQueues(q.queues);
          rows(queues, queueRows(q.queues), "No queues yet.");
        }],
        [api("api/workers"), (w) => { seen.workers = w.workers.filter((x) => !x.dead).length; }],
        [api("api/throughput" + query({ window: picker.value })), (t) => drawChart(chart, throughputChart(t, true))],
      ]).finally(() => patch(cards, counters(seen.queues, seen.workers)));
    },
  };
}

// -- #/queues -------------------------------------------------------------------------------

export function queuesPage(main, ctx) {
  const queues = queuesTable();
  main.replaceChildren(pageHead("Queues"), queues.box);
  return {
    async refresh() {
      const q = await api("api/queues");
      ctx.sawQueues(q.queues);
      rows(queues, queueRows(q.queues), "No queues yet.");
    },
  };
}

// Queue names go in the query, here and below: a browser rewrites a path segment "." or ".."
// away, and a name may hold "/".
async function queueAction(ctx, name, what) {
  const where = `queue "${name}"`;
  try {
    if (what === "purge") {
      const ask = `Purge ${where}? Every job of it (waiting, scheduled, running and finished) is removed for good.`;
      const ok = await confirmAction(ask, "Purge");
      if (!ok) return say("Nothing was changed.");
      const answer = await api("api/queues/purge" + query({ name }), { method: "POST" });
      say(`Purged ${num(answer.purged)} jobs from ${where}.`);
    } else {
      await api("api/queues/" + what + query({ name }), { method: "POST" });
      say(what === "pause" ? `Paused ${where}: workers take no new job from it.` : `Resumed ${where}.`);
    }
  } catch (error) {
    ctx.failed(error);
  }
  ctx.refresh();
}

function queueFields(q) {
  const dl = [];
  const add = (label, value, testid) => dl.push(h("dt", {}, label), h("dd", { testid }, value));
  const state = q.paused === null ? "cannot be paused" : "active";
  add("State", q.paused ? statusBadge("paused", "queue-state") : h("span", { testid: "queue-state" }, state));
  add("Latency", latency(q), "queue-latency");
  add("Oldest ready job", when(q.oldest_ready_at), "queue-oldest");
  for (const key of ["ready", "scheduled", "running", "waiting", "succeeded", "failed", "cancelled"]) {
    add(key[0].toUpperCase() + key.slice(1), num(q[key]), "queue-" + key);
  }
  add("Size limit", q.maxsize ? num(q.maxsize) : "none", "queue-maxsize");
  add("Per minute", perMinute(q), "queue-rate");
  return h("dl", { className: "fields" }, dl);
}

function queueButtons(ctx, q) {
  const out = [];
  if (q.pausable !== false && q.paused !== null) {
    out.push(q.paused
      ? button("Resume", () => queueAction(ctx, q.name, "resume"), { testid: "queue-resume" })
      : button("Pause", () => queueAction(ctx, q.name, "pause"), { testid: "queue-pause" }));
  }
  out.push(button("Purge", () => queueAction(ctx, q.name, "purge"), { testid: "queue-purge", className: "danger" }));
  const jobs = "#/jobs?queue=" + encodeURIComponent(q.name);
  out.push(link(jobs, "Its jobs", { className: "button-like", testid: "queue-jobs" }));
  return out;
}

function depthChart(d) {
  const kinds = ["ready", "scheduled", "running", "waiting"];
  const n = Math.max(0, ...kinds.map((k) => (d.series[k] || []).length));
  return {
    label: "Queue depth", unit: "jobs", totals: false,
    start: d.start ?? d.end - n * d.bucket_seconds, end: d.end, bucket: d.bucket_seconds,
    series: kinds.map((k, i) => ({ label: k, values: d.series[k] || [], cls: "s" + i })),
  };
}

// A queue the store does not know has no depth to draw: the page says it has no such queue.
function unknownQueue(error) {
  const now = Date.now() / 1000;
  if (error.status === 404) return { start: now - 3600, end: now, bucket_seconds: 60, series: {} };
  throw error;
}

export function queuePage(main, ctx) {
  const name = ctx.arg;
  const fields = h("div");
  const buttons = h("div", { className: "buttons", testid: "queue-actions" });
  const picker = windowPicker(ctx);
  const depth = h("div", { className: "chart-box", testid: "chart-depth" });
  const throughput = h("div", { className: "chart-box", testid: "chart-queue-throughput" });
  const missing = h("p", { className: "error", testid: "queue-missing", hidden: true });
  main.replaceChildren(
    pageHead(["Queue ", h("span", { className: "mono", testid: "queue-name" }, name)]),
    missing, buttons, fields,
    h("div", { className: "section-head" }, h("h2", {}, "Over time"), picker.node),
    h("section", {}, h("h3", {}, "Depth"), depth),
    h("section", {}, h("h3", {}, "Throughput"), throughput));
  return {
    title: "Queue " + name,
    update(route) { picker.set(route.params); },
    async refresh() {
      const w = picker.value;
      await settle([
        [api("api/queues"), (q) => {
          ctx.sawQueues(q.queues);
          const queue = q.queues.find((x) => x.name === name);
          missing.hidden = Boolean(queue);
          missing.textContent = queue ? ""
            : `No queue "${name}": no job was ever sent to it, and the app does not declare it.`;
          patch(fields, queue ? queueFields(queue) : []);
          patch(buttons, queue ? queueButtons(ctx, queue) : []);
        }],
        [api("api/queues/depth" + query({ name, window: w })).catch(unknownQueue), (d) => drawChart(depth, depthChart(d))],
        [api("api/throughput" + query({ window: w, queue: name })), (t) => {
          const only = t.queues[name] ? { ...t, queues: { [name]: t.queues[name] } } : { ...t, queues: {} };
          drawChart(throughput, throughputChart(only, false));
        }],
      ]);
    },
  };
}

// -- #/tasks --------------------------------------------------------------------------------

function ms(value) {
  return known(value) ? num(Math.round(value)) : "–";
}

export function tasksPage(main, ctx) {
  const picker = windowPicker(ctx);
  const tbl = table("tasks-table", "Tasks", [["Task"], ["Queue"], ["Succeeded", "n"], ["Failed", "n"],
    ["Failure rate", "n"], ["p50 ms", "n"], ["p95 ms", "n"], ["p99 ms", "n"]]);
  main.replaceChildren(pageHead("Tasks", picker.node), tbl.box);
  return {
    update(route) { picker.set(route.params); },
    async refresh() {
      const t = await api("api/tasks" + query({ window: picker.value }));
      rows(tbl, t.tasks.map((x) => h("tr", { data: { task: x.task }, className: x.failed ? "has-failures" : "" },
        h("td", {}, link("#/jobs?task=" + encodeURIComponent(x.task), x.task, { className: "mono" })),
        h("td", {}, queueLink(x.queue)),
        h("td", { className: "n" }, num(x.succeeded)), h("td", { className: "n failed" }, num(x.failed)),
        h("td", { className: "n" }, known(x.failure_rate) ? (x.failure_rate * 100).toFixed(1) + " %" : "–"),
        h("td", { className: "n" }, ms(x.run_ms && x.run_ms.p50)), h("td", { className: "n" }, ms(x.run_ms && x.run_ms.p95)),
        h("td", { className: "n" }, ms(x.run_ms && x.run_ms.p99)),
      )), "No task ran in this window.");
    },
  };
}

// -- #/workers ------------------------------------------------------------------------------

export function workersPage(main, ctx) {
  const tbl = table("workers-table", "Workers", [["Host"], ["PID", "n"], ["Pool"], ["Busy"], ["Queues"],
    ["Started"], ["Last heartbeat"], ["Current jobs"], ["State"]]);
  // Leases whose holder sends no heartbeat: a worker that died with jobs in hand (they run
  // again once their leases run out).
  const gone = table("gone-table", "Jobs held by workers that are gone", [["Lease holder"], ["Jobs"]]);
  const goneSection = h("section", { hidden: true },
    h("h2", {}, "Held by workers that are gone"),
    h("p", { className: "muted" }, "These jobs run again once their leases run out."), gone.box);
  main.replaceChildren(pageHead("Workers"), tbl.box, goneSection);
  return {
    async refresh() {
      const w = await api("api/workers");
      const lost = w.gone || [];
      goneSection.hidden = lost.length === 0;
      rows(gone, lost.map((x) => h("tr", { data: { worker: x.id } },
        h("td", { className: "mono" }, x.id),
        h("td", {}, (x.jobs || []).map((id, i) => [i ? " " : "", jobLink(id)])),
      )), "No job is held by a worker that is gone.");
      rows(tbl, w.workers.map((x) => h("tr", { data: { worker: x.id }, className: x.dead ? "stale dead" : x.stale ? "stale" : "" },
        h("td", { className: "mono", title: x.id }, x.host), h("td", { className: "n" }, x.pid), h("td", {}, x.pool),
        h("td", { className: "busy" },
          h("meter", { min: 0, max: Math.max(1, x.concurrency), value: x.busy, attrs: { "aria-label": "busy slots" } }),
          " " + x.busy + " / " + x.concurrency),
        h("td", {}, (x.queues || []).map((q, i) => [i ? ", " : "", queueLink(q)])),
        h("td", {}, when(x.started_at)), h("td", {}, when(x.last_heartbeat)),
        h("td", {}, (x.jobs || []).map((id, i) => [i ? " " : "", jobLink(id)])),
        h("td", {}, x.dead ? statusBadge("dead", "worker-dead")
          : x.stale ? statusBadge("stale", "worker-stale") : "alive"),
      )), "No worker is running.");
    },
  };
}

// -- #/schedules ----------------------------------------------------------------------------

export function schedulesPage(main, ctx) {
  const tbl = table("schedules-table", "Periodic schedules", [["Name"], ["Task"], ["Queue"], ["Schedule"],
    ["Last run"], ["Next run"]]);
  main.replaceChildren(pageHead("Schedules"), tbl.box);
  return {
    async refresh() {
      const s = await api("api/schedules");
      rows(tbl, s.schedules.map((x) => h("tr", { data: { schedule: x.name }, className: x.overdue ? "overdue" : "" },
        h("td", { className: "mono" }, x.name),
        h("td", {}, link("#/jobs?task=" + encodeURIComponent(x.task), x.task, { className: "mono" })),
        h("td", {}, queueLink(x.queue)), h("td", { className: "mono" }, x.schedule),
        h("td", {}, when(x.last_run)),
        h("td", {}, when(x.next_run), x.overdue ? [" ", statusBadge("overdue", "schedule-overdue")] : null),
      )), "No periodic schedule is declared.");
    },
  };
}

export function notFoundPage(main) {
  main.replaceChildren(pageHead("No such page"),
    h("p", {}, "The dashboard has no page at this address. ", link("#/", "Go to the overview.")));
  return { async refresh() {} };
}
