// baozi dashboard: one job (#/jobs/{id}): where it stands, its call, result or error, progress,
// attempts, times, the jobs it depends on and that depend on it (with the workflow graph), and
// what can be done to it: retry, cancel, forget.

import {
  ApiError, UNFINISHED, api, button, confirmAction, duration, h, jobLink, link, num, patch, queueLink,
  rows, say, statusBadge, table, when,
} from "./dom.js";
import { drawGraph } from "./graph.js";

const FINISHED = ["succeeded", "failed", "cancelled"];

function pretty(value) {
  return value === undefined ? "–" : JSON.stringify(value, null, 2);
}

function field(dl, label, value, testid) {
  const shown = value === null || value === undefined || value === "" ? "–" : value;
  dl.push(h("dt", {}, label), h("dd", { testid }, shown));
}

function positionText(job) {
  if (job.status !== "queued") return null;
  if (job.position_supported === false) return "not known with this broker";
  return job.position === null || job.position === undefined ? null : num(job.position) + " ahead of it";
}

function etaText(job) {
  if (!UNFINISHED.includes(job.status)) return null;
  return job.eta_seconds === null || job.eta_seconds === undefined ? "not known yet" : "about " + duration(job.eta_seconds);
}

function details(job) {
  const dl = [];
  field(dl, "Task", link("#/jobs?task=" + encodeURIComponent(job.task), job.task, { className: "mono" }), "job-task");
  field(dl, "Queue", queueLink(job.queue), "job-queue");
  field(dl, "Priority", job.priority, "job-priority");
  field(dl, "Place in line", positionText(job), "job-position");
  field(dl, "Done in", etaText(job), "job-eta");
  field(dl, "Attempts", num(job.attempts), "job-attempts");
  field(dl, "Worker", job.worker ? link("#/workers", job.worker, { className: "mono" }) : null, "job-worker");
  field(dl, "Unique key", job.unique_key, "job-unique-key");
  if (job.waiting_for) { // how many of the jobs it depends on have not ended
    field(dl, "Waiting for", num(job.waiting_for) + (job.waiting_for === 1 ? " job" : " jobs"), "job-waiting-for");
  }
  if (job.parents && job.parents.length) field(dl, "If a parent fails", job.on_dependency_failure, "job-on-failure");
  return h("dl", { className: "fields" }, dl);
}

function times(job) {
  const dl = [];
  field(dl, "Created", when(job.created_at), "job-created");
  if (job.scheduled_for) field(dl, "Scheduled for", when(job.scheduled_for), "job-scheduled-for");
  field(dl, "Started", when(job.started_at), "job-started");
  field(dl, "Finished", when(job.finished_at), "job-finished");
  return h("dl", { className: "fields" }, dl);
}

function progressView(job) {
  const p = job.progress;
  if (!p && job.status !== "running") return [];
  const bar = h("progress", { max: 1, testid: "progress", id: "job-progress" });
  let text = "running, no progress reported";
  if (p && p.fraction !== null && p.fraction !== undefined) {
    bar.value = p.fraction;
    text = Math.round(p.fraction * 100) + " %";
  }
  if (p && p.message) text += " · " + p.message;
  return [h("label", { htmlFor: "job-progress", className: "sr-only" }, "Progress"), bar,
    h("span", { testid: "progress-message" }, text)];
}

function outcome(job) {
  const parts = [];
  if (job.status === "succeeded") {
    parts.push(h("h2", {}, "Result"), h("pre", { testid: "job-result" }, pretty(job.result)));
  }
  if (job.error) {
    parts.push(h("h2", {}, "Error"),
      h("p", { className: "error-text mono", testid: "job-error" }, job.error.type + ": " + job.error.message));
    if (job.error.traceback) parts.push(h("pre", { className: "traceback", testid: "job-traceback" }, job.error.traceback));
  }
  return parts;
}

function attemptRows(log) {
  return (log || []).map((a) => h("tr", { data: { attempt: String(a.attempt) } },
    h("td", { className: "n" }, num(a.attempt)), h("td", { className: "mono" }, a.worker || "–"),
    h("td", {}, when(a.started_at)), h("td", {}, when(a.finished_at)),
    h("td", {}, statusBadge(a.outcome)),
    h("td", { className: "mono error-text" }, a.error ? a.error.type + ": " + a.error.message : ""),
  ));
}

function links(ids, testid, none) {
  if (!ids || ids.length === 0) return h("p", { className: "muted", testid }, none);
  return h("ul", { className: "id-list", testid }, ids.map((id) => h("li", {}, jobLink(id))));
}

// The job's runs, from GET /api/jobs/{id}/attempts where the job view does not hold them
// (null from a server that has neither).
async function attemptLog(id) {
  try {
    return (await api("api/jobs/" + encodeURIComponent(id) + "/attempts")).attempts;
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 405)) return null;
    throw error;
  }
}

