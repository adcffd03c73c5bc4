// baozi dashboard: the lists of jobs (all jobs with filters, scheduled, failed), each a page of
// GET /api/jobs read newest first and paged by cursor, and the bulk actions on failed jobs.

import {
  STATUSES, api, button, callText, clip, confirmAction, fromLocalInput, h, jobLink, link, num,
  pageHead, patch, query, queueLink, rows, say, settle, statusBadge, table, toLocalInput, when,
} from "./dom.js";

const PAGE_SIZE = 50;
const FILTERS = ["queue", "status", "task", "since", "until", "q"];

function argsCell(job) {
  const text = callText(job);
  return h("td", { className: "mono args", title: clip(text, 2000) }, clip(text, 120));
}

// The paging links: back to the first page, and on to the page after this one.
function pager(ctx, nextCursor) {
  const first = ctx.params.get("cursor")
    ? link(ctx.hrefWith({ cursor: "" }), "First page", { testid: "first-page" })
    : h("span", { className: "disabled", testid: "first-page", attrs: { "aria-disabled": "true" } }, "First page");
  const next = nextCursor
    ? link(ctx.hrefWith({ cursor: nextCursor }), "Next page", { testid: "next-page" })
    : h("span", { className: "disabled", testid: "next-page", attrs: { "aria-disabled": "true" } }, "Next page");
  return [first, next];
}

function listing(ctx, status, extra = {}) {
  const params = { limit: PAGE_SIZE, cursor: ctx.params.get("cursor"), status, ...extra };
  return api("api/jobs" + query(params));
}

// Fill ``select`` with ``values`` (after its first, "all" option), keeping the chosen value;
// left alone while it has the focus (its list may be open).
function options(select, values) {
  if (document.activeElement === select) return;
  const chosen = select.value;
  const all = [...new Set([...values, chosen].filter(Boolean))].sort();
  const kept = select.options[0];
  select.replaceChildren(kept, ...all.map((v) => h("option", { value: v }, v)));
  select.value = chosen;
}

function labelled(id, text, control) {
  control.id = id;
  return h("div", { className: "field" }, h("label", { htmlFor: id }, text), control);
}

// -- #/jobs ---------------------------------------------------------------------------------

function filterForm(ctx) {
  const select = (name, all) => h("select", { name, testid: "filter-" + name }, h("option", { value: "" }, all));
  const fields = {
    queue: select("queue", "all queues"),
    status: select("status", "all statuses"),
    task: select("task", "all tasks"),
    since: h("input", { type: "datetime-local", name: "since", testid: "filter-since" }),
    until: h("input", { type: "datetime-local", name: "until", testid: "filter-until" }),
    q: h("input", {
      type: "search", name: "q", testid: "filter-q", placeholder: "job id or task name", autocomplete: "off",
    }),
  };
  fields.status.append(...STATUSES.map((s) => h("option", { value: s }, s)));
  const look = { className: "filters", testid: "jobs-filter", attrs: { role: "search", "aria-label": "Filter jobs" } };
  const form = h("form", look,
    labelled("f-queue", "Queue", fields.queue), labelled("f-status", "Status", fields.status),
    labelled("f-task", "Task", fields.task), labelled("f-since", "Created from", fields.since),
    labelled("f-until", "Created until", fields.until), labelled("f-q", "Search", fields.q),
    h("div", { className: "field buttons" },
      h("button", { type: "submit", testid: "filter-apply" }, "Apply"),
      link("#/jobs", "Clear", { className: "button-like", testid: "filter-clear" })));
  const read = () => ({
    queue: fields.queue.value, status: fields.status.value, task: fields.task.value,
    since: fromLocalInput(fields.since.value), until: fromLocalInput(fields.until.value),
    q: fields.q.value.trim(),
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.setParams({ ...read(), cursor: "" });
  });
  for (const name of ["queue", "status", "task"]) fields[name].addEventListener("change", () => form.requestSubmit());
  const show = (params) => {
    for (const name of FILTERS) {
      const control = fields[name];
      if (document.activeElement === control) continue; // the reader is typing in it
      const value = params.get(name) || "";
      if (control.tagName === "SELECT" && value && ![...control.options].some((o) => o.value === value)) {
        control.append(h("option", { value }, value));
      }
      control.value = name === "since" || name === "until" ? toLocalInput(value) : value;
    }
  };
  return { form, fields, show };
}

