// The topology: DRGs, their attachments by type, tunnels riding inside their virtual circuit, on-prem peers.
// Laid out in fixed columns from /v1/config (the effective configuration) and coloured from /v1/sessions.
import { sv } from "./util.js";

const X = { vcn: 16, attL: 186, drg: 410, attR: 566, edge: 806, peer: 1016 };
const W = { vcn: 150, att: 196, drg: 120, edge: 162, peer: 176 };
const H = { att: 60, lb: 42, gap: 28, top: 44 };
export const WIDTH = X.peer + W.peer + 16;
const TYPE_TAG = { VCN: "VCN", VIRTUAL_CIRCUIT: "VC", IPSEC_TUNNEL: "IPSec", LOOPBACK: "loopback",
  REMOTE_PEERING_CONNECTION: "RPC" };
const TYPE_WORDS = { VCN: "VCN attachment", VIRTUAL_CIRCUIT: "virtual circuit", IPSEC_TUNNEL: "IPSec tunnel",
  LOOPBACK: "loopback attachment", REMOTE_PEERING_CONNECTION: "remote peering connection" };

// The DRGs of a /v1/config document, each {name, config}.
export function drgsOf(doc) {
  return doc.drgs ? doc.drgs.map((d) => ({ name: d.drg, config: d.config })) : [{ name: doc.config.drg.name, config: doc.config }];
}

// Sessions by attachment (a dual-stack VC has two).
export function sessionsByAttachment(doc) {
  const out = new Map();
  for (const s of doc.sessions) {
    if (!out.has(s.attachment)) out.set(s.attachment, []);
    out.get(s.attachment).push(s);
  }
  return out;
}

function stateClass(sessions) {
  if (!sessions || !sessions.length) return "off";
  return sessions.every((s) => s.state === "Established") ? "ok" : "bad";
}

function sessionWords(sessions) {
  if (!sessions || !sessions.length) return null;
  if (sessions.length === 1) return `BGP ${sessions[0].state}`;
  return sessions.map((s) => `${s.session.endsWith(".ipv6") ? "v6" : "v4"} ${s.state}`).join(" · ");
}

// Rows of one DRG: left (VCN and RPC attachments), right (VCs with their tunnels and loopbacks, other tunnels).
function rowsOf(config) {
  const atts = config.attachments;
  const byName = new Map(atts.map((a) => [a.name, a]));
  const left = atts.filter((a) => a.type === "VCN" || a.type === "REMOTE_PEERING_CONNECTION");
  const right = [];
  const tunnels = atts.filter((a) => a.type === "IPSEC_TUNNEL");
  const placed = new Set();
  const addTunnel = (t) => {
    right.push({ att: t, h: H.att });
    placed.add(t.name);
    const lb = t.networkDetails.loopback && byName.get(t.networkDetails.loopback);
    if (lb) { right.push({ att: lb, h: H.lb }); placed.add(lb.name); }
  };
  for (const vc of atts.filter((a) => a.type === "VIRTUAL_CIRCUIT")) {
    right.push({ att: vc, h: H.att, riders: tunnels.filter((t) => t.networkDetails.transportAttachment === vc.name) });
    for (const t of right[right.length - 1].riders) addTunnel(t);
  }
  for (const t of tunnels) if (!placed.has(t.name)) addTunnel(t);
  for (const a of atts) if (a.type === "LOOPBACK" && !placed.has(a.name)) right.push({ att: a, h: H.lb });
  return { left, right };
}

