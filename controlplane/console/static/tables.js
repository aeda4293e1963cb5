// Route tables as ``drg routes`` shows them, one server-side page at a time (/console/api/routes):
// a 100,000-rule table never becomes one giant DOM. Filter by prefix (CIDR, address or leading text).
import { asPathText, debounce, el, getJSON, ruleStatus } from "./util.js";

const PAGE = 100;
const state = { drg: null, table: null, filter: "", offset: 0, doc: null, retry: null };

function statusClass(status) {
  if (status === "conflict") return "st-conflict";
  if (status === "BLACKHOLE") return "st-bad";
  if (status.includes("ECMP")) return "st-ecmp";
  return "st-ok";
}

function render(doc) {
  const rpc = doc.rules.some((r) => "networkDistance" in r);
  const headers = ["Destination", "Next hop", "Type", "Provenance", "AS path", ...(rpc ? ["Dist", "DRG path"] : []), "Status"];
  const thead = document.querySelector("#rules thead");
  thead.replaceChildren(el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h }))));
  const rows = doc.rules.map((r) => {
    const status = ruleStatus(r);
    return el("tr", {},
      el("td", { text: r.destination }), el("td", { text: r.nextHop }), el("td", { text: r.routeType }),
      el("td", { text: r.routeProvenance }), el("td", { text: asPathText(r.asPath) }),
      ...(rpc ? [el("td", { text: r.networkDistance ?? 0 }), el("td", { text: (r.drgPath || []).join(" ") || "-" })] : []),
      el("td", { class: statusClass(status), text: status }));
  });
  document.querySelector("#rules tbody").replaceChildren(...rows);
  const t = doc.table;
  const first = doc.matched ? doc.offset + 1 : 0;
  const last = doc.offset + doc.rules.length;
  const fmt = (n) => n.toLocaleString("en-US");
  const filtered = doc.filter ? ` matching “${doc.filter}” (of ${fmt(doc.total)})` : "";
  document.getElementById("table-count").textContent = `Rules ${fmt(first)} to ${fmt(last)} of ${fmt(doc.matched)}${filtered}`;
  document.getElementById("table-head").textContent = `${t.drg ? `DRG ${t.drg}: ` : ""}Route table ${t.name} ` +
    `(import: ${t.importDistribution || "none"}, ECMP ${t.isEcmpEnabled ? "on" : "off"}, used by: ${(t.attachments || []).join(", ") || "none"})`;
  document.getElementById("page-prev").disabled = doc.offset === 0;
  document.getElementById("page-next").disabled = last >= doc.matched;
}

export async function loadPage() {
  if (!state.table) return;
  const q = new URLSearchParams({ table: state.table, filter: state.filter, offset: state.offset, limit: PAGE });
  if (state.drg) q.set("drg", state.drg);
  try {
    state.doc = await getJSON(`/console/api/routes?${q}`);
    render(state.doc);
    clearTimeout(state.retry);
    if (!state.doc.fresh) state.retry = setTimeout(loadPage, state.doc.retryAfterMs + 50);  // the daemon was busy
  } catch (err) {
    document.getElementById("table-count").textContent = `error: ${err.message}`;
  }
}

export function currentTable() {
  return state.table;
}

export function selectTable(drg, name) {
  const select = document.getElementById("table-select");
  select.value = JSON.stringify([drg, name]);
  state.drg = drg;
  state.table = name;
  state.offset = 0;
  return loadPage();
}

// Fill the table list from the DRGs' configurations and wire the controls (once).
export function setupTables(drgs, multi) {
  const select = document.getElementById("table-select");
  const previous = select.value;
  select.replaceChildren(...drgs.map((d) => {
    const options = d.config.routeTables.map((t) => el("option", { value: JSON.stringify([multi ? d.name : null, t.name]),
      text: `${t.name}${t.system ? " (system)" : ""}` }));
    return multi ? el("optgroup", { label: `DRG ${d.name}` }, options) : options;
  }).flat());
  if (previous && [...select.options].some((o) => o.value === previous)) select.value = previous;
  if (select.dataset.wired) return;
  select.dataset.wired = "1";
  select.addEventListener("change", () => {
    const [drg, name] = JSON.parse(select.value);
    selectTable(drg, name);
  });
  const filter = document.getElementById("table-filter");
  filter.addEventListener("input", debounce(() => {
    state.filter = filter.value.trim();
    state.offset = 0;
    loadPage();
  }, 250));
  document.getElementById("page-prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE);
    loadPage();
  });
  document.getElementById("page-next").addEventListener("click", () => {
    state.offset += PAGE;
    loadPage();
  });
  const first = drgs[0].config.attachments.find((a) => !a.system);
  selectTable(multi ? drgs[0].name : null, first ? first.routeTable : drgs[0].config.routeTables[0].name);
}
