// baozi dashboard: polls the JSON API once a second and redraws the tables and the chart.
// Everything that comes from the store is written with textContent, never parsed as HTML.
"use strict";

const TOKEN_KEY = "baozi-token";
const EVERY_MS = 1000;
let token = sessionStorage.getItem(TOKEN_KEY) || "";
let timer = null;

class Unauthorized extends Error {}

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) throw new Unauthorized("token refused");
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(body.error || response.status + " " + response.statusText, response.status);
  return body;
}

// -- small DOM helpers: text only -------------------------------------------------------------

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells, attrs = {}) {
  const tr = document.createElement("tr");
  for (const [key, value] of Object.entries(attrs)) tr.dataset[key] = value;
  for (const cell of cells) tr.append(cell instanceof Node ? cell : el("td", cell));
  return tr;
}

function fill(tableId, rows, emptyText, columns) {
  const body = document.querySelector("#" + tableId + " tbody");
  if (rows.length === 0) {
    const td = el("td", emptyText, "empty");
    td.colSpan = columns;
    rows = [row([td])];
  }
  body.replaceChildren(...rows);
}

function num(value, className = "n") {
  return el("td", value, className);
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleTimeString() : "–";
}

function ago(seconds) {
  return Math.max(0, Math.round(Date.now() / 1000 - seconds)) + " s ago";
}

function actionButton(label, action) {
  const b = el("button", label);
  b.type = "button";
  b.addEventListener("click", () => act(action));
  return b;
}

function button(label, action) {
  const td = el("td");
  td.append(actionButton(label, action));
  return td;
}

function callText(job) {
  const args = JSON.stringify(job.args);
  const kwargs = job.kwargs && Object.keys(job.kwargs).length ? " " + JSON.stringify(job.kwargs) : "";
  return args + kwargs;
}

// -- the sections -----------------------------------------------------------------------------

function drawQueues(queues) {
  fill("queues", queues.map((q) => {
    let control = el("td");
    if (q.pausable) {
      // The name goes in the query: a browser rewrites a path segment "." or ".." away.
      const path = "api/queues/" + (q.paused ? "resume" : "pause") + "?name=" + encodeURIComponent(q.name);
      control = button(q.paused ? "resume" : "pause", { path, method: "POST" });
    }
    const perMinute = q.rate_per_second === null ? "–" : (q.rate_per_second * 60).toFixed(1);
    const name = el("td", q.name + (q.paused ? " (paused)" : ""), "text");
    return row([
      name, num(q.waiting, "n waiting"), num(q.ready, "n ready"), num(q.scheduled, "n scheduled"), num(q.running, "n running"),
      num(q.succeeded, "n succeeded"), num(q.failed, "n failed"), num(perMinute, "n rate"), control,
    ], { queue: q.name });
  }), "no queues yet", 9);
}

function drawWorkers(workers) {
  fill("workers", workers.map((w) => {
    const slots = el("td");
    const bar = el("span", null, "slots");
    const inner = el("span");
    inner.style.width = (w.concurrency ? (100 * w.busy) / w.concurrency : 0) + "%";
    bar.append(inner);
    slots.append(bar, document.createTextNode(w.busy + " / " + w.concurrency));
    return row([
      el("td", w.host, "text"), num(w.pid), w.pool, slots, el("td", (w.queues || []).join(", "), "text"),
      ago(w.last_heartbeat),
    ], { worker: w.id });
  }), "no worker is running", 6);
}

const UNFINISHED = ["waiting", "scheduled", "queued", "running"];

// The buttons for what can be done to a job as it stands: cancel one that has not finished;
// retry a failed or cancelled one; forget (remove the record of) one that has finished.
function jobActions(job) {
  const path = "api/jobs/" + encodeURIComponent(job.id);
  if (UNFINISHED.includes(job.status)) return [actionButton("cancel", { path, method: "DELETE" })];
  const out = [];
  if (job.status === "failed" || job.status === "cancelled") {
    out.push(actionButton("retry", { path: path + "/retry", method: "POST" }));
  }
  out.push(actionButton("forget", { path: path + "/forget", method: "POST" }));
  return out;
}

