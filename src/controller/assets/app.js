// plateau controller: polls /api/state and the chart SVGs every second and sends the
// buttons' requests with the page's CSRF token. No framework, no build step.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);
let formLoaded = false;

function show(text, ok) {
  const box = $("message");
  box.textContent = text;
  box.className = ok ? "message ok" : "message error";
  box.hidden = false;
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Plateau-Csrf": csrf },
    body: JSON.stringify(body || {}),
  });
  const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok || answer.error) {
    show(answer.error || `HTTP ${response.status}`, false);
    return null;
  }
  return answer;
}

// The settings form as the API wants it; numbers stay numbers (NaN becomes null, which
// the server refuses with a message).
function settings() {
  const form = $("settings-form");
  const value = (name) => form.elements[name].value;
  const number = (name) => (value(name).trim() === "" ? null : Number(value(name)));
  const pair = (name) => [number(name + ".0"), number(name + ".1")];
  return {
    bootstrap: value("bootstrap"), topic: value("topic"),
    devices: number("devices"), device_prefix: value("device_prefix"), device_width: number("device_width"),
    temperature: pair("temperature"), humidity: pair("humidity"), pressure: pair("pressure"),
    status_ok: number("status_ok"), status_warn: number("status_warn"),
    workers: number("workers"), acks: value("acks"), compression: value("compression"),
    linger_ms: number("linger_ms"), batch_messages: number("batch_messages"),
  };
}

function fillSettings(form) {
  const elements = $("settings-form").elements;
  for (const [key, value] of Object.entries(form)) {
    if (Array.isArray(value)) {
      elements[key + ".0"].value = value[0];
      elements[key + ".1"].value = value[1];
    } else if (elements[key]) {
      elements[key].value = value;
    }
  }
}

const rate = (id) => (String($(id).value).trim() === "" ? NaN : Number($(id).value));
const done = (what) => (answer) => answer && show(what, true);

function start(agents) {
  post("/api/start", { agents, rate: rate("rate"), settings: settings() }).then(done("started"));
}
function setRate(agents, id) {
  post("/api/rate", { agents, rate: rate(id) }).then(done("rate set"));
}
function stop(agents) {
  post("/api/stop", { agents }).then(done("stopped"));
}

$("start-all").onclick = () => start([]);
$("rate-all").onclick = () => setRate([], "rate");
$("stop-all").onclick = () => stop([]);
$("ramp-all").onclick = () => {
  const ramp = { start: rate("ramp-start"), step: rate("ramp-step"), every: rate("ramp-every"), max: rate("ramp-max") };
  post("/api/ramp", { ramp, settings: settings() }).then(done("ramp started"));
};
$("ramp-stop").onclick = () => post("/api/ramp/stop").then(done("ramp stopped"));
$("diagnose").onclick = async () => {
  $("diagnose").disabled = true;
  $("verdict").textContent = "diagnosing…";
  const summary = await post("/api/diagnose", {});
  $("diagnose").disabled = false;
  if (!summary) {
    $("verdict").textContent = "";
    return;
  }
  renderVerdict(summary);
};

function renderVerdict(s) {
  const box = $("verdict");
  box.innerHTML = "";
  const head = document.createElement("p");
  head.className = "verdict";
  head.textContent = `${s.bound}-bound, confidence ${s.confidence.toFixed(2)}` +
    (s.runner_up ? ` (runner-up: ${s.runner_up})` : "") +
    (s.plateau_found ? ` — plateau at ${Math.round(s.plateau_msgs_per_sec)} msg/s` : " — no plateau in the window");
  box.appendChild(head);
  const list = document.createElement("ul");
  for (const line of s.evidence) {
    const item = document.createElement("li");
    item.textContent = line;
    list.appendChild(item);
  }
  box.appendChild(list);
  const link = document.createElement("a");
  link.href = s.findings_url;
  link.id = "findings-link";
  link.target = "_blank";
  link.textContent = "findings report";
  box.appendChild(link);
}

const pct = (v) => (v == null ? "–" : `${Math.round(v * 100)} %`);
const num = (v) => (v == null ? "–" : Math.round(v).toLocaleString("en"));

