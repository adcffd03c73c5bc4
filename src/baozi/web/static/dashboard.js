// baozi dashboard: polls the JSON API once a second and redraws the tables and the chart.
// Everything that comes from the store is written with textContent, never parsed as HTML.
"use strict";

const TOKEN_KEY = "baozi-token";
const EVERY_MS = 1000;
let token = sessionStorage.getItem(TOKEN_KEY) || "";
let timer = null;

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) throw new Unauthorized("token refused");
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.status + " " + response.statusText);
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

function button(label, action) {
  const td = el("td");
  const b = el("button", label);
  b.type = "button";
  b.addEventListener("click", () => act(action));
  td.append(b);
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
      name, num(q.ready, "n ready"), num(q.scheduled, "n scheduled"), num(q.running, "n running"),
      num(q.succeeded, "n succeeded"), num(q.failed, "n failed"), num(perMinute, "n rate"), control,
    ], { queue: q.name });
  }), "no queues yet", 8);
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

function jobControl(job) {
  const path = "api/jobs/" + encodeURIComponent(job.id);
  if (job.status === "queued" || job.status === "scheduled") return button("cancel", { path, method: "DELETE" });
  if (job.status === "failed" || job.status === "cancelled") return button("retry", { path: path + "/retry", method: "POST" });
  return el("td");
}

function drawJobs(jobs) {
  fill("jobs", jobs.map((job) => row([
    el("td", job.id, "text"), el("td", job.task, "text"), el("td", job.queue, "text"),
    el("td", job.status, "status-" + job.status), el("td", callText(job), "text args"),
    when(job.created_at), jobControl(job),
  ], { job: job.id })), "no jobs", 7);
}

function drawFailed(jobs) {
  fill("failed", jobs.map((job) => {
    const error = job.error ? job.error.type + ": " + job.error.message : "";
    return row([
      el("td", job.id, "text"), el("td", job.task, "text"), el("td", job.queue, "text"),
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
    const [queues, workers, jobs, failed, throughput] = await Promise.all([
      api("api/queues"), api("api/workers"), api("api/jobs?limit=20"),
      api("api/jobs?status=failed&limit=10"), api("api/throughput"),
    ]);
    document.getElementById("login").hidden = true;
    document.getElementById("board").hidden = false;
    drawQueues(queues.queues);
    drawWorkers(workers.workers);
    drawJobs(jobs.jobs);
    drawFailed(failed.jobs);
    drawChart(throughput);
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
  refresh();
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  token = document.getElementById("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  refresh();
});

refresh();
