// baozi dashboard: a single-page app over the JSON API. This module asks GET api/session first
// (the login form on 401), routes the hash (#/, #/jobs, #/jobs/{id}, #/scheduled, #/failed,
// #/queues, #/queues/{name}, #/tasks, #/workers, #/schedules) to a page, and refreshes the page
// shown on every tick of api/events while the tab is visible (polling every 2 s when the event
// stream fails). Every URL is relative: the app may be mounted below a root path.
//
// Stable hooks for tests (data-testid, unless an id is named):
//   frame     nav, nav-overview, nav-jobs, nav-scheduled, nav-failed, nav-queues, nav-tasks,
//             nav-workers, nav-schedules, failed-badge, logout-form, logout, live-state,
//             status (the aria-live region; it holds status-ok or status-error), app (<main>),
//             page-title, brand
//   login     login, login-form, login-token (input name="token"), login-submit, login-error
//   dialog    confirm-dialog, confirm-text, confirm, confirm-cancel
//   tables    queues-table, jobs-table, scheduled-table, failed-table, attempts-table,
//             tasks-table, workers-table, gone-table, schedules-table; rows carry data-queue, data-job,
//             data-task, data-worker, data-schedule, data-attempt; links job-link and
//             queue-link (data-key: the id or name)
//   overview  counters, count-queued, count-scheduled, count-running, count-waiting,
//             count-succeeded, count-failed, count-cancelled, count-workers, chart-throughput
//   charts    window-10m, window-1h, window-24h (aria-pressed), chart-tooltip, chart-legend
//   jobs      jobs-filter, filter-queue, filter-status, filter-task, filter-since, filter-until,
//             filter-q, filter-apply, filter-clear, jobs-count, first-page, next-page
//   scheduled due (the due time in each row)
//   failed    failed-queue, retry-all, delete-all, row-retry (data-key: job id)
//   job       job-id, job-status, job-summary, job-actions, job-retry, job-cancel, job-forget,
//             job-progress, progress (<progress>), progress-message, job-task, job-queue,
//             job-priority, job-position, job-eta, job-attempts, job-worker, job-unique-key,
//             job-waiting-for, job-on-failure, job-created, job-scheduled-for, job-started,
//             job-finished, job-args, job-kwargs, job-result, job-error, job-traceback,
//             job-parents, job-children, job-graph, graph-node (data-key: job id), job-missing
//   queue     queue-name, queue-actions, queue-pause, queue-resume, queue-purge, queue-jobs,
//             queue-state, queue-latency, queue-oldest, queue-ready, queue-scheduled,
//             queue-running, queue-waiting, queue-succeeded, queue-failed, queue-cancelled,
//             queue-maxsize, queue-rate, chart-depth, chart-queue-throughput, queue-missing
//   workers   worker-stale, worker-dead, gone-table (rows data-worker: a lease holder that sends no heartbeat)
//   schedules schedule-overdue

import { ApiError, Unauthorized, api, clearError, num, say } from "./dom.js";
import { failedPage, jobsPage, scheduledPage } from "./jobs.js";
import { jobPage } from "./job.js";
import {
  notFoundPage, overviewPage, queuePage, queuesPage, schedulesPage, tasksPage, workersPage,
} from "./pages.js";

const POLL_MS = 2000;
const STREAM_RETRY_MS = 30000;
const ROUTES = [
  [/^\/$/, "overview", "Overview", overviewPage],
  [/^\/jobs$/, "jobs", "Jobs", jobsPage],
  [/^\/jobs\/(.+)$/, "jobs", "Job", jobPage],
  [/^\/scheduled$/, "scheduled", "Scheduled", scheduledPage],
  [/^\/failed$/, "failed", "Failed", failedPage],
  [/^\/queues$/, "queues", "Queues", queuesPage],
  [/^\/queues\/(.+)$/, "queues", "Queue", queuePage],
  [/^\/tasks$/, "tasks", "Tasks", tasksPage],
  [/^\/workers$/, "workers", "Workers", workersPage],
  [/^\/schedules$/, "schedules", "Schedules", schedulesPage],
];

let current = null; // {path, page}
let loggedIn = false;

// -- routes ---------------------------------------------------------------------------------

function parseHash() {
  const hash = location.hash.startsWith("#/") ? location.hash.slice(1) : "/";
  const at = hash.indexOf("?");
  const path = at < 0 ? hash : hash.slice(0, at);
  return { path, params: new URLSearchParams(at < 0 ? "" : hash.slice(at + 1)) };
}

function hrefWith(path, params, changes) {
  const next = new URLSearchParams(params);
  for (const [key, value] of Object.entries(changes)) {
    if (value === "" || value === null || value === undefined) next.delete(key);
    else next.set(key, value);
  }
  const text = next.toString();
  return "#" + path + (text ? "?" + text : "");
}

// What a page is handed: the route's parameters and the ways back to the app.
function context(path, params, arg) {
  return {
    path, params, arg,
    hrefWith: (changes) => hrefWith(path, params, changes),
    setParams: (changes) => {
      const now = parseHash(); // the parameters in the address bar now, not those at mount
      location.hash = hrefWith(now.path, now.params, changes);
    },
    refresh: () => tick(),
    failed: (error) => report(error),
    sawQueues: showFailedBadge,
  };
}