// Node boxes of every DRG, stacked vertically: Map id -> {x, y, w, h, ...}; ids are attachment names,
// "drg:NAME", "vcn:DRG:VCN", "peer:SESSION", "rpcpeer:ATT".
export function layout(drgs) {
  const nodes = new Map();
  const panels = [];
  let top = 8;
  for (const d of drgs) {
    const { left, right } = rowsOf(d.config);
    let y = top + H.top;
    for (const a of left) {
      nodes.set(a.name, { x: X.attL, y, w: W.att, h: H.att, att: a, drg: d.name, side: "left" });
      const far = a.type === "VCN" ? `vcn:${d.name}:${a.networkDetails.vcn}` : `rpcpeer:${a.name}`;
      nodes.set(far, { x: X.vcn, y, w: W.vcn, h: H.att, kind: a.type === "VCN" ? "vcn" : "rpcpeer", att: a, drg: d.name });
      y += H.att + H.gap;
    }
    const leftBottom = y;
    y = top + H.top;
    for (const row of right) {
      nodes.set(row.att.name, { x: X.attR, y, w: W.att, h: row.h, att: row.att, drg: d.name, side: "right",
        riders: row.riders });
      for (const s of sessionsOf(row.att)) {
        const peerX = row.att.type === "VIRTUAL_CIRCUIT" ? X.edge : X.peer;
        const peerW = row.att.type === "VIRTUAL_CIRCUIT" ? W.edge : W.peer;
        const dy = s.ipv6 ? H.att / 2 : 0;
        nodes.set(`peer:${s.session}`, { x: peerX + dy / 3, y: y + dy, w: peerW, h: H.att, kind: "onprem", att: row.att,
          session: s.session, bgp: s.bgp, drg: d.name });
      }
      y += row.h + H.gap;
    }
    const bottom = Math.max(leftBottom, y, top + H.top + 120);
    const drgNode = { x: X.drg, y: top + H.top - 14, w: W.drg, h: bottom - top - H.top - H.gap + 28, kind: "drg",
      config: d.config, drg: d.name };
    nodes.set(`drg:${d.name}`, drgNode);
    panels.push({ drg: d.name, top, bottom: bottom + 6 });
    top = bottom + 30;
  }
  return { nodes, panels, height: top };
}

function sessionsOf(att) {
  if (!att.bgp) return [];
  const out = [{ session: att.name, bgp: att.bgp, ipv6: false }];
  if (att.bgp.ipv6) out.push({ session: att.bgp.ipv6.session, bgp: att.bgp.ipv6, ipv6: true });
  return out;
}

function tableLine(config, att) {
  const t = config.routeTables.find((r) => r.name === att.routeTable);
  const dist = t && t.importDistribution ? t.importDistribution : "no import";
  return `${att.routeTable} ← ${dist}`;
}

function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function attachmentNode(n, config, sessions) {
  const a = n.att;
  const mine = sessions.get(a.name) || [];
  const cls = a.bgp ? stateClass(mine) : "off";
  const tunnel = a.type === "IPSEC_TUNNEL" ? (mine[0] && mine[0].tunnel) || "DOWN" : null;
  const tunnelCls = tunnel === null ? null : tunnel === "UP" ? "ok" : "bad";
  let third = "";
  if (a.type === "VCN") third = `${a.networkDetails.vcn} · ${a.networkDetails.vcnRouteType}`;
  else if (a.type === "LOOPBACK") third = `headend ${a.networkDetails.oracleTunnelIp}`;
  else if (a.type === "REMOTE_PEERING_CONNECTION") third = a.networkDetails.peeringStatus;
  const words = sessionWords(mine) || (a.bgp ? "BGP (no session)" : "");
  const state = [words, tunnel ? `tunnel ${tunnel}` : null].filter(Boolean).join(" · ");
  const reasons = mine.flatMap((s) => [s.downReason && `tunnel down: ${s.downReason}`, s.lastError && `last error: ${s.lastError}`]).filter(Boolean);
  const label = [`${a.name}, ${TYPE_WORDS[a.type] || a.type}`, `route table ${tableLine(config, a).replace("←", "imports")}`,
    state || third, ...reasons].filter(Boolean).join("; ");
  const g = sv("g", { class: `node att ${a.type.toLowerCase()}`, transform: `translate(${n.x},${n.y})`, tabindex: 0,
    role: "button", "aria-label": label, "data-name": a.name, "data-type": a.type,
    "data-state": mine.length ? mine.map((s) => s.state).join(",") : null, "data-tunnel": tunnel });
  g.append(sv("title", { text: label }),
    sv("rect", { class: "box", width: n.w, height: n.h, rx: 5 }),
    sv("rect", { class: `stripe ${tunnelCls || cls}`, width: 6, height: n.h, rx: 2 }),
    sv("text", { x: 12, y: 16, class: "title", text: clip(a.name, 20) }),
    sv("text", { x: n.w - 8, y: 16, class: "small", "text-anchor": "end", text: TYPE_TAG[a.type] || a.type }),
    sv("text", { x: 12, y: 32, class: "small", text: clip(tableLine(config, a), 30) }));
  if (n.h > H.lb) {
    const cls3 = state ? (tunnelCls === "bad" ? "bad" : cls) : "off";
    g.append(sv("text", { x: 12, y: 50, class: `state ${cls3}`, text: clip(state || third, 32) }));
  }
  return g;
}

