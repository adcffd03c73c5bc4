// baozi dashboard: the pieces every page uses: calls to the JSON API, building DOM nodes,
// times shown with date, zone and a relative time, the status region and the confirmation
// dialog. Stored text is only ever written with textContent, never parsed as HTML.

export const STATUSES = ["waiting", "scheduled", "queued", "running", "succeeded", "failed", "cancelled"];
export const UNFINISHED = ["waiting", "scheduled", "queued", "running"];
export const WINDOWS = ["10m", "1h", "24h"];

// -- the API --------------------------------------------------------------------------------

export class Unauthorized extends Error {}

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// Ask the API (a URL relative to the page, which may be mounted below a root path). A JSON
// ``body`` is sent as application/json. Answers the parsed JSON; throws Unauthorized on 401 and
// ApiError with the server's {"error": ...} text on any other failure.
export async function api(path, { method = "GET", body } = {}) {
  const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new ApiError("cannot reach the server (" + error.message + ")", 0);
  }
  if (response.status === 401) throw new Unauthorized("this server needs a token");
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const said = answer && typeof answer.error === "string" ? answer.error : response.statusText;
    throw new ApiError(method + " " + path.split("?")[0] + ": " + response.status + " " + said, response.status);
  }
  return answer;
}

// A query string of the parameters that have a value ("" and null are left out).
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? "?" + text : "";
}

// -- DOM ------------------------------------------------------------------------------------

// A new element: ``props`` sets properties (className, href, type...), ``dataset`` entries
// (data: {...}), attributes (attrs: {...}) and a testid; children are nodes or text.
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "data") Object.assign(node.dataset, value);
    else if (key === "attrs") for (const [a, v] of Object.entries(value)) node.setAttribute(a, String(v));
    else if (key === "testid") node.dataset.testid = value;
    else if (key === "on") for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    else node[key] = value;
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// A table in a box that scrolls sideways on its own: ``columns`` are [label, className?].
// Answers {box, table, body}; fill the body with ``rows``.
export function table(testid, label, columns) {
  const head = h("tr", {}, columns.map(([text, className]) => h("th", { scope: "col", className }, text)));
  const body = h("tbody", {}, h("tr", {}, h("td", { className: "empty", colSpan: columns.length }, "Loading…")));
  const tbl = h("table", { testid }, h("caption", { className: "sr-only" }, label), h("thead", {}, head), body);
  tbl.dataset.columns = String(columns.length);
  const box = h("div", { className: "table-box", tabIndex: 0, attrs: { role: "region", "aria-label": label } }, tbl);
  return { box, table: tbl, body };
}

// Put ``rows`` (tr nodes) in a table's body, or one row saying ``empty`` when there are none.
export function rows(tbl, trs, empty) {
  if (trs.length === 0) {
    const td = h("td", { className: "empty", colSpan: Number(tbl.table.dataset.columns) }, empty);
    trs = [h("tr", {}, td)];
  }
  patch(tbl.body, trs);
}

// Make ``parent`` hold ``children``, leaving it as it is when they are the same nodes as it
// holds already, so that a refresh that changes nothing keeps the reader's text selection.
export function patch(parent, children) {
  const next = parent.cloneNode(false);
  append(next, Array.isArray(children) ? children : [children]);
  if (next.isEqualNode(parent)) return;
  keepFocus(parent, () => parent.replaceChildren(...next.childNodes));
}

// Run ``change``, which replaces what ``within`` holds; if the focus was on a link or button
// in it, put it back on the new one with the same testid and key (a live refresh must not
// throw a keyboard user back to the top of the page).
export function keepFocus(within, change) {
  const active = document.activeElement;
  const had = active && within.contains(active) && active !== within ? active : null;
  const testid = had && had.dataset.testid;
  const key = had && had.dataset.key;
  change();
  if (!testid) return;
  let selector = `[data-testid="${CSS.escape(testid)}"]`;
  if (key !== undefined) selector += `[data-key="${CSS.escape(key)}"]`;
  const again = within.querySelector(selector);
  if (again) again.focus();
}

export function link(href, text, props = {}) {
  return h("a", { href, ...props }, text);
}

export function jobHref(id) {
  return "#/jobs/" + encodeURIComponent(id);
}

export function jobLink(id, props = {}) {
  return link(jobHref(id), id, { className: "mono", testid: "job-link", data: { key: id }, ...props });
}

export function queueLink(name) {
  return link("#/queues/" + encodeURIComponent(name), name, { testid: "queue-link", data: { key: name } });
}

export function statusBadge(status, testid) {
  return h("span", { className: "badge status-" + (status || "gone"), testid }, status || "gone");
}

export function button(text, onClick, props = {}) {
  return h("button", { type: "button", on: { click: onClick }, ...props }, text);
}

export function num(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString("en");
}

export function clip(text, length) {
  return text.length > length ? text.slice(0, length - 1) + "…" : text;
}

// A job's call in one line: its arguments, and its keyword arguments when it has any.
export function callText(job) {
  if (job.args === null && job.kwargs === null) return "(arguments this server cannot decode)";
  const kwargs = job.kwargs && Object.keys(job.kwargs).length ? " " + JSON.stringify(job.kwargs) : "";
  return JSON.stringify(job.args) + kwargs;
}

// -- times ----------------------------------------------------------------------------------