function route(moveFocus) {
  const { path, params } = parseHash();
  let found = null;
  for (const [pattern, nav, title, make] of ROUTES) {
    const match = pattern.exec(path);
    if (match) {
      found = { nav, title, make, arg: match[1] === undefined ? undefined : safeDecode(match[1]) };
      break;
    }
  }
  const ctx = context(path, params, found && found.arg);
  if (current && current.path === path && current.page.update) {
    current.page.update(ctx);
  } else {
    const main = document.getElementById("app");
    const page = found ? found.make(main, ctx) : notFoundPage(main, ctx);
    current = { path, page };
    document.title = (page.title || (found ? found.title : "No such page")) + " · baozi";
    if (moveFocus) document.getElementById("page-title")?.focus();
  }
  for (const a of document.querySelectorAll("#nav a[data-route]")) {
    if (found && a.dataset.route === found.nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  tick();
}

function safeDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

// -- refreshing -----------------------------------------------------------------------------

let running = null;
let again = false;
let refreshFailed = false;

// Refresh the page shown; a tick that comes while one runs is run once after it.
async function tick() {
  if (!loggedIn || !current) return;
  if (running) {
    again = true;
    return;
  }
  const page = current.page;
  running = page.refresh().then(() => {
    if (refreshFailed) clearError();
    refreshFailed = false;
  }, (error) => {
    refreshFailed = true;
    report(error);
  });
  await running;
  running = null;
  if (again) {
    again = false;
    if (!document.hidden) tick(); // not for a tab hidden meanwhile: it refreshes when shown
  }
}

function report(error) {
  if (error instanceof Unauthorized) return showLogin(false);
  if (!(error instanceof ApiError)) console.error(error);
  say(error instanceof ApiError ? error.message : "the page failed: " + error.message, true);
}

function showFailedBadge(queues) {
  const failed = queues.reduce((sum, q) => sum + (q.failed || 0), 0);
  const badge = document.getElementById("failed-badge");
  badge.textContent = num(failed);
  badge.hidden = failed === 0;
}

// -- live updates: the event stream while visible, else polling -------------------------------

let source = null;
let poller = null;
let streamFailed = false;
let retry = null;

function setLive(text) {
  document.getElementById("live").textContent = text;
}

function startLive() {
  stopLive();
  if (!loggedIn || document.hidden) return;
  if (!window.EventSource || streamFailed) {
    poller = setInterval(tick, POLL_MS);
    setLive("updating every 2 s");
    return;
  }
  source = new EventSource("api/events");
  source.addEventListener("open", () => setLive("live"));
  source.addEventListener("tick", (event) => {
    try {
      const data = JSON.parse(event.data);
      if (Array.isArray(data.queues)) showFailedBadge(data.queues);
    } catch {
      // a tick we cannot read still says it is time to refresh
    }
    tick();
  });
  source.addEventListener("trouble", (event) => {
    let what = "";
    try {
      what = JSON.parse(event.data).error;
    } catch {
      // said without a reason
    }
    say("The server cannot read the store" + (what ? " (" + what + ")" : "") + "; it keeps trying.", true);
  });
  source.addEventListener("error", () => {
    // Poll instead; the stream is tried again in a while, or when the tab is shown again.
    streamFailed = true;
    startLive();
    retry = setTimeout(() => {
      streamFailed = false;
      startLive();
    }, STREAM_RETRY_MS);
  });
}

function stopLive() {
  if (source) source.close();
  source = null;
  clearInterval(poller);
  poller = null;
  clearTimeout(retry);
  setLive(document.hidden ? "paused while hidden" : "not updating");
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) {
    stopLive();
    return;
  }
  streamFailed = false;
  startLive();
  tick();
});

// -- session --------------------------------------------------------------------------------

function showLogin(first) {
  loggedIn = false;
  stopLive();
  setLive("logged out");
  document.getElementById("nav").hidden = true;
  document.getElementById("app").hidden = true;
  document.getElementById("login").hidden = false;
  const refused = new URLSearchParams(location.search).get("login") === "refused";
  document.getElementById("login-error").hidden = !refused && first;
  document.getElementById("login-error").textContent = refused
    ? "That token was refused." : "Your session ended or the token was refused: log in again.";
  document.getElementById("login-token").focus();
}

function showApp(session) {
  loggedIn = true;
  document.getElementById("login").hidden = true;
  document.getElementById("nav").hidden = false;
  document.getElementById("app").hidden = false;
  document.getElementById("logout").hidden = session.auth !== "cookie";
  route(false);
  startLive();
}

async function start() {
  try {
    showApp(await api("api/session"));
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin(true);
    if (error instanceof ApiError && error.status === 404) return showApp({ auth: "none" }); // an older server
    say(error.message + " (trying again in 5 s)", true);
    setLive("cannot reach the server");
    const main = document.getElementById("app");
    const loading = main.querySelector(".loading");
    if (loading) loading.textContent = "Cannot load the dashboard yet: " + error.message;
    setTimeout(start, 5000);
  }
}

window.addEventListener("hashchange", () => { if (loggedIn) route(true); });
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(tick, 200);
});
document.getElementById("skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("app").focus();
});
start();