function onpremNode(n, onprem, sessions) {
  const mine = (sessions.get(n.att.name) || []).filter((s) => (s.session || s.attachment) === n.session);
  const entry = onprem.find((p) => p.session === n.session);
  const cls = stateClass(mine);
  const state = sessionWords(mine) || "BGP (no session)";
  const ip = n.bgp.customerIp.split("/")[0];
  const cpe = n.att.type === "IPSEC_TUNNEL" ? `CPE ${n.att.networkDetails.cpeIp} · ` : "";
  const line2 = n.att.type === "IPSEC_TUNNEL" ? `CPE ${n.att.networkDetails.cpeIp} · AS ${n.bgp.customerAsn}` : `AS ${n.bgp.customerAsn} · ${ip}`;
  const label = `on-prem ${entry ? entry.name : "peer"} of ${n.session}: ${cpe}AS ${n.bgp.customerAsn}, ${ip}; ${state}` +
    mine.filter((s) => s.lastError).map((s) => `; last error: ${s.lastError}`).join("");
  return sv("g", { class: "node onprem", transform: `translate(${n.x},${n.y})`, tabindex: 0, role: "img",
    "aria-label": label, "data-session": n.session, "data-state": mine.map((s) => s.state).join(",") || null },
  sv("title", { text: label }),
  sv("rect", { class: "box", width: n.w, height: n.h, rx: 5 }),
  sv("rect", { class: `stripe ${cls}`, width: 6, height: n.h, rx: 2 }),
  sv("text", { x: 12, y: 16, class: "title", text: clip(entry ? entry.name : "on-prem peer", 22) }),
  sv("text", { x: 12, y: 32, class: "small", text: clip(line2, 30) }),
  sv("text", { x: 12, y: 50, class: `state ${cls}`, text: clip(state, 30) }));
}

function farNode(n) {
  const a = n.att;
  let lines;
  if (n.kind === "vcn") {
    const vcn = (n.vcn || {});
    lines = [a.networkDetails.vcn, (vcn.cidrs || []).join(", "), `${(vcn.subnets || []).length} subnet(s)`];
  } else {
    const p = a.networkDetails.peer;
    lines = ["peer DRG", p === "external" ? "external" : `${p.drg} / ${p.attachment}`, a.networkDetails.peeringStatus];
  }
  return sv("g", { class: `node ${n.kind}`, transform: `translate(${n.x},${n.y})`, role: "img",
    "aria-label": lines.join(", ") },
  sv("rect", { class: "box", width: n.w, height: n.h, rx: 5 }),
  sv("text", { x: 10, y: 16, class: "title", text: clip(lines[0], 20) }),
  sv("text", { x: 10, y: 32, class: "small", text: clip(lines[1], 24) }),
  sv("text", { x: 10, y: 50, class: "small", text: clip(lines[2], 24) }));
}

function drgNode(n) {
  const c = n.config.drg;
  return sv("g", { class: "node drg", transform: `translate(${n.x},${n.y})`, role: "img",
    "aria-label": `DRG ${c.name}, AS ${c.asn}`, "data-drg": c.name },
  sv("rect", { class: "box", width: n.w, height: n.h, rx: 8 }),
  sv("text", { x: n.w / 2, y: n.h - 44, class: "title", "text-anchor": "middle", text: "DRG" }),
  sv("text", { x: n.w / 2, y: n.h - 28, class: "title", "text-anchor": "middle", text: clip(c.name, 14) }),
  sv("text", { x: n.w / 2, y: n.h - 12, class: "small", "text-anchor": "middle", text: `AS ${c.asn}` }));
}

function links(nodes, sessions) {
  const out = [];
  for (const [id, n] of nodes) {
    if (!n.att || n.kind) continue;
    const drg = nodes.get(`drg:${n.drg}`);
    const cy = n.y + n.h / 2;
    if (n.side === "left") {
      out.push(sv("path", { class: "link", d: `M${n.x + n.w},${cy} H${drg.x}` }));
      out.push(sv("path", { class: "link", d: `M${X.vcn + W.vcn},${cy} H${n.x}` }));
    } else {
      out.push(sv("path", { class: "link", d: `M${drg.x + drg.w},${cy} H${n.x}` }));
    }
    if (n.riders) out.push(...band(n, nodes, sessions));
    else if (n.att.type === "IPSEC_TUNNEL" && !n.att.networkDetails.transportAttachment) {
      const peer = nodes.get(`peer:${n.att.name}`);
      if (peer) out.push(lane(n, `M${n.x + n.w},${cy} H${peer.x}`, sessions));
    }
    void id;
  }
  for (const n of nodes.values()) {  // RPC pairs of this daemon: a dashed arc on the far left
    const p = n.kind === "rpcpeer" ? n.att.networkDetails.peer : null;
    const other = p && p !== "external" ? nodes.get(p.attachment) : null;
    if (other && n.att.name < p.attachment) {
      const y1 = n.y + n.h / 2;
      const y2 = other.y + other.h / 2;
      out.push(sv("path", { class: "link rpc", d: `M${X.vcn},${y1} C${X.vcn - 12},${y1} ${X.vcn - 12},${y2} ${X.vcn},${y2}` },
        sv("title", { text: `RPC ${n.att.name} ↔ ${p.attachment} (${n.att.networkDetails.peeringStatus})` })));
    }
  }
  return out;
}

