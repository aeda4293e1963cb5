// Small helpers shared by the console's modules: DOM and SVG builders, JSON fetch, texts as the CLI prints them.
export const SVG_NS = "http://www.w3.org/2000/svg";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  return fill(node, attrs, children);
}

export function sv(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  return fill(node, attrs, children);
}

function fill(node, attrs, children) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = String(v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// The control API's bearer token, when the daemon has one (api.token): asked for once, kept for this tab.
export function authHeaders() {
  const token = sessionStorage.getItem("drgToken");
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export function unauthorized(response) {
  if (response.status !== 401) return false;
  document.dispatchEvent(new CustomEvent("drg-unauthorized"));
  return true;
}

export async function getJSON(path) {
  const response = await fetch(path, { headers: { Accept: "application/json", ...authHeaders() } });
  unauthorized(response);
  const doc = await response.json();
  if (!response.ok) throw new Error(doc.error || `${response.status} ${response.statusText}`);
  return doc;
}

export function asPathText(path) {  // render.as_path_text
  if (!path || !path.length) return "-";
  return path.map((hop) => (Array.isArray(hop) ? `{${hop.join(",")}}` : String(hop))).join(" ");
}

export function ruleStatus(rule) {  // render.rule_status
  if (rule.isBlackhole) return "BLACKHOLE";
  if (rule.isConflict) return "conflict";
  if (rule.isEcmp) return "active (ECMP)";
  return "active";
}

export function uptime(seconds) {  // render._uptime
  if (typeof seconds !== "number") return "-";
  const s = Math.floor(seconds);
  const two = (n) => String(n).padStart(2, "0");
  return s >= 3600 ? `${Math.floor(s / 3600)}h${two(Math.floor((s % 3600) / 60))}m${two(s % 60)}s`
    : `${Math.floor(s / 60)}m${two(s % 60)}s`;
}

export function table(headers, rows, cellClass = () => null) {
  return el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, rows.map((row, r) => el("tr", {}, row.map((c, i) =>
      el("td", { class: cellClass(r, i), text: c === null || c === undefined ? "-" : c }))))));
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