export function jobsPage(main, ctx) {
  const filter = filterForm(ctx);
  const tbl = table("jobs-table", "Jobs", [["ID"], ["Task"], ["Queue"], ["Status"], ["Created"], ["Arguments"]]);
  const count = h("p", { className: "muted", testid: "jobs-count" });
  const paging = h("nav", { className: "pager", attrs: { "aria-label": "Pages of jobs" } });
  main.replaceChildren(pageHead("Jobs"), filter.form, count, tbl.box, paging);
  let route = ctx;
  filter.show(ctx.params);
  api("api/tasks?window=24h").then((t) => options(filter.fields.task, t.tasks.map((x) => x.task)), () => {});
  return {
    update(next) {
      route = next;
      filter.show(next.params);
    },
    async refresh() {
      const extra = {};
      for (const name of FILTERS) extra[name] = route.params.get(name);
      await settle([
        [listing(route, extra.status, extra), (body) => {
          rows(tbl, body.jobs.map((job) => h("tr", { data: { job: job.id } },
            h("td", {}, jobLink(job.id)), h("td", { className: "mono" }, job.task), h("td", {}, queueLink(job.queue)),
            h("td", {}, statusBadge(job.status)), h("td", {}, when(job.created_at)), argsCell(job),
          )), FILTERS.some((f) => extra[f]) ? "No job matches these filters." : "No jobs yet.");
          const n = body.jobs.length;
          const later = route.params.get("cursor") ? "Later page: " : "";
          patch(count, later + n + (n === 1 ? " job" : " jobs") + ", newest first");
          patch(paging, pager(route, body.next_cursor));
          options(filter.fields.task, body.jobs.map((j) => j.task));
        }],
        [api("api/queues"), (q) => {
          options(filter.fields.queue, q.queues.map((x) => x.name));
          ctx.sawQueues(q.queues);
        }],
      ]);
    },
  };
}

// -- #/scheduled ----------------------------------------------------------------------------

export function scheduledPage(main, ctx) {
  const tbl = table("scheduled-table", "Scheduled jobs", [["ID"], ["Task"], ["Queue"], ["Due"], ["Created"], ["Arguments"]]);
  const paging = h("nav", { className: "pager", attrs: { "aria-label": "Pages of scheduled jobs" } });
  main.replaceChildren(pageHead("Scheduled"),
    h("p", { className: "muted" }, "Jobs that wait for their time, soonest due first within each page."), tbl.box, paging);
  let route = ctx;
  return {
    update(next) { route = next; },
    async refresh() {
      const body = await listing(route, "scheduled");
      const jobs = [...body.jobs].sort((a, b) => (a.scheduled_for || 0) - (b.scheduled_for || 0));
      const now = Date.now() / 1000;
      const late = (job) => (job.scheduled_for && job.scheduled_for < now ? "overdue" : "");
      rows(tbl, jobs.map((job) => h("tr", { data: { job: job.id }, className: late(job) },
        h("td", {}, jobLink(job.id)), h("td", { className: "mono" }, job.task), h("td", {}, queueLink(job.queue)),
        h("td", {}, when(job.scheduled_for, "due")), h("td", {}, when(job.created_at)), argsCell(job),
      )), "No job is scheduled.");
      patch(paging, pager(route, body.next_cursor));
    },
  };
}

// -- #/failed -------------------------------------------------------------------------------