function jobControl(job) {
  const td = el("td", null, "actions");
  td.append(...jobActions(job));
  return td;
}

function jobLink(job) {
  const td = el("td", null, "text");
  const a = el("a", job.id);
  a.href = "#job=" + encodeURIComponent(job.id);
  td.append(a);
  return td;
}

function drawJobs(jobs) {
  fill("jobs", jobs.map((job) => row([
    jobLink(job), el("td", job.task, "text"), el("td", job.queue, "text"),
    el("td", job.status, "status-" + job.status), el("td", callText(job), "text args"),
    when(job.created_at), jobControl(job),
  ], { job: job.id })), "no jobs", 7);
}

function drawFailed(jobs) {
  fill("failed", jobs.map((job) => {
    const error = job.error ? job.error.type + ": " + job.error.message : "";
    return row([
      jobLink(job), el("td", job.task, "text"), el("td", job.queue, "text"),
      el("td", error, "text error-text"), num(job.attempts), when(job.finished_at), jobControl(job),
    ], { job: job.id });
  }), "no failed jobs", 7);
}

function drawChart(throughput) {
  const canvas = document.getElementById("chart");
  const ctx = canvas.getContext("2d");
  const series = Object.values(throughput.queues);
  const buckets = series.length ? series[0].length : 60;
  const totals = Array.from({ length: buckets }, (_, i) => series.reduce((sum, s) => sum + s[i], 0));
  const peak = Math.max(1, ...totals);
  document.getElementById("peak").textContent = String(Math.max(0, ...totals));
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const width = canvas.width / buckets;
  ctx.fillStyle = "#b5532c";
  totals.forEach((total, i) => {
    const height = ((canvas.height - 10) * total) / peak;
    ctx.fillRect(i * width + 1, canvas.height - height, Math.max(1, width - 2), height);
  });
}

// -- one job, in detail: its fields, what can be done to it, its workflow -----------------------

function selectedJob() {
  const match = /^#job=(.+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

function openJob(id) {
  location.hash = "job=" + encodeURIComponent(id);
}

async function loadDetail(id) {
  if (id === null) return null;
  const path = "api/jobs/" + encodeURIComponent(id);
  try {
    const [job, graph] = await Promise.all([api(path), api(path + "/graph")]);
    return { job, graph };
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return { job: null, graph: null };
    throw error;
  }
}

function etaText(seconds) {
  if (seconds === null || seconds === undefined) return "not known yet";
  return "about " + (seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)) + " s";
}

function detailFields(job) {
  const list = document.createElement("dl");
  list.id = "detail-fields";
  const add = (name, label, value, className) => {
    const shown = value === null || value === undefined || value === "" ? "–" : value;
    const dd = el("dd", shown, "text" + (className ? " " + className : ""));
    dd.dataset.field = name;
    list.append(el("dt", label), dd);
  };
  const ids = (list) => (list && list.length ? list.join(", ") : "");
  add("task", "task", job.task);
  add("queue", "queue", job.queue);
  add("status", "status", job.status, "status-" + job.status);
  add("summary", "where", job.summary);
  if (job.status === "queued") {
    // "–" where the jobs' broker cannot tell a place in line (a RabbitMQ transport)
    add("position", "ahead of it", job.position_supported === false ? null : job.position);
  }
  if (UNFINISHED.includes(job.status)) add("eta", "done in", etaText(job.eta_seconds));
  add("unique_key", "unique key", job.unique_key);
  add("attempts", "attempts", job.attempts);
  add("created", "created", when(job.created_at));
  add("started", "started", when(job.started_at));
  add("finished", "finished", when(job.finished_at));
  add("arguments", "arguments", callText(job));
  if (job.status === "succeeded") add("result", "result", JSON.stringify(job.result));
  if (job.error) add("error", "error", job.error.type + ": " + job.error.message, "error-text");
  add("parents", "depends on", ids(job.parents));
  add("children", "needed by", ids(job.children));
  if (job.parents && job.parents.length) {
    add("on_dependency_failure", "if one fails", job.on_dependency_failure);
  }
  return list;
}

