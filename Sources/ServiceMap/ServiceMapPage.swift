/// The page `junctionctl ui` serves at "/": the service map (SVG, laid out by hand in
/// plain JavaScript) and the flow table under it, both from GET /api/map. Self-contained:
/// no script, style or font from anywhere else, since the nodes need not reach the
/// internet.
///
/// The DOM is part of the contract (the Chromium test reads it): a node is
/// `<g class="node" data-id data-kind>`, an edge `<g class="edge" data-from data-to
/// data-total data-dropped>`, a table row `<tr class="flow" data-verdict>`; `#status` says
/// when the last refresh happened or what went wrong.
public enum ServiceMapPage {
  /// How often the page asks for a new snapshot.
  public static let refreshMilliseconds = 2000

  public static let html: String = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <title>Junction service map</title>
    <style>
    body { font: 13px/1.4 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
    header { padding: 10px 16px; background: #1d2330; color: #fff; display: flex; gap: 16px; align-items: baseline; }
    header h1 { font-size: 16px; margin: 0; }
    #status { color: #c9d1e0; }
    #status.error { color: #ff8a80; }
    form { display: flex; flex-wrap: wrap; gap: 6px 12px; padding: 8px 16px; background: #e9ecf1; }
    form label { display: flex; flex-direction: column; font-size: 11px; color: #4a5366; }
    form input, form select { font: inherit; width: 104px; padding: 1px 4px; }
    form button { align-self: flex-end; font: inherit; padding: 3px 12px; }
    #map-box { padding: 8px 16px; overflow: auto; }
    svg { background: #fff; border: 1px solid #d5dae3; }
    .node rect { rx: 6; ry: 6; stroke-width: 1.5; }
    .node.pod rect { fill: #e8f1ff; stroke: #3d7ce0; }
    .node.service rect { fill: #f2ebff; stroke: #7b4fd6; }
    .node.ip rect { fill: #f1f2f4; stroke: #8a93a6; }
    .node .kind { font-size: 10px; fill: #5d667a; text-transform: uppercase; letter-spacing: .05em; }
    .node .label { font-size: 12px; font-weight: 600; fill: #1d2330; }
    .edge path { fill: none; stroke-width: 2; }
    .edge.ok path { stroke: #2e9e5b; }
    .edge.mixed path { stroke: #e08a1e; }
    .edge.dropped path { stroke: #d93838; }
    .edge text { font-size: 11px; fill: #1d2330; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
    .legend { font-size: 11px; color: #4a5366; margin: 4px 0; }
    .legend span { display: inline-block; width: 18px; height: 3px; vertical-align: middle; margin: 0 4px 0 10px; }
    table { border-collapse: collapse; margin: 0 16px 16px; background: #fff; font: 12px ui-monospace, monospace; }
    th, td { border-bottom: 1px solid #e3e6ec; padding: 3px 8px; text-align: left; white-space: nowrap; }
    th { background: #e9ecf1; font-family: system-ui, sans-serif; }
    tr.flow td.verdict { font-weight: 600; color: #2e9e5b; }
    tr.flow[data-verdict="DROPPED"] td.verdict { color: #d93838; }
    </style>
    </head>
    <body>
    <header><h1>Junction service map</h1><span id="status">loading…</span></header>
    <form id="filters">
      <label>from pod<input name="from-pod" placeholder="ns/pod"></label>
      <label>to pod<input name="to-pod" placeholder="ns/pod"></label>
      <label>pod<input name="pod" placeholder="ns/pod"></label>
      <label>namespace<input name="namespace"></label>
      <label>from ip<input name="from-ip" placeholder="ip or cidr"></label>
      <label>to ip<input name="to-ip" placeholder="ip or cidr"></label>
      <label>ip<input name="ip" placeholder="ip or cidr"></label>
      <label>port<input name="port"></label>
      <label>to port<input name="to-port"></label>
      <label>protocol<select name="protocol"><option value=""></option><option>tcp</option><option>udp</option></select></label>
      <label>verdict<select name="verdict"><option value=""></option><option>FORWARDED</option><option>TRANSLATED</option><option>DROPPED</option></select></label>
      <label>type<select name="type"><option value=""></option><option>trace</option><option>drop</option><option>sock</option></select></label>
      <label>to service<input name="to-service" placeholder="ns/name"></label>
      <label>from service<input name="from-service" placeholder="ns/name"></label>
      <label>since<input name="since" placeholder="RFC 3339 UTC"></label>
      <label>rows<input name="rows" placeholder="100"></label>
      <button type="submit">Apply</button>
    </form>
    <div id="map-box">
      <div class="legend">edges: <span style="background:#2e9e5b"></span>forwarded / translated
        <span style="background:#e08a1e"></span>some dropped <span style="background:#d93838"></span>dropped</div>
      <svg id="map" xmlns="http://www.w3.org/2000/svg" width="800" height="200"></svg>
    </div>
    <table id="flows">
      <thead><tr><th>time (UTC)</th><th>source</th><th></th><th>destination</th><th>service</th><th>type</th><th>verdict</th><th>summary</th></tr></thead>
      <tbody></tbody>
    </table>
    <script>
    "use strict";
    const REFRESH_MS = __REFRESH__;
    const SVG = "http://www.w3.org/2000/svg";
    const NODE_W = 210, NODE_H = 44, COL_W = 400, ROW_H = 72, PAD = 24;
    const form = document.getElementById("filters");

    // The filters live in the address bar, so a filtered map is a link.
    for (const [name, value] of new URLSearchParams(location.search)) {
      if (form.elements[name]) form.elements[name].value = value;
    }
    function queryString() {
      const params = new URLSearchParams();
      for (const element of form.elements) {
        if (element.name && element.value.trim() !== "") params.set(element.name, element.value.trim());
      }
      return params.toString();
    }
    form.addEventListener("submit", event => {
      event.preventDefault();
      const query = queryString();
      history.replaceState(null, "", query ? "?" + query : location.pathname);
      refresh();
    });

    function element(name, attributes, parent) {
      const node = document.createElementNS(SVG, name);
      for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
      if (parent) parent.appendChild(node);
      return node;
    }

    // Columns by longest path from the nodes nobody connects to (clients left, Services in
    // the middle, backends right). Edges that close a cycle (found depth first) are left
    // out of the ranking, so a pod that is both client and backend cannot push it forever.
    function layout(graph) {
      const outgoing = new Map(graph.nodes.map(node => [node.id, []]));
      for (const edge of graph.edges) outgoing.get(edge.from).push(edge);
      const state = new Map(), forward = [];
      function visit(id) {
        state.set(id, "open");
        for (const edge of outgoing.get(id)) {
          const next = state.get(edge.to);
          if (next === "open") continue;
          forward.push(edge);
          if (next === undefined) visit(edge.to);
        }
        state.set(id, "done");
      }
      const incoming = new Set(graph.edges.filter(edge => edge.from !== edge.to).map(edge => edge.to));
      for (const node of graph.nodes) if (!incoming.has(node.id) && !state.has(node.id)) visit(node.id);
      for (const node of graph.nodes) if (!state.has(node.id)) visit(node.id);
      const layer = new Map(graph.nodes.map(node => [node.id, 0]));
      for (let round = 0; round < graph.nodes.length; round++) {
        let changed = false;
        for (const edge of forward) {
          const next = layer.get(edge.from) + 1;
          if (next > layer.get(edge.to)) {
            layer.set(edge.to, next);
            changed = true;
          }
        }
        if (!changed) break;
      }
      const columns = [];
      for (const node of graph.nodes) {
        const column = layer.get(node.id);
        (columns[column] = columns[column] || []).push(node);
      }
      const tallest = Math.max(1, ...columns.map(column => (column || []).length));
      const position = new Map();
      columns.forEach((column, index) => {
        if (!column) return;
        column.sort((a, b) => a.kind.localeCompare(b.kind) || a.label.localeCompare(b.label));
        const top = PAD + (tallest - column.length) * ROW_H / 2;
        column.forEach((node, row) => position.set(node.id, { x: PAD + index * COL_W, y: top + row * ROW_H }));
      });
      return { position, width: PAD * 2 + Math.max(0, columns.length - 1) * COL_W + NODE_W, height: PAD * 2 + tallest * ROW_H - (ROW_H - NODE_H) };
    }

    function short(text, length) {
      return text.length > length ? text.slice(0, length - 1) + "…" : text;
    }

    function drawMap(graph) {
      const svg = document.getElementById("map");
      svg.replaceChildren();
      const defs = element("defs", {}, svg);
      for (const [name, colour] of [["ok", "#2e9e5b"], ["mixed", "#e08a1e"], ["dropped", "#d93838"]]) {
        const marker = element("marker", { id: "arrow-" + name, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
        element("path", { d: "M0,0 L10,5 L0,10 z", fill: colour }, marker);
      }
      if (graph.nodes.length === 0) {
        svg.setAttribute("width", 800);
        svg.setAttribute("height", 120);
        element("text", { x: PAD, y: 60, class: "empty" }, svg).textContent = "No flows match these filters yet.";
        return;
      }
      const { position, width, height } = layout(graph);
      svg.setAttribute("width", Math.max(800, width));
      svg.setAttribute("height", Math.max(120, height));
      // Each node's edges leave (and arrive) spread over its side, in the order of the
      // nodes at their other end, so they neither cross at the box nor share a label spot.
      const ends = new Map();
      function spread(key, other) {
        const list = graph.edges.filter(edge => edge[key] === other);
        list.sort((a, b) => position.get(a[key === "from" ? "to" : "from"]).y - position.get(b[key === "from" ? "to" : "from"]).y);
        list.forEach((edge, index) => ends.set(key + "\u0000" + edge.from + "\u0000" + edge.to, (index + 1) * NODE_H / (list.length + 1)));
      }
      for (const node of graph.nodes) {
        spread("from", node.id);
        spread("to", node.id);
      }
      const edges = element("g", { class: "edges" }, svg);
      for (const edge of graph.edges) {
        const from = position.get(edge.from), to = position.get(edge.to);
        const key = edge.from + "\u0000" + edge.to;
        const state = edge.dropped === 0 ? "ok" : edge.dropped === edge.total ? "dropped" : "mixed";
        const verdicts = Object.entries(edge.verdicts).map(([verdict, count]) => verdict + ":" + count).join(" ");
        const group = element("g", { class: "edge " + state, "data-from": edge.from, "data-to": edge.to, "data-total": edge.total, "data-dropped": edge.dropped, "data-verdicts": verdicts }, edges);
        const x1 = from.x + NODE_W, y1 = from.y + ends.get("from\u0000" + key), x2 = to.x, y2 = to.y + ends.get("to\u0000" + key);
        const bend = Math.max(60, Math.abs(x2 - x1) / 2);
        element("path", { d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`, "marker-end": `url(#arrow-${state})` }, group);
        const label = element("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 6, "text-anchor": "middle" }, group);
        const dropped = edge.dropped > 0 ? ` (${edge.dropped} dropped)` : "";
        label.textContent = `${edge.total}${dropped} · ${edge.ports.join(", ")}`;
        element("title", {}, group).textContent = verdicts;
      }
      const nodes = element("g", { class: "nodes" }, svg);
      for (const node of graph.nodes) {
        const at = position.get(node.id);
        const group = element("g", { class: "node " + node.kind, "data-id": node.id, "data-kind": node.kind, transform: `translate(${at.x},${at.y})` }, nodes);
        element("rect", { width: NODE_W, height: NODE_H }, group);
        element("text", { x: 10, y: 16, class: "kind" }, group).textContent = node.kind === "ip" ? "address" : node.kind;
        element("text", { x: 10, y: 34, class: "label" }, group).textContent = short(node.label, 30);
        element("title", {}, group).textContent = node.label;
      }
    }

    function drawTable(rows) {
      const body = document.querySelector("#flows tbody");
      body.replaceChildren();
      for (const row of rows) {
        const tr = document.createElement("tr");
        tr.className = "flow";
        tr.dataset.verdict = row.verdict;
        for (const [name, value] of [["time", row.time], ["source", row.source], ["arrow", row.arrow], ["destination", row.destination], ["service", row.service || ""], ["type", row.type], ["verdict", row.verdict], ["summary", row.summary]]) {
          const td = document.createElement("td");
          td.className = name;
          td.textContent = value;
          tr.appendChild(td);
        }
        body.appendChild(tr);
      }
    }

    function status(text, error) {
      const line = document.getElementById("status");
      line.textContent = text;
      line.className = error ? "error" : "";
    }

    let timer = null;
    async function refresh() {
      clearTimeout(timer);
      try {
        const answer = await fetch("/api/map?" + queryString(), { cache: "no-store" });
        const body = await answer.json();
        if (!answer.ok) {
          status(body.error || ("HTTP " + answer.status), true);
        } else {
          drawMap(body.graph);
          drawTable(body.flows);
          const lost = body.lost ? `, ${body.lost} lost by the datapath` : "";
          status(`${body.matched} flows, ${body.graph.nodes.length} nodes, ${body.graph.edges.length} edges${lost}; updated ${new Date().toISOString().slice(11, 19)} UTC`, false);
          document.body.dataset.loaded = "true";
        }
      } catch (error) {
        status("cannot reach junctionctl ui: " + error, true);
      }
      timer = setTimeout(refresh, REFRESH_MS);
    }
    refresh();
    </script>
    </body>
    </html>
    """#.replacing("__REFRESH__", with: String(refreshMilliseconds))
}
