// Sessions as ``drg sessions`` shows them, with each session's advertised routes (``drg advertised``)
// and received routes (what its attachment offers for import, ``drg offered``) on demand.
import { asPathText, el, getJSON, table, uptime } from "./util.js";

let shown = null;  // {kind, session, attachment, drg} of the detail panel, refreshed on events

export function renderSessions(doc) {
  const multi = doc.sessions.some((s) => "drg" in s);
  const headers = [...(multi ? ["DRG"] : []), "Session", "Neighbor", "Peer AS", "State", "Uptime", "Rcvd", "Adv",
    "Tunnel", "Why down / last error", "Routes"];
  document.querySelector("#session-table thead").replaceChildren(el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h }))));
  const rows = doc.sessions.map((s) => {
    const name = s.session || s.attachment;
    const ok = s.state === "Established";
    const why = [s.downReason, s.lastError].filter(Boolean).join("; ");
    return el("tr", { "data-session": name },
      ...(multi ? [el("td", { text: s.drg })] : []),
      el("td", { text: name }), el("td", { text: s.neighbor }), el("td", { text: s.peerAsn }),
      el("td", { class: ok ? "st-ok" : "st-bad", text: s.state }), el("td", { text: uptime(s.uptimeSeconds) }),
      el("td", { text: s.prefixesReceived }), el("td", { text: s.prefixesAdvertised }),
      el("td", { class: s.tunnel ? (s.tunnel === "UP" ? "st-ok" : "st-bad") : null, text: s.tunnel || "" }),
      el("td", { text: why }),
      el("td", {},
        el("button", { type: "button", text: "Advertised", onclick: () => showAdvertised(name, s.drg) }), " ",
        el("button", { type: "button", text: "Received", onclick: () => showReceived(s.attachment, s.drg) })));
  });
  document.querySelector("#session-table tbody").replaceChildren(...rows);
}

function q(drg) {
  return drg ? `?drg=${encodeURIComponent(drg)}` : "";
}

export async function showAdvertised(session, drg) {
  shown = { kind: "advertised", name: session, drg };
  const box = document.getElementById("session-detail");
  try {
    const doc = await getJSON(`/v1/advertised/${encodeURIComponent(session)}${q(drg)}`);
    const would = doc.wouldAdvertise || [];
    const rows = doc.routes.map((r) => [r.prefix, asPathText(r.asPath), r.nextHop ?? r.provenance ?? "-"]);
    box.replaceChildren(el("h3", { text: `Advertised to ${session} (neighbor ${doc.neighbor || "-"}, session ${doc.state || "-"}): ${doc.routes.length} routes` }),
      would.length ? el("p", { class: "hint", text: `Not Established: nothing is sent; ${would.length} route(s) would be: ${would.slice(0, 8).map((r) => r.prefix).join(", ")}` }) : "",
      rows.length ? table(["Prefix", "AS path", "Next hop"], rows) : el("p", { text: "(none)" }));
  } catch (err) {
    box.replaceChildren(el("p", { class: "error", text: err.message }));
  }
}

export async function showReceived(attachment, drg) {
  shown = { kind: "received", name: attachment, drg };
  const box = document.getElementById("session-detail");
  try {
    const doc = await getJSON(`/v1/offered/${encodeURIComponent(attachment)}${q(drg)}`);
    const rows = doc.routes.map((r) => [r.prefix, r.provenance, asPathText(r.asPath), r.origin]);
    box.replaceChildren(el("h3", { text: `Received from ${attachment} (offered for import, uses ${doc.routeTable}): ${doc.routes.length} routes, imported by ${(doc.importedBy || []).join(", ") || "no table"}` }),
      rows.length ? table(["Prefix", "Provenance", "AS path", "Origin"], rows) : el("p", { text: "(none)" }));
  } catch (err) {
    box.replaceChildren(el("p", { class: "error", text: err.message }));
  }
}

export function refreshDetail() {
  if (!shown) return;
  if (shown.kind === "advertised") showAdvertised(shown.name, shown.drg);
  else showReceived(shown.name, shown.drg);
}