function card(agent) {
  const div = document.createElement("div");
  div.className = `card ${agent.reachable ? "" : "down"}`;
  div.dataset.agent = agent.url;
  const p = agent.produce || { stats: {} };
  const s = p.stats || {};
  const state = !agent.reachable ? "unreachable" : p.running ? "running" : "idle";
  const rows = agent.role === "generator"
    ? [["topic", p.topic || "–"], ["target", `${num(p.target_rate_mps)} msg/s`],
       ["current", `${num(s.current_rate_mps)} msg/s`], ["sent ok / err", `${num(s.sent_ok)} / ${num(s.sent_err)}`],
       ["bytes", num(s.bytes_sent)], ["delivery p99", s.delivery_p99_ms == null ? "–" : `${s.delivery_p99_ms.toFixed(1)} ms`],
       ["last error", s.last_error || agent.error || "–"]]
    : [["last error", agent.error || "–"]];
  rows.push(["CPU", pct(agent.cpu_busy)], ["disk", pct(agent.disk_util)], ["NIC", pct(agent.nic_util)]);
  div.innerHTML = `<h3></h3><p class="url"></p><span class="badge ${state}">${state}</span><dl></dl>`;
  div.querySelector("h3").textContent = `${agent.role === "generator" ? "generator" : "broker host"} ${agent.host}`;
  div.querySelector(".url").textContent = agent.url;
  const dl = div.querySelector("dl");
  for (const [k, v] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dd.dataset.field = k;
    dl.append(dt, dd);
  }
  if (agent.role === "generator") {
    const buttons = document.createElement("div");
    buttons.className = "row";
    buttons.innerHTML = '<button class="go">Start</button><input type="number" min="1" placeholder="msg/s"><button>Set rate</button><button class="stop">Stop</button>';
    const [startButton, input, rateButton, stopButton] = buttons.children;
    input.id = `rate-${agent.host}`;
    startButton.onclick = () => start([agent.url]);
    rateButton.onclick = () => setRate([agent.url], input.id);
    stopButton.onclick = () => stop([agent.url]);
    div.appendChild(buttons);
  }
  return div;
}

async function refresh() {
  try {
    const state = await (await fetch("/api/state")).json();
    if (!formLoaded) {
      fillSettings(state.form);
      formLoaded = true;
    }
    const cards = $("cards");
    // Keep typed per-agent rates across refreshes.
    const typed = {};
    cards.querySelectorAll("input").forEach((i) => { typed[i.id] = i.value; });
    cards.replaceChildren(...state.agents.map(card));
    cards.querySelectorAll("input").forEach((i) => { if (typed[i.id]) i.value = typed[i.id]; });
    const totals = state.totals || [0, 0, 0];
    $("total-target").textContent = num(totals[1]);
    $("total-achieved").textContent = num(totals[2]);
    $("total-achieved").dataset.value = totals[2];
    $("prometheus-rate").textContent = state.prometheus
      ? (state.prometheus.error ? ` · Prometheus: ${state.prometheus.error}` : ` · cluster (Prometheus): ${num(state.prometheus.rate)} msg/s`)
      : "";
    const ramp = state.ramp;
    $("ramp-status").textContent = ramp
      ? `ramp ${ramp.stopped ? "stopped" : ramp.holding ? "holding at max" : "running"}: step ${ramp.step_index + 1} of ${ramp.targets.length}, ${num(ramp.targets[ramp.step_index])} msg/s per generator`
      : "";
    // Charts are images (an SVG in an <img> runs nothing), reloaded with each refresh.
    for (const box of document.querySelectorAll(".chart")) {
      const img = box.querySelector("img") || box.appendChild(document.createElement("img"));
      img.alt = `${box.dataset.chart} chart`;
      img.src = `/api/chart/${box.dataset.chart}.svg?t=${Date.now()}`;
      box.dataset.updated = Date.now();
    }
  } catch (error) {
    show(`cannot reach the controller: ${error}`, false);
  }
}

refresh();
setInterval(refresh, 1000);