// A VC drawn as a band from its attachment to the CPE side, its tunnels as lanes inside it.
function band(vc, nodes, sessions) {
  const riders = vc.riders;
  const cy = vc.y + vc.h / 2;
  const bh = 16 + 12 * riders.length;
  const x1 = vc.x + vc.w;
  const mode = vc.att.networkDetails.transportOnlyMode ? "IPSec traffic only" : "all traffic";
  const out = [sv("rect", { class: "band", x: x1, y: cy - bh / 2, width: X.peer - x1 - 6, height: bh, rx: bh / 2 },
    sv("title", { text: `virtual circuit ${vc.att.name} (${mode}) carrying ${riders.length} tunnel(s)` })),
  sv("text", { x: X.edge + W.edge + 6, y: cy - bh / 2 - 4, class: "small", text: `${vc.att.name}: ${mode}` })];
  riders.forEach((t, i) => {
    const tn = nodes.get(t.name);
    const peer = nodes.get(`peer:${t.name}`);
    const ly = cy - bh / 2 + 14 + 12 * i;
    const ty = tn.y + tn.h / 2;
    const py = peer ? peer.y + peer.h / 2 : ty;
    const d = `M${x1},${ty} C${x1 + 24},${ty} ${x1 + 8},${ly} ${x1 + 36},${ly} H${X.peer - 40} ` +
      `C${X.peer - 16},${ly} ${X.peer - 24},${py} ${X.peer},${py}`;
    out.push(lane(tn, d, sessions));
  });
  return out;
}

function lane(tn, d, sessions) {
  const s = (sessions.get(tn.att.name) || [])[0];
  const up = s && s.tunnel === "UP";
  const label = `tunnel ${tn.att.name} ${tn.att.networkDetails.oracleTunnelIp} ↔ CPE ${tn.att.networkDetails.cpeIp}: ` +
    (up ? "UP" : `DOWN${s && s.downReason ? ` (${s.downReason})` : ""}`);
  return sv("path", { class: `lane ${up ? "ok" : "bad"}`, d, "data-tunnel-lane": tn.att.name },
    sv("title", { text: label }));
}

// The whole picture: returns the <svg> and the node map (for the trace overlay).
export function drawTopology(drgs, sessionsDoc) {
  const sessions = sessionsByAttachment(sessionsDoc);
  const { nodes, panels, height } = layout(drgs);
  for (const n of nodes.values()) {
    if (n.kind === "vcn") n.vcn = drgs.find((d) => d.name === n.drg).config.vcns.find((v) => v.name === n.att.networkDetails.vcn);
  }
  const svg = sv("svg", { id: "topo-svg", width: WIDTH, height, viewBox: `0 0 ${WIDTH} ${height}`, role: "group",
    "aria-label": `Topology of ${drgs.map((d) => `DRG ${d.name}`).join(", ")}` });
  for (const p of panels) {
    svg.append(sv("text", { x: X.vcn, y: p.top + 14, class: "small", text: `DRG ${p.drg}` }));
  }
  const layer = sv("g", { class: "links" }, links(nodes, sessions));
  const boxes = sv("g", { class: "nodes" });
  for (const n of nodes.values()) {
    const config = drgs.find((d) => d.name === n.drg).config;
    if (n.kind === "drg") boxes.append(drgNode(n));
    else if (n.kind === "onprem") boxes.append(onpremNode(n, config.onprem || [], sessions));
    else if (n.kind) boxes.append(farNode(n));
    else boxes.append(attachmentNode(n, config, sessions));
  }
  svg.append(layer, boxes, sv("g", { id: "walk-layer" }));
  return { svg, nodes };
}
