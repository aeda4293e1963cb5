// The packet walk: /v1/trace drawn hop by hop over the topology, with ENCRYPT/DECRYPT, the ESP outer
// header where it is added or seen, and the drop reason where the walk stops; the hops also as a table.
import { el, sv, table } from "./util.js";

function hostOf(cidr, n = 10) {
  const [ip, len] = cidr.split("/");
  if (ip.includes(":")) return ip.replace(/::$/, "::a");
  const parts = ip.split(".").map(Number);
  const size = 2 ** (32 - Number(len ?? 32));
  parts[3] += size > 16 ? n : (size > 2 ? 1 : 0);
  return parts.join(".");
}

// The two walks of the seed, from the configuration: VCN -> on-prem through a tunnel, and back (ESP over the VC).
export function presets(drgs) {
  const out = [];
  const c = drgs[0].config;
  const vcnAtt = c.attachments.find((a) => a.type === "VCN");
  const vcn = vcnAtt && c.vcns.find((v) => v.name === vcnAtt.networkDetails.vcn);
  const subnet = vcn && vcn.subnets.length ? (typeof vcn.subnets[0] === "string" ? vcn.subnets[0] : vcn.subnets[0].cidr) : null;
  const tunnel = c.attachments.find((a) => a.type === "IPSEC_TUNNEL" && a.networkDetails.transportAttachment);
  const tunnelSessions = new Set(c.attachments.filter((a) => a.type === "IPSEC_TUNNEL").map((a) => a.name));
  const announced = (c.onprem || []).filter((p) => tunnelSessions.has(p.session)).flatMap((p) => p.announce.map((r) => r.prefix));
  const onprem = announced.find((p) => !p.endsWith("/32")) || "172.20.10.0/24";
  if (vcnAtt && subnet) {
    out.push({ label: "Outbound walk (VCN to on-prem)", q: { from: vcnAtt.name, src: hostOf(subnet), dst: hostOf(onprem) } });
  }
  if (tunnel && subnet) {
    const nd = tunnel.networkDetails;
    out.push({ label: "Return walk (ESP over the VC)", q: { from: nd.transportAttachment, src: nd.cpeIp, dst: nd.oracleTunnelIp,
      inner_src: hostOf(onprem), inner_dst: hostOf(subnet) } });
  }
  return out;
}

function nodeOf(nodes, hop, drg) {
  if (hop.kind === "VCN" || hop.kind === "APPLIANCE") return nodes.get(`vcn:${hop.drg || drg}:${hop.vcn}`) || nodes.get(hop.attachment);
  return nodes.get(hop.attachment);
}

const cy = (n) => n.y + n.h / 2;
// The side of a box that faces the DRG (port) and the side that faces the VCN or on-prem (far).
const port = (n) => (n.side === "left" || n.kind === "vcn" || n.kind === "rpcpeer" ? [n.x + n.w, cy(n)] : [n.x, cy(n)]);
const far = (n) => (n.side === "left" ? [n.x, cy(n)] : [n.x + n.w, cy(n)]);
const pt = ([x, y]) => `${x},${y}`;

function espText(hop) {
  return `ESP ${hop.outerSrc} → ${hop.outerDst}`;
}

function tag(x, y, text, cls) {
  const w = Math.max(60, text.length * 7.1 + 14);
  return [sv("g", { class: `tag ${cls}`, transform: `translate(${x},${y})` },
    sv("rect", { width: w, height: 18, rx: 4 }), sv("text", { x: 7, y: 13, text })), w];
}

function tagsOf(hop, prev, i, doc, last) {
  const out = [];
  if (hop.action === "ENCRYPT") out.push([`${i + 1}. ENCRYPT: ${espText(hop)}`, "esp"]);
  else if (hop.action === "DECRYPT") out.push([`${i + 1}. DECRYPT: ESP removed${prev && prev.encrypted ? ` (${prev.outerSrc} → ${prev.outerDst})` : ""}`, "crypt"]);
  else if (hop.encrypted && (!prev || !prev.encrypted)) out.push([`${i + 1}. ${espText(hop)}`, "esp"]);
  if (last && doc.result !== "DELIVERED") {
    const code = doc.reasonCode ? ` (${doc.reasonCode})` : "";
    out.push([`${doc.result}${code}: ${doc.reason || ""}`, doc.result === "DROPPED" ? "drop" : "crypt"]);
  } else if (last && hop.action === "EXIT") {
    out.push([`EXIT to on-prem${hop.encrypted ? ` as ${espText(hop)}` : ""}`, hop.encrypted ? "esp" : "crypt"]);
  } else if (last && hop.action === "DELIVER") {
    out.push([`DELIVERED in ${hop.vcn || hop.attachment}`, "crypt"]);
  }
  return out;
}

// Where the packet came from before its first hop: the VCN of a VCN attachment, the on-prem peer of a VC or tunnel.
function origin(nodes, first) {
  if (!first.node || first.hop.kind !== "DRG") return null;
  const n = first.node;
  if (n.side === "left") return [...nodes.values()].find((m) => (m.kind === "vcn" || m.kind === "rpcpeer") && m.att === n.att) || null;
  return nodes.get(`peer:${n.att.name}`) || null;
}