async function act(ctx, id, what) {
  const path = "api/jobs/" + encodeURIComponent(id);
  const calls = {
    retry: [path + "/retry", "POST", `Job ${id} is queued again.`],
    cancel: [path, "DELETE", `Job ${id} is cancelled.`],
    forget: [path + "/forget", "POST", `Job ${id} is forgotten: its record is removed.`],
  };
  const [url, method, done] = calls[what];
  const asks = {
    cancel: [`Cancel job ${id}? A running job is stopped.`, "Cancel the job"],
    forget: [`Forget job ${id}? Its record, result and error are removed.`, "Forget the job"],
  };
  if (asks[what] && !(await confirmAction(...asks[what]))) {
    say("Nothing was changed.");
    return;
  }
  try {
    await api(url, { method });
    say(done);
  } catch (error) {
    ctx.failed(error);
  }
  ctx.refresh();
}

function actions(ctx, job) {
  const out = [];
  if (job.status === "failed" || job.status === "cancelled") {
    out.push(button("Retry", () => act(ctx, job.id, "retry"), { testid: "job-retry" }));
  }
  if (!FINISHED.includes(job.status)) {
    out.push(button("Cancel", () => act(ctx, job.id, "cancel"), { testid: "job-cancel", className: "danger" }));
  }
  if (FINISHED.includes(job.status)) {
    out.push(button("Forget", () => act(ctx, job.id, "forget"), { testid: "job-forget", className: "danger" }));
  }
  return out;
}

function graphNote(graph) {
  if (graph.truncated) return "The nearest " + graph.nodes.length + " jobs of a bigger workflow.";
  return "Arrows run from a job to the jobs that wait for it; select one to open it.";
}

export function jobPage(main, ctx) {
  const id = ctx.arg;
  const sections = {
    badge: h("span"), summary: h("p", { className: "summary", testid: "job-summary" }),
    actions: h("div", { className: "buttons", testid: "job-actions" }),
    progress: h("div", { className: "progress", testid: "job-progress" }),
    details: h("div"), times: h("div"), args: h("div"), outcome: h("div"),
    parents: h("div"), children: h("div"), note: h("p", { className: "muted" }),
    graph: h("div", { className: "graph-box", testid: "job-graph" }),
  };
  const attempts = table("attempts-table", "Attempts",
    [["Attempt", "n"], ["Worker"], ["Started"], ["Finished"], ["Outcome"], ["Error"]]);
  const missing = h("p", { className: "error", testid: "job-missing", hidden: true });
  const body = h("div", { className: "job", hidden: true },
    sections.summary, sections.actions, sections.progress,
    h("div", { className: "columns" },
      h("section", {}, h("h2", {}, "Details"), sections.details),
      h("section", {}, h("h2", {}, "Times"), sections.times)),
    sections.args, sections.outcome,
    h("section", {}, h("h2", {}, "Attempts"), attempts.box),
    h("section", { className: "workflow" }, h("h2", {}, "Workflow"),
      h("div", { className: "columns" },
        h("div", {}, h("h3", {}, "Depends on"), sections.parents),
        h("div", {}, h("h3", {}, "Needed by"), sections.children)),
      sections.note, sections.graph));
  const head = h("div", { className: "page-head" }, h("h1", { id: "page-title", tabIndex: -1, testid: "page-title" },
    "Job ", h("span", { className: "mono", testid: "job-id" }, id), " ", sections.badge));
  main.replaceChildren(head, missing, body);
  let shownGraph = "";
  const open = (other) => { location.hash = "#/jobs/" + encodeURIComponent(other); };

  const show = async (job) => {
    patch(sections.badge, statusBadge(job.status, "job-status"));
    patch(sections.summary, job.summary || "");
    patch(sections.actions, actions(ctx, job));
    patch(sections.progress, progressView(job));
    patch(sections.details, details(job));
    patch(sections.times, times(job));
    patch(sections.args, [h("h2", {}, "Arguments"), h("pre", { testid: "job-args" }, pretty(job.args)),
      h("h2", {}, "Keyword arguments"), h("pre", { testid: "job-kwargs" }, pretty(job.kwargs))]);
    patch(sections.outcome, outcome(job));
    const log = job.attempt_log || await attemptLog(id);
    rows(attempts, attemptRows(log), log ? "Not started yet." : "This server does not report attempts.");
    patch(sections.parents, links(job.parents, "job-parents", "No other job."));
    patch(sections.children, links(job.children, "job-children", "No other job."));
    if ((job.parents || []).length + (job.children || []).length === 0) {
      patch(sections.note, "This job depends on no other, and no other on it.");
      sections.graph.replaceChildren();
      shownGraph = "";
      return;
    }
    const graph = await api("api/jobs/" + encodeURIComponent(id) + "/graph");
    const text = JSON.stringify(graph);
    patch(sections.note, graphNote(graph));
    if (text !== shownGraph) drawGraph(sections.graph, graph, id, open);
    shownGraph = text;
  };

  return {
    title: "Job " + id,
    async refresh() {
      let job;
      try {
        job = await api("api/jobs/" + encodeURIComponent(id));
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
        missing.textContent = `No job ${id}: it never existed, or its record was removed.`;
        missing.hidden = false;
        body.hidden = true;
        sections.badge.replaceChildren();
        return;
      }
      missing.hidden = true;
      body.hidden = false;
      await show(job);
    },
  };
}
