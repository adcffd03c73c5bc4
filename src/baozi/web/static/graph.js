// baozi dashboard: a job's workflow graph (GET /api/jobs/{id}/graph) drawn as SVG, one column
// per layer, each job a box coloured by its status, each dependency an arrow from parent to child.
// Everything that comes from the store is written with textContent, never parsed as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";
const NODE_W = 170;
const NODE_H = 44;
const GAP_X = 56;
const GAP_Y = 14;
const PAD = 8;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function clip(text, length) {
  return text.length > length ? text.slice(0, length - 1) + "…" : text;
}

// Where each node goes: its layer is its column, its order within the layer its row.
function placeNodes(nodes) {
  const rows = new Map();
  const where = new Map();
  for (const node of nodes) {
    const row = rows.get(node.layer) || 0;
    rows.set(node.layer, row + 1);
    where.set(node.id, {
      x: PAD + node.layer * (NODE_W + GAP_X),
      y: PAD + row * (NODE_H + GAP_Y),
    });
  }
  const layers = Math.max(0, ...nodes.map((n) => n.layer)) + 1;
  const tallest = Math.max(1, ...rows.values());
  return {
    where,
    width: 2 * PAD + layers * NODE_W + (layers - 1) * GAP_X,
    height: 2 * PAD + tallest * NODE_H + (tallest - 1) * GAP_Y,
  };
}

function arrowHead() {
  const defs = svg("defs");
  const marker = svg("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
  });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }));
  defs.append(marker);
  return defs;
}

function drawEdge(from, to) {
  const x1 = from.x + NODE_W;
  const y1 = from.y + NODE_H / 2;
  const x2 = to.x;
  const y2 = to.y + NODE_H / 2;
  const bend = (x2 - x1) / 2;
  return svg("path", {
    d: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`,
    class: "edge", "marker-end": "url(#arrow)",
  });
}

function drawNode(node, at, current, open) {
  const status = node.status || "gone";
  const g = svg("g", {
    class: "node status-" + status + (node.id === current ? " current" : ""),
    transform: `translate(${at.x} ${at.y})`, tabindex: 0, role: "link",
    "aria-label": `job ${node.id}, ${node.task === null ? "record gone" : node.task}, ${status}`,
  });
  g.dataset.job = node.id;
  g.dataset.testid = "graph-node";
  g.dataset.key = node.id;
  const task = node.task === null ? "(record gone)" : node.task;
  g.append(
    svg("title", {}, `job ${node.id}: ${task}, ${status}`),
    svg("rect", { width: NODE_W, height: NODE_H, rx: 6 }),
    svg("text", { x: 8, y: 18, class: "task" }, clip(task, 22)),
    svg("text", { x: 8, y: 35, class: "meta" }, clip(node.id, 12) + " · "),
  );
  g.lastChild.append(svg("tspan", { class: "status" }, status));
  g.addEventListener("click", () => open(node.id));
  g.addEventListener("keydown", (event) => {
    if (event.key === "Enter") open(node.id);
  });
  return g;
}

// Draw ``graph`` into ``container``: ``current`` is the job shown, ``open(id)`` shows another.
export function drawGraph(container, graph, current, open) {
  const { where, width, height } = placeNodes(graph.nodes);
  const root = svg("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, class: "graph", role: "group",
    "aria-label": "workflow of job " + current,
  });
  root.append(arrowHead());
  for (const edge of graph.edges) {
    const from = where.get(edge.parent);
    const to = where.get(edge.child);
    if (from && to) root.append(drawEdge(from, to));
  }
  for (const node of graph.nodes) root.append(drawNode(node, where.get(node.id), current, open));
  container.replaceChildren(root);
}
