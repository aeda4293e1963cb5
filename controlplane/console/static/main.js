// The console's entry point: loads the configuration and sessions, draws them, and follows the event
// bus (/console/events, server-sent events) so the picture changes without a reload.
import { debounce, el, getJSON } from "./util.js";
import { follow } from "./stream.js";
import { drawTopology, drgsOf } from "./topology.js";
import { drawWalk, presets, walkTable } from "./trace.js";
import { currentTable, loadPage, selectTable, setupTables } from "./tables.js";
import { refreshDetail, renderSessions, showReceived } from "./sessions.js";

const MAX_EVENTS = 200;
const app = { drgs: [], multi: false, sessions: { sessions: [] }, nodes: null, svg: null, walk: null, selected: null };

function draw() {
  const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("#topo g[data-name], #topo g[data-session]");
  const { svg, nodes } = drawTopology(app.drgs, app.sessions);
  app.svg = svg;
  app.nodes = nodes;
  for (const g of svg.querySelectorAll("g.att")) {
    const open = () => select(g.dataset.name);
    g.addEventListener("click", open);
    g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
    if (g.dataset.name === app.selected) g.classList.add("selected");
  }
  document.getElementById("topo").replaceChildren(svg);
  drawWalk(svg, nodes, app.walk && app.walk.doc, app.walk && app.walk.drg);
  if (focused) {  // a redraw keeps the keyboard where it was
    const key = focused.dataset.name ? `g.att[data-name="${focused.dataset.name}"]` : `g.onprem[data-session="${focused.dataset.session}"]`;
    const again = svg.querySelector(key);
    if (again) again.focus();
  }
}

function select(name) {
  app.selected = name;
  for (const g of app.svg.querySelectorAll("g.att")) g.classList.toggle("selected", g.dataset.name === name);
  const n = app.nodes.get(name);
  const a = n.att;
  const config = app.drgs.find((d) => d.name === n.drg).config;
  const t = config.routeTables.find((r) => r.name === a.routeTable);
  const drg = app.multi ? n.drg : null;
  const mine = app.sessions.sessions.filter((s) => s.attachment === name);
  document.getElementById("detail").replaceChildren(
    el("h3", { text: `${a.name} (${a.type})` }),
    el("p", { text: `Route table ${a.routeTable}, importing ${t && t.importDistribution ? t.importDistribution : "nothing"}` +
      `${t ? `; ECMP ${t.isEcmpEnabled ? "on" : "off"}` : ""}. Exports with ${a.exportDistribution || "no export distribution"}.` }),
    ...mine.map((s) => el("p", { text: `Session ${s.session}: ${s.state}${s.tunnel ? `, tunnel ${s.tunnel}` : ""}` +
      `${s.downReason ? ` (${s.downReason})` : ""}${s.lastError ? `; last error: ${s.lastError}` : ""}` })),
    el("button", { type: "button", text: `Show route table ${a.routeTable}`, onclick: () => {
      selectTable(drg, a.routeTable);
      document.getElementById("tables").scrollIntoView();
    } }), " ",
    el("button", { type: "button", text: "Show received routes", onclick: () => {
      showReceived(a.name, drg);
      document.getElementById("sessions").scrollIntoView();
    } }));
}

async function loadConfig() {
  const doc = await getJSON("/v1/config");
  app.multi = Boolean(doc.drgs);
  app.drgs = drgsOf(doc);
  document.getElementById("title").textContent = `DRG console: ${app.drgs.map((d) => d.name).join(", ")}`;
  document.title = `DRG ${app.drgs.map((d) => d.name).join(", ")}`;
  const origins = document.getElementById("trace-origins");
  origins.replaceChildren(...app.drgs.flatMap((d) => [...d.config.attachments.map((a) => a.name), ...d.config.vcns.map((v) => v.name)])
    .map((name) => el("option", { value: name })));
  const box = document.getElementById("trace-presets");
  box.replaceChildren(...presets(app.drgs).map((p) => el("button", { type: "button", text: p.label, onclick: () => runPreset(p.q) })));
  setupTables(app.drgs, app.multi);
}

async function loadSessions() {
  app.sessions = await getJSON("/v1/sessions");
  renderSessions(app.sessions);
}

function runPreset(q) {
  const form = document.getElementById("trace-form");
  for (const name of ["from", "src", "dst", "inner_src", "inner_dst"]) form.elements[name].value = q[name] || "";
  trace();
}

async function trace() {
  const form = document.getElementById("trace-form");
  const q = new URLSearchParams();
  for (const name of ["from", "src", "dst", "inner_src", "inner_dst"]) {
    const v = form.elements[name].value.trim();
    if (v) q.set(name, v);
  }
  const out = document.getElementById("trace-result");
  try {
    const doc = await getJSON(`/v1/trace?${q}`);
    app.walk = { doc, drg: app.drgs[0].name };
    drawWalk(app.svg, app.nodes, doc, app.drgs[0].name);
    out.replaceChildren(walkTable(doc));
    document.getElementById("topology").scrollIntoView();
  } catch (err) {
    out.replaceChildren(el("p", { class: "error", text: `trace: ${err.message}` }));
  }
}

function logEvent(ev) {
  const list = document.getElementById("event-log");
  const time = new Date(ev.time * 1000).toLocaleTimeString("en-GB", { hour12: false });
  const bad = /down|rejected|notification|prefix-limit|warning/.test(ev.type) || /-> (Idle|Active|Connect)\b/.test(ev.data.summary || "");
  const subject = ev.subject ? ` ${ev.drg ? `${ev.drg}/` : ""}${ev.subject}` : (ev.drg ? ` ${ev.drg}` : "");
  list.prepend(el("li", { "data-type": ev.type },
    `${time} `, el("span", { class: `type${bad ? " bad" : ""}`, text: ev.type }), `${subject}: ${ev.data.summary ?? ""}`));
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
}

const refresh = {
  sessions: debounce(async () => { await loadSessions(); draw(); refreshDetail(); }, 60),
  config: debounce(async () => { await loadConfig(); await loadSessions(); draw(); }, 60),
  table: debounce(() => loadPage(), 300),
};

function onEvent(type, ev) {
  const live = document.getElementById("live");
  if (type === "backlog") logEvent(ev);
  else if (type === "live") {
    live.dataset.state = "live";
    live.textContent = "live: following the event bus";
    refresh.sessions();
  } else {
    logEvent(ev);
    if (ev.type === "config-applied") refresh.config();
    else refresh.sessions();
    if (ev.type === "route-table-change" && (!currentTable() || ev.subject === currentTable())) refresh.table();
  }
}

function lost() {
  const live = document.getElementById("live");
  live.dataset.state = "down";
  live.textContent = "disconnected: retrying";
  document.getElementById("event-log").replaceChildren();  // the backlog comes again on reconnect
}

function askToken() {
  const form = document.getElementById("token-form");
  if (!form.hidden) return;
  form.hidden = false;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("drgToken", document.getElementById("token-input").value.trim());
    location.reload();
  });
  document.getElementById("token-input").focus();
}

async function main() {
  document.addEventListener("drg-unauthorized", askToken);
  try {
    await loadConfig();
    await loadSessions();
    draw();
  } catch (err) {
    document.getElementById("topo").replaceChildren(el("p", { class: "error", text: `cannot load: ${err.message}` }));
  }
  document.getElementById("trace-form").addEventListener("submit", (e) => { e.preventDefault(); trace(); });
  follow(onEvent, lost);
  document.body.dataset.ready = "1";
}

main();
