// plateau controller: polls /api/state and the chart SVGs every second and sends the
// buttons' requests with the page's CSRF token. No framework, no build step.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);

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

// Each settings input is named by its path in the form (`events.temperature.0`). The form
// sent is the one loaded with the page, with every input written over it; numbers stay
// numbers (an empty or malformed one becomes null, which the server refuses with a message).
let loadedForm = null;
const path = (name) => name.split(".").map((key) => (/^\d+$/.test(key) ? Number(key) : key));

function settings() {
  const form = structuredClone(loadedForm);
  for (const input of $("settings-form").elements) {
    if (!input.name) continue;
    const keys = path(input.name);
    const last = keys.pop();
    const holder = keys.reduce((object, key) => object[key], form);
    const text = input.value;
    holder[last] = input.type === "number" ? (text.trim() === "" ? null : Number(text)) : text;
  }
  return form;
}

function fillSettings(form) {
  loadedForm = form;
  for (const input of $("settings-form").elements) {
    if (input.name) input.value = path(input.name).reduce((object, key) => object[key], form);
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
  const p = (agent.role === "consumer" ? agent.consume : agent.produce) || { stats: {} };
  const s = p.stats || {};
  const state = !agent.reachable ? "unreachable" : p.running ? "running" : "idle";
  const ms = (v) => (v == null ? "–" : `${v.toFixed(1)} ms`);
  const rows = agent.role === "generator"
    ? [["topic", p.topic || "–"], ["target", `${num(p.target_rate_mps)} msg/s`],
       ["current", `${num(s.current_rate_mps)} msg/s`], ["sent ok / err", `${num(s.sent_ok)} / ${num(s.sent_err)}`],
       ["bytes", num(s.bytes_sent)], ["delivery p99", ms(s.delivery_p99_ms)],
       ["last error", s.last_error || agent.error || "–"]]
    : agent.role === "consumer"
    ? [["topic", p.topic || "–"], ["members", num(p.members)], ["current", `${num(s.current_rate_mps)} msg/s`],
       ["consumed", num(s.consumed)], ["lag", num(s.lag)], ["end-to-end avg", ms(s.e2e_avg_ms)],
       ["end-to-end p99", ms(s.e2e_p99_ms)], ["last error", s.last_error || agent.error || "–"]]
    : [["last error", agent.error || "–"]];
  rows.push(["CPU", pct(agent.cpu_busy)], ["disk", pct(agent.disk_util)], ["NIC", pct(agent.nic_util)]);
  div.innerHTML = `<h3></h3><p class="url"></p><span class="badge ${state}">${state}</span><dl></dl>`;
  const roleName = { generator: "generator", consumer: "consumer host" }[agent.role] || "broker host";
  div.querySelector("h3").textContent = `${roleName} ${agent.host}`;
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
    if (!loadedForm) fillSettings(state.form);
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