// The segment from hop a to hop b: through the DRG (an x of its own per segment) between two attachments,
// straight between an attachment and its VCN.
function segment(nodes, a, b, i) {
  const drgNode = nodes.get(`drg:${a.hop.drg || a.node.drg}`);
  if (a.hop.kind === "DRG" && b.hop.kind === "DRG" && drgNode && a.node.att && b.node.att && !a.node.kind && !b.node.kind) {
    const x = drgNode.x + 18 + ((i * 16) % (drgNode.w - 36));
    const [p, q] = [port(a.node), port(b.node)];
    return { d: `M${pt(p)} H${x} V${q[1]} H${q[0]}`, end: q };
  }
  const via = b.hop.kind !== "DRG" && b.hop.attachment ? nodes.get(b.hop.attachment) : null;
  if (a.hop.kind === "DRG" && via && via !== a.node && drgNode && !a.node.kind) {  // out of the DRG on a VCN attachment
    const x = drgNode.x + 18 + ((i * 16) % (drgNode.w - 36));
    const [p, q] = [port(a.node), port(via)];
    const to = port(b.node);
    return { d: `M${pt(p)} H${x} V${q[1]} H${q[0]} M${pt(far(via))} L${pt(to)}`, end: to };
  }
  const from = a.node.kind ? port(a.node) : far(a.node);
  const to = b.node.kind ? port(b.node) : far(b.node);
  return { d: `M${pt(from)} L${pt(to)}`, end: to };
}

// Draw ``doc`` (a /v1/trace document) into the topology's walk layer.
export function drawWalk(svg, nodes, doc, drg) {
  const layer = svg.querySelector("#walk-layer");
  layer.replaceChildren();
  if (!doc) return;
  const hops = doc.hops.map((h) => ({ hop: h, node: nodeOf(nodes, h, drg) })).filter((h) => h.node);
  const segs = sv("g", { class: "segments" });
  const marks = sv("g", { class: "marks" });
  const tags = sv("g", { class: "tags" });
  const entries = [];
  const start = hops.length ? origin(nodes, hops[0]) : null;
  if (start) {
    const to = far(hops[0].node);
    segs.append(sv("path", { class: `walk${hops[0].hop.encrypted ? " esp" : ""}`, d: `M${pt(port(start))} L${pt(to)}` }));
    entries.push(to);
  } else if (hops.length) entries.push(hops[0].node.kind ? port(hops[0].node) : far(hops[0].node));
  hops.forEach((a, i) => {
    const b = hops[i + 1];
    if (b) {
      const seg = segment(nodes, a, b, i);
      segs.append(sv("path", { class: `walk${a.hop.encrypted ? " esp" : ""}`, d: seg.d, "data-from": i + 1 }));
      entries.push(seg.end);
    } else if (a.hop.action === "EXIT") {
      const peer = nodes.get(`peer:${a.hop.attachment}`);
      if (peer) segs.append(sv("path", { class: `walk${a.hop.encrypted ? " esp" : ""}`, d: `M${pt(far(a.node))} L${pt(port(peer))}` }));
    }
  });
  const used = new Map();
  hops.forEach(({ hop, node }, i) => {
    const [x, y] = entries[i];
    const k = used.get(node) || 0;
    used.set(node, k + 1);
    const title = `${i + 1}. ${hop.kind} ${hop.attachment || hop.vcn}: ${hop.action}` +
      (hop.routeTable ? ` by ${hop.routeTable}` : "") + (hop.matchedRule ? ` (${hop.matchedRule})` : "") +
      (hop.nextHop ? ` → ${hop.nextHop}` : "") + (hop.encrypted ? `; ${espText(hop)}` : "");
    marks.append(sv("g", { class: `hop${hop.encrypted ? " esp" : ""}`, "data-hop": i + 1, "data-action": hop.action,
      "data-where": hop.attachment || hop.vcn, transform: `translate(${x},${y - 14 * k})`, role: "img", "aria-label": title },
    sv("title", { text: title }), sv("circle", { r: 11 }), sv("text", { class: "num", y: 4, text: i + 1 })));
    let tx = node.x + 8 + 0;
    tagsOf(hop, i ? doc.hops[i - 1] : null, i, doc, i === hops.length - 1).forEach(([text, cls]) => {
      const [g, w] = tag(tx, node.y + node.h + 5 + 22 * k, text, cls);
      tags.append(g);
      tx += w + 6;
    });
  });
  layer.append(segs, tags, marks);
}

function where(h) {  // render._trace_where
  if (h.kind === "APPLIANCE") return `${h.vcn}: ${h.appliance} (${h.privateIp})`;
  if (h.kind === "VCN") return h.attachment ? `${h.vcn} ingress from ${h.attachment}` : `${h.vcn}: ${h.subnet}`;
  return h.attachment;
}

// The walk as a table (the text alternative of the drawing), as ``drg trace`` prints it.
export function walkTable(doc) {
  const multi = doc.hops.some((h) => "drg" in h);
  const rows = doc.hops.map((h, i) => {
    let rt = h.routeTable;
    if (h.kind === "VCN" && rt == null && h.attachment) rt = "implicit (R74)";
    const rule = h.matchedRule != null && h.routeType === "LOCAL" ? `${h.matchedRule} (local)` : h.matchedRule;
    const action = h.verdict ? `${h.action} ${h.verdict}` : h.action;
    const row = [i + 1, h.kind || "DRG", where(h), rt, rule, action, h.nextHop, h.encrypted ? `${h.outerSrc} → ${h.outerDst}` : ""];
    if (multi) row.splice(2, 0, h.drg);
    return row;
  });
  const headers = ["#", "Kind", "Where", "Route table", "Matched rule", "Action", "Next hop", "ESP outer header"];
  if (multi) headers.splice(2, 0, "DRG");
  const espCol = headers.length - 1;
  const code = doc.reasonCode ? ` (${doc.reasonCode})` : "";
  return el("div", { class: "panel walk-table" },
    el("p", { class: `result ${doc.result}`, text: `Result: ${doc.result}${code}${doc.reason ? `: ${doc.reason}` : ""}` }),
    table(headers, rows, (_r, c) => (c === espCol ? "esp" : null)));
}
