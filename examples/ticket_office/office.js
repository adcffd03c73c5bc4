// The ticket office page: post an order, then ask about it every half second until it is done.
"use strict";

function describe(order) {
  if (order.status === "succeeded" && order.ticket) {
    const t = order.ticket;
    return ["confirmed — " + t.name + ", " + t.train + ", seat " + t.seat, "confirmed"];
  }
  if (order.status === "failed" || order.status === "cancelled") return ["sorry — the sale " + order.status, "failed"];
  // (succeeded without a ticket: the answer to the order itself, which carries none yet)
  if (order.status === "running" || order.status === "succeeded") return ["processing — the clerk is printing your ticket", ""];
  if (order.ahead === null || order.ahead === undefined) return ["processing — waiting for a clerk", ""];
  if (order.ahead === 0) return ["processing — you are next", ""];
  return ["processing — " + order.ahead + (order.ahead === 1 ? " order" : " orders") + " ahead of you", ""];
}

function show(item, order) {
  const [text, kind] = describe(order);
  const status = item.querySelector(".status");
  status.textContent = text;  // text only: nothing from the server is read as HTML
  status.className = "status " + kind;
  return (order.status === "succeeded" && Boolean(order.ticket)) || order.status === "failed" || order.status === "cancelled";
}

async function follow(item, url) {
  const response = await fetch(url);
  if (response.ok && show(item, await response.json())) return;
  setTimeout(() => follow(item, url), 500);
}

async function buy(event) {
  event.preventDefault();
  const error = document.getElementById("error");
  error.textContent = "";
  const order = { name: document.getElementById("name").value, train: document.getElementById("train").value };
  const response = await fetch("orders", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(order),
  });
  const body = await response.json();
  if (response.status !== 202) {
    error.textContent = body.error || "the order was refused";
    return;
  }
  const item = document.createElement("li");
  item.dataset.order = body.id;
  const title = document.createElement("span");
  title.textContent = "Order " + body.id.split("-")[0] + ": " + order.name + ", " + order.train;
  const status = document.createElement("span");
  status.className = "status";
  item.append(title, status);
  document.getElementById("orders").prepend(item);
  show(item, { status: body.status, ahead: body.ahead });
  setTimeout(() => follow(item, body.url), 500);
}

async function start() {
  const select = document.getElementById("train");
  const { trains } = await (await fetch("trains")).json();
  for (const train of trains) {
    const option = document.createElement("option");
    option.value = option.textContent = train;
    select.append(option);
  }
  document.getElementById("buy").addEventListener("submit", buy);
}

start();