async function bulk(ctx, action, queue, failed) {
  const where = queue ? ` in queue "${queue}"` : "";
  const n = failed === null ? "the" : num(failed);
  const text = action === "retry"
    ? `Retry all ${n} failed jobs${where}? Each is queued again to run from its first attempt.`
    : `Delete all ${n} failed jobs${where}? Their records, errors and tracebacks are removed for good.`;
  if (!(await confirmAction(text, action === "retry" ? "Retry all" : "Delete all"))) {
    say("Nothing was changed.");
    return;
  }
  const body = { status: "failed" };
  if (queue) body.queue = queue;
  try {
    if (action === "retry") {
      const answer = await api("api/jobs:retry", { method: "POST", body });
      say(`Retried ${num(answer.retried)} failed jobs${where}.`);
    } else {
      const answer = await api("api/jobs:forget", { method: "POST", body });
      say(`Deleted ${num(answer.forgotten)} failed jobs${where}.`);
    }
  } catch (error) {
    ctx.failed(error);
  }
  ctx.refresh();
}

async function retryOne(ctx, id) {
  try {
    await api("api/jobs/" + encodeURIComponent(id) + "/retry", { method: "POST" });
    say(`Job ${id} is queued again.`);
  } catch (error) {
    ctx.failed(error);
  }
  ctx.refresh();
}

export function failedPage(main, ctx) {
  const tbl = table("failed-table", "Failed jobs",
    [["ID"], ["Task"], ["Queue"], ["Error"], ["Attempts", "n"], ["Finished"], ["Action"]]);
  const queue = h("select", { id: "failed-queue", testid: "failed-queue" }, h("option", { value: "" }, "all queues"));
  queue.addEventListener("change", () => ctx.setParams({ queue: queue.value, cursor: "" }));
  let failedCount = null;
  const scope = () => route.params.get("queue") || "";
  const retryAll = button("Retry all", () => bulk(ctx, "retry", scope(), failedCount), { testid: "retry-all" });
  const deleteAll = button("Delete all", () => bulk(ctx, "forget", scope(), failedCount),
    { testid: "delete-all", className: "danger" });
  const paging = h("nav", { className: "pager", attrs: { "aria-label": "Pages of failed jobs" } });
  main.replaceChildren(pageHead("Failed"),
    h("div", { className: "toolbar" },
      h("div", { className: "field" }, h("label", { htmlFor: "failed-queue" }, "Queue"), queue),
      h("div", { className: "buttons" }, retryAll, deleteAll)),
    tbl.box, paging);
  let route = ctx;
  queue.value = scope();
  return {
    update(next) {
      route = next;
      if (document.activeElement !== queue) queue.value = scope();
    },
    async refresh() {
      await settle([
        [listing(route, "failed", { queue: scope() }), (body) => {
          rows(tbl, body.jobs.map((job) => h("tr", { data: { job: job.id } },
            h("td", {}, jobLink(job.id)), h("td", { className: "mono" }, job.task), h("td", {}, queueLink(job.queue)),
            h("td", { className: "mono error-text" }, job.error ? clip(job.error.type + ": " + job.error.message, 300) : "–"),
            h("td", { className: "n" }, num(job.attempts)), h("td", {}, when(job.finished_at)),
            h("td", {}, button("Retry", () => retryOne(ctx, job.id), {
              testid: "row-retry", data: { key: job.id }, attrs: { "aria-label": "Retry job " + job.id },
            })),
          )), "No failed jobs.");
          patch(paging, pager(route, body.next_cursor));
          retryAll.disabled = deleteAll.disabled = body.jobs.length === 0 && !route.params.get("cursor");
        }],
        [api("api/queues"), (q) => {
          ctx.sawQueues(q.queues);
          options(queue, q.queues.map((x) => x.name));
          const chosen = scope();
          failedCount = q.queues.filter((x) => !chosen || x.name === chosen).reduce((sum, x) => sum + (x.failed || 0), 0);
        }],
      ]);
    },
  };
}