function graphNote(graph) {
  if (graph.truncated) return "The nearest " + graph.nodes.length + " jobs of a bigger workflow.";
  if (graph.nodes.length === 1) return "This job depends on no other, and no other on it.";
  return "Arrows run from a job to the jobs that wait for it; select one to open it.";
}

function drawDetail(id, detail) {
  const section = document.getElementById("detail");
  section.hidden = id === null;
  if (id === null) return;
  document.getElementById("detail-id").textContent = id;
  const missing = document.getElementById("detail-missing");
  const body = document.getElementById("detail-body");
  missing.hidden = detail.job !== null;
  body.hidden = detail.job === null;
  if (detail.job === null) {
    missing.textContent = "No job " + id + ": it never existed, or its record was removed.";
    return;
  }
  document.getElementById("detail-fields").replaceWith(detailFields(detail.job));
  document.getElementById("detail-actions").replaceChildren(...jobActions(detail.job));
  document.getElementById("graph-note").textContent = graphNote(detail.graph);
  drawGraph(document.getElementById("graph"), detail.graph, id, openJob);
}

// -- the loop ---------------------------------------------------------------------------------

function setState(text, isError) {
  const state = document.getElementById("state");
  state.textContent = text;
  state.className = isError ? "error" : "";
}

function showLogin(message) {
  clearTimeout(timer);
  document.getElementById("board").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message || "";
  setState("needs a token", true);
  document.getElementById("token").focus();
}

async function refresh() {
  clearTimeout(timer);
  try {
    const status = document.getElementById("status-filter").value;
    const selected = selectedJob();
    const [queues, workers, jobs, failed, throughput, detail] = await Promise.all([
      api("api/queues"), api("api/workers"),
      api("api/jobs?limit=20" + (status ? "&status=" + encodeURIComponent(status) : "")),
      api("api/jobs?status=failed&limit=10"), api("api/throughput"), loadDetail(selected),
    ]);
    document.getElementById("login").hidden = true;
    document.getElementById("board").hidden = false;
    drawQueues(queues.queues);
    drawWorkers(workers.workers);
    drawJobs(jobs.jobs);
    drawFailed(failed.jobs);
    drawChart(throughput);
    drawDetail(selected, detail);
    setState("updated " + new Date().toLocaleTimeString(), false);
  } catch (error) {
    if (error instanceof Unauthorized) {
      showLogin(token ? "That token was refused." : "");
      return;
    }
    setState("cannot update: " + error.message, true);
  }
  timer = setTimeout(refresh, EVERY_MS);
}

async function act(action) {
  try {
    await api(action.path, { method: action.method });
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin("That token was refused.");
    setState(error.message, true);
  }
  document.getElementById("status-filter").addEventListener("change", () => refresh());
document.getElementById("detail-close").addEventListener("click", () => {
  history.replaceState(null, "", location.pathname + location.search);
  refresh();
});
async function refreshAndShowJob() {
  await refresh();
  if (selectedJob() !== null) document.getElementById("detail").scrollIntoView();
}

window.addEventListener("hashchange", refreshAndShowJob);

refreshAndShowJob();
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  token = document.getElementById("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  document.getElementById("status-filter").addEventListener("change", () => refresh());
document.getElementById("detail-close").addEventListener("click", () => {
  history.replaceState(null, "", location.pathname + location.search);
  refresh();
});
async function refreshAndShowJob() {
  await refresh();
  if (selectedJob() !== null) document.getElementById("detail").scrollIntoView();
}

window.addEventListener("hashchange", refreshAndShowJob);

refreshAndShowJob();
});

document.getElementById("status-filter").addEventListener("change", () => refresh());
document.getElementById("detail-close").addEventListener("click", () => {
  history.replaceState(null, "", location.pathname + location.search);
  refresh();
});
async function refreshAndShowJob() {
  await refresh();
  if (selectedJob() !== null) document.getElementById("detail").scrollIntoView();
}

window.addEventListener("hashchange", refreshAndShowJob);

refreshAndShowJob();