const pad = (n) => String(n).padStart(2, "0");

export function zoneName(date) {
  const offset = -date.getTimezoneOffset();
  if (offset === 0) return "UTC";
  const sign = offset > 0 ? "+" : "-";
  const hours = Math.floor(Math.abs(offset) / 60);
  const minutes = Math.abs(offset) % 60;
  return "UTC" + sign + hours + (minutes ? ":" + pad(minutes) : "");
}

export function dateTime(seconds) {
  const d = new Date(seconds * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zoneName(d)}`;
}

export function clock(seconds, withDate) {
  const d = new Date(seconds * 1000);
  const time = pad(d.getHours()) + ":" + pad(d.getMinutes());
  return withDate ? `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}` : time;
}

export function relative(seconds, now = Date.now() / 1000) {
  const delta = seconds - now;
  const span = Math.abs(delta);
  let text;
  if (span < 1) return "now";
  if (span < 60) text = Math.round(span) + " s";
  else if (span < 3600) text = Math.round(span / 60) + " min";
  else if (span < 86400) text = (span / 3600).toFixed(span < 36000 ? 1 : 0) + " h";
  else text = (span / 86400).toFixed(span < 864000 ? 1 : 0) + " d";
  return delta > 0 ? "in " + text : text + " ago";
}

// A <time> with date, time, zone and relative time; "–" when there is no time.
export function when(seconds, testid) {
  if (seconds === null || seconds === undefined) return h("span", { className: "muted", testid }, "–");
  const iso = new Date(seconds * 1000).toISOString();
  return h("time", { dateTime: iso, title: iso, testid, className: "when" },
    dateTime(seconds), h("span", { className: "rel" }, " · " + relative(seconds)));
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 1) return Math.round(seconds * 1000) + " ms";
  if (seconds < 120) return seconds.toFixed(seconds < 10 ? 1 : 0) + " s";
  if (seconds < 7200) return Math.round(seconds / 60) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

// The value of a datetime-local input for epoch ``seconds``, and back.
export function toLocalInput(seconds) {
  if (!seconds) return "";
  const d = new Date(Number(seconds) * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fromLocalInput(value) {
  if (!value) return "";
  const t = new Date(value).getTime();
  return Number.isFinite(t) ? String(Math.round(t / 1000)) : "";
}

// -- status region and confirmation ---------------------------------------------------------

let statusTimer = null;

// Say ``text`` in the status region (read out by screen readers); an error stays until the
// next message, other messages for ten seconds.
export function say(text, isError = false) {
  const region = document.getElementById("status");
  clearTimeout(statusTimer);
  const kind = isError ? "error" : "ok";
  region.replaceChildren(h("span", { className: kind, testid: "status-" + kind }, text));
  region.classList.toggle("shown", true);
  if (!isError) {
    statusTimer = setTimeout(() => {
      region.replaceChildren();
      region.classList.toggle("shown", false);
    }, 10000);
  }
}

export function clearError() {
  const region = document.getElementById("status");
  if (region.querySelector(".error")) {
    region.replaceChildren();
    region.classList.toggle("shown", false);
  }
}

// Ask with the page's <dialog>; resolves true when Confirm was chosen (Escape and Cancel: false).
export function confirmAction(text, confirmLabel = "Confirm") {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = text;
  dialog.querySelector('[data-testid="confirm"]').textContent = confirmLabel;
  dialog.returnValue = "";
  const opener = document.activeElement;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (opener && opener.isConnected) opener.focus();
      resolve(dialog.returnValue === "confirm");
    }, { once: true });
    dialog.showModal();
  });
}

// -- pages ----------------------------------------------------------------------------------

// A page's heading (focused when the reader moves to the page), with ``extra`` beside it.
export function pageHead(title, ...extra) {
  return h("div", { className: "page-head" },
    h("h1", { id: "page-title", tabIndex: -1, testid: "page-title" }, title), ...extra);
}

// Wait for every [promise, render] piece and render those that answered, so that one failing
// endpoint leaves the rest of the page shown; then throw the first failure (a refused token
// before any other).
export async function settle(pieces) {
  const results = await Promise.allSettled(pieces.map(([promise]) => promise));
  let failure = null;
  results.forEach((result, i) => {
    if (result.status === "fulfilled") pieces[i][1](result.value);
    else if (!failure || result.reason instanceof Unauthorized) failure = result.reason;
  });
  if (failure) throw failure;
}

// A group of buttons choosing the time window (10m, 1h, 24h); the choice is kept in the
// route's query (``window``) so that a link to the page keeps it.
export function windowPicker(ctx, fallback = "1h") {
  let value = WINDOWS.includes(ctx.params.get("window")) ? ctx.params.get("window") : fallback;
  const buttons = WINDOWS.map((w) => button(w, () => ctx.setParams({ window: w }), {
    testid: "window-" + w, attrs: { "aria-pressed": String(w === value) },
  }));
  const node = h("div", { className: "window-picker", attrs: { role: "group", "aria-label": "Time window" } },
    h("span", { className: "muted" }, "Window"), buttons);
  return {
    node,
    get value() { return value; },
    set(params) {
      value = WINDOWS.includes(params.get("window")) ? params.get("window") : fallback;
      buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(WINDOWS[i] === value)));
    },
  };
}
