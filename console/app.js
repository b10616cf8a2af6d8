// The fgs console: a hash-routed single page over the ordinary /v2 API (docs/console.md).
// Credentials live in sessionStorage only; every request is signed in the browser (sign.js)
// or carries the static X-Auth-Token.
"use strict";
const $ = (s, r = document) => r.querySelector(s);
const main = $("#main");
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const b64 = (s) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
const unb64 = (s) => { try { return new TextDecoder().decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0))); } catch { return s; } };
const KEY = "fgs.cred";
const cred = () => JSON.parse(sessionStorage.getItem(KEY) || "null");
const qs = (o) => Object.entries(o || {}).filter(([, v]) => v !== undefined && v !== "").map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v)).join("&");

async function api(method, path, { body, headers = {}, query, raw } = {}) {
  const c = cred();
  const full = `/v2/${encodeURIComponent(c.project)}/fgs${path}`;
  const q = qs(query);
  const hdrs = { ...headers };
  const text = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  if (text !== undefined) hdrs["Content-Type"] = "application/json";
  if (c.token) hdrs["X-Auth-Token"] = c.token;
  else Object.assign(hdrs, await fgsSign.sign({ method, path: full, query: q, host: location.host, body: text || "", ak: c.ak, sk: c.sk }));
  const res = await fetch(full + (q ? "?" + q : ""), { method, headers: hdrs, body: text });
  if (raw) return res;
  const out = await res.text();
  let data;
  try { data = out ? JSON.parse(out) : {}; } catch { data = out; }
  if (!res.ok) throw new Error(data && data.error_msg ? `${data.error_code}: ${data.error_msg}` : `HTTP ${res.status}`);
  return data;
}

// `package:name`, or `project:package:name:version|!alias` (SPEC.md 1: a qualifier needs all four).
const urnOf = (pkg, name, q) => encodeURIComponent(q ? `${cred().project}:${pkg}:${name}:${q}` : `${pkg}:${name}`);
const fail = (e) => `<div class="msg">${esc(e.message || e)}</div>`;
const when = (ms) => (ms ? new Date(ms).toLocaleString() : "");

// ---- login ------------------------------------------------------------------------------
function login(msg) {
  $("#who").innerHTML = "";
  main.innerHTML = `<div class="card login"><h1>Sign in</h1>
    <p class="muted">An access key pair (requests are signed in this browser with SDK-HMAC-SHA256) or the server's static token. Kept in this tab only.</p>
    ${msg ? fail(msg) : ""}
    <form id="lf"><label>Project ID</label><input name="project" required autocomplete="username">
    <label>Access key (AK)</label><input name="ak">
    <label>Secret key (SK)</label><input name="sk" type="password" autocomplete="current-password">
    <label>or static token (X-Auth-Token)</label><input name="token" type="password">
    <p><button class="primary" type="submit">Sign in</button></p></form></div>`;
  $("#lf").onsubmit = async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData(ev.target));
    if (!f.token && !(f.ak && f.sk)) return login("Give an AK and SK, or a token.");
    sessionStorage.setItem(KEY, JSON.stringify({ project: f.project.trim(), ak: f.ak.trim(), sk: f.sk, token: f.token }));
    try { await api("GET", "/functions", { query: { maxitems: 1 } }); } catch (e) { sessionStorage.removeItem(KEY); return login(e.message); }
    location.hash = "#/functions";
    route();
  };
}

// ---- function list ----------------------------------------------------------------------
async function listPage() {
  main.innerHTML = `<div class="row"><h1 class="grow">Functions</h1><a href="#/new"><button class="primary">Create function</button></a></div>
    <div class="card"><div class="row"><input id="q" class="grow" placeholder="Search by name, package, runtime or description" autofocus></div><div id="fl" class="muted">Loading…</div></div>`;
  let all = [];
  try {
    let marker = 0;
    for (;;) {
      const r = await api("GET", "/functions", { query: { marker, maxitems: 400 } });
      all = all.concat(r.functions || []);
      if (!r.functions || !r.functions.length || r.next_marker === undefined || r.next_marker >= r.count || r.next_marker === marker) break;
      marker = r.next_marker;
    }
  } catch (e) { $("#fl").innerHTML = fail(e); return; }
  const draw = () => {
    const q = $("#q").value.toLowerCase();
    const fs = all.filter((f) => !q || [f.func_name, f.package, f.runtime, f.description].join(" ").toLowerCase().includes(q));
    $("#fl").innerHTML = fs.length ? `<table><tr><th>Name</th><th>Package</th><th>Runtime</th><th>Memory</th><th>Timeout</th><th>Modified</th></tr>
      ${fs.map((f) => `<tr class="click" data-h="#/fn/${esc(encodeURIComponent(f.package))}/${esc(encodeURIComponent(f.func_name))}/overview"><td><a href="#/fn/${esc(encodeURIComponent(f.package))}/${esc(encodeURIComponent(f.func_name))}/overview">${esc(f.func_name)}</a><div class="muted">${esc(f.description)}</div></td><td>${esc(f.package)}</td><td>${esc(f.runtime)}</td><td>${esc(f.memory_size)} MB</td><td>${esc(f.timeout)} s</td><td>${esc(f.last_modified)}</td></tr>`).join("")}</table>`
      : `<p class="muted">${all.length ? "No function matches." : "No functions yet."}</p>`;
    for (const tr of main.querySelectorAll("tr.click")) tr.onclick = () => (location.hash = tr.dataset.h);
  };
  $("#q").oninput = draw;
  draw();
}

// ---- create -----------------------------------------------------------------------------
const TEMPLATES = {
  "Python3.9": ["index.handler", "import json\n\ndef handler(event, context):\n    context.getLogger().info('hello from ' + context.getFunctionName())\n    return {'statusCode': 200, 'body': json.dumps(event)}\n"],
  "Node.js20.15": ["index.handler", "exports.handler = async (event, context) => {\n  context.getLogger().info('hello from ' + context.getFunctionName());\n  return { statusCode: 200, body: JSON.stringify(event) };\n};\n"],
  Custom: ["bootstrap", "#!/bin/bash\n# A Custom runtime: poll the Runtime API, answer each event.\nwhile true; do\n  h=$(mktemp); ev=$(curl -sS -D \"$h\" \"http://$RUNTIME_API_ADDR/v1/runtime/invocation/request\")\n  id=$(grep -i '^x-cff-request-id:' \"$h\" | tr -d '\\r' | cut -d' ' -f2)\n  echo \"got $ev\"\n  curl -sS -X POST \"http://$RUNTIME_API_ADDR/v1/runtime/invocation/response/$id\" -d \"$ev\" >/dev/null\ndone\n"],
};
function newPage() {
  main.innerHTML = `<h1>Create function</h1><div class="card"><form id="nf">
    <div class="row"><label>Name <input name="func_name" required pattern="[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z0-9]?"></label>
    <label>Package <input name="package" value="default"></label>
    <label>Runtime <select name="runtime">${Object.keys(TEMPLATES).map((r) => `<option>${r}</option>`).join("")}</select></label>
    <label>Handler <input name="handler"></label>
    <label>Memory <select name="memory_size">${[128, 256, 512, 1024, 2048].map((m) => `<option>${m}</option>`).join("")}</select></label>
    <label>Timeout (s) <input name="timeout" type="number" value="30" min="3" max="259200" style="width:90px"></label></div>
    <label class="muted">Code (inline)</label><textarea name="code" rows="14" spellcheck="false"></textarea>
    <div class="row" style="margin-top:10px"><button class="primary" type="submit">Create</button><span id="nmsg"></span></div></form></div>`;
  const f = $("#nf");
  const pick = () => { const [h, c] = TEMPLATES[f.runtime.value]; f.handler.value = h; f.code.value = c; };
  f.runtime.onchange = pick;
  pick();
  f.onsubmit = async (ev) => {
    ev.preventDefault();
    const d = Object.fromEntries(new FormData(f));
    try {
      await api("POST", "/functions", { body: { func_name: d.func_name, package: d.package || "default", runtime: d.runtime, handler: d.handler, memory_size: +d.memory_size, timeout: +d.timeout, code_type: "inline", func_code: { file: b64(d.code) } } });
      location.hash = `#/fn/${encodeURIComponent(d.package || "default")}/${encodeURIComponent(d.func_name)}/test`;
    } catch (e) { $("#nmsg").innerHTML = fail(e); }
  };
}

// ---- one function -----------------------------------------------------------------------
const TABS = [["overview", "Configuration"], ["code", "Code"], ["versions", "Versions & aliases"], ["triggers", "Triggers"], ["test", "Test"], ["invocations", "Invocations"], ["monitoring", "Monitoring"]];
async function fnPage(pkg, name, tab) {
  const urn = urnOf(pkg, name);
  main.innerHTML = `<div class="row"><h1 class="grow"><a href="#/functions">Functions</a> / ${esc(name)} <span class="muted">${esc(pkg)}</span></h1></div>
    <div class="tabs">${TABS.map(([t, l]) => `<a class="${t === tab ? "on" : ""}" href="#/fn/${encodeURIComponent(pkg)}/${encodeURIComponent(name)}/${t}">${l}</a>`).join("")}</div><div id="tab"><p class="muted">Loading…</p></div>`;
  const el = $("#tab");
  try { await (PAGES[tab] || PAGES.overview)(el, urn, pkg, name); } catch (e) { el.innerHTML = fail(e); }
}

const dl = (pairs) => `<dl>${pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join("")}</dl>`;
const PAGES = {
  async overview(el, urn) {
    const f = await api("GET", `/functions/${urn}/config`);
    let env = {};
    try { env = JSON.parse(f.user_data || "{}"); } catch {}
    // An image function shows its image (docs/images.md) where a code function shows its code.
    const img = f.custom_image && f.custom_image.enabled ? f.custom_image : null;
    const code = img
      ? [["Image", esc(img.image)], ["Image digest", `<span class="muted">${esc(img.digest)}</span>`],
         ["Command / args", esc([img.command, img.args].filter(Boolean).join(" | ") || "the image's")],
         ["Working dir", esc(img.working_dir || "the image's")], ["uid / gid", `${esc(img.uid)} / ${esc(img.gid)}`]]
      : [["Code", `${esc(f.code_type)}, ${esc(f.code_size)} bytes`], ["Digest", `<span class="muted">${esc((f.digest || "").slice(0, 32))}…</span>`]];
    el.innerHTML = `<div class="card">${dl([
      ["URN", esc(f.func_urn)], ["Runtime", esc(f.runtime)], ["Handler", esc(f.handler)], ["Memory", esc(f.memory_size) + " MB"], ["CPU", esc(f.cpu) + " millicores"],
      ["Timeout", esc(f.timeout) + " s"], ...code,
      ["Initializer", esc(f.initializer_handler || "—")], ["Concurrency per instance", esc(f.strategy_config ? f.strategy_config.concurrent_num : "")],
      ["Max instances", esc(f.max_instance_num ?? "")], ["Reserved instances", esc(f.reserved_instance_count ?? 0)], ["Dependencies", esc((f.depend_version_list || []).join(", ") || "—")],
      ["Description", esc(f.description || "—")], ["Last modified", esc(f.last_modified)],
    ])}</div><div class="card"><h2>Environment variables</h2>${Object.keys(env).length ? `<table>${Object.entries(env).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join("")}</table>` : `<p class="muted">None.</p>`}</div>`;
  },
  async code(el, urn) {
    const r = await api("GET", `/functions/${urn}/code/files`);
    const files = r.files.filter((f) => !f.is_dir);
    el.innerHTML = `<div class="card"><h2>Extensions in use</h2>${r.extensions.length ? `<table><tr><th>Start script</th><th>From</th></tr>${r.extensions.map((x) => `<tr><td>${esc(x.name)}</td><td>${x.source === "code" ? "function code" : `dependency ${esc(x.dependency)} v${esc(x.dependency_version)}`}</td></tr>`).join("")}</table>` : `<p class="muted">None: no <code>extension/extension*.sh</code> in the code or its dependencies.</p>`}</div>
      <div class="card"><h2>Files <span class="muted">(${files.length}, ${esc(r.code_type)})</span></h2><div class="files"><ul id="fls">${files.map((f) => `<li data-p="${esc(f.name)}">${esc(f.name)} <span class="muted">${f.size} B</span></li>`).join("")}</ul><pre id="src" class="muted">Pick a file.</pre></div></div>`;
    const show = async (li) => {
      for (const x of el.querySelectorAll("#fls li")) x.classList.toggle("on", x === li);
      try {
        const f = await api("GET", `/functions/${urn}/code/files/content`, { query: { path: li.dataset.p } });
        $("#src").classList.remove("muted");
        $("#src").textContent = f.encoding === "utf-8" ? f.content : `(binary, ${f.content.length} base64 characters)`;
      } catch (e) { $("#src").textContent = e.message; }
    };
    for (const li of el.querySelectorAll("#fls li")) li.onclick = () => show(li);
    const first = el.querySelector("#fls li");
    if (first) show(first);
  },
  async versions(el, urn) {
    const [v, a] = await Promise.all([api("GET", `/functions/${urn}/versions`), api("GET", `/functions/${urn}/aliases`)]);
    const versions = v.versions || [];
    const aliases = Array.isArray(a) ? a : a.aliases || [];
    el.innerHTML = `<div class="card"><h2>Versions</h2><table><tr><th>Version</th><th>Description</th><th>Digest</th><th>Modified</th></tr>${versions.map((x) => `<tr><td>${esc(x.version)}</td><td>${esc(x.version_description || x.description)}</td><td class="muted">${esc((x.digest || "").slice(0, 16))}</td><td>${esc(x.last_modified)}</td></tr>`).join("")}</table></div>
      <div class="card"><h2>Aliases</h2>${aliases.length ? `<table><tr><th>Alias</th><th>Version</th><th>Weights</th><th>Description</th></tr>${aliases.map((x) => `<tr><td>${esc(x.name)}</td><td>${esc(x.version)}</td><td>${esc(JSON.stringify(x.additional_version_weights || {}))}</td><td>${esc(x.description)}</td></tr>`).join("")}</table>` : `<p class="muted">No aliases.</p>`}</div>`;
  },
  async triggers(el, urn) {
    const t = await api("GET", `/triggers/${urn}`);
    const list = Array.isArray(t) ? t : t.triggers || [];
    el.innerHTML = `<div class="card">${list.length ? `<table><tr><th>Type</th><th>ID</th><th>Status</th><th>Event data</th></tr>${list.map((x) => `<tr><td>${esc(x.trigger_type_code)}</td><td class="muted">${esc(x.trigger_id)}</td><td>${esc(x.trigger_status)}</td><td><pre>${esc(JSON.stringify(x.event_data, null, 1))}</pre></td></tr>`).join("")}</table>` : `<p class="muted">No triggers.</p>`}</div>`;
  },
  async test(el, urn, pkg, name) {
    const [ev, vs, as] = await Promise.all([api("GET", `/functions/${urn}/events`), api("GET", `/functions/${urn}/versions`).catch(() => ({})), api("GET", `/functions/${urn}/aliases`).catch(() => [])]);
    const events = ev.events || [];
    const quals = ["latest", ...(vs.versions || []).map((v) => v.version).filter((v) => v !== "latest"), ...(Array.isArray(as) ? as : as.aliases || []).map((a) => "!" + a.name)];
    el.innerHTML = `<div class="card"><div class="row"><label>Saved event <select id="sev"><option value="">(typed below)</option>${events.map((e) => `<option value="${esc(e.id)}">${esc(e.name)}</option>`).join("")}</select></label>
      <label>Invoke <select id="qual">${quals.map((q) => `<option value="${esc(q)}">${q.startsWith("!") ? "alias " + esc(q.slice(1)) : q === "latest" ? "latest" : "version " + esc(q)}</option>`).join("")}</select></label>
      <span class="grow"></span><input id="evname" placeholder="event name" size="14"><button id="save">Save event</button></div>
      <textarea id="evt" rows="8" spellcheck="false">{"hello": "world"}</textarea>
      <div class="row" style="margin-top:10px"><button class="primary" id="run">Invoke</button><span id="sum" class="muted"></span></div></div>
      <div class="card" id="out" hidden><h2>Result <span id="st"></span></h2><pre id="res"></pre><h2>Log</h2><pre id="log"></pre></div>`;
    $("#sev").onchange = async () => {
      const id = $("#sev").value;
      if (!id) return;
      const e = await api("GET", `/functions/${urn}/events/${encodeURIComponent(id)}`);
      $("#evt").value = unb64(e.content);
      $("#evname").value = e.name;
    };
    $("#save").onclick = async () => {
      const name = $("#evname").value.trim();
      try {
        if (!name) throw new Error("Name the event first.");
        await api("POST", `/functions/${urn}/events`, { body: { name, content: b64($("#evt").value) } });
        $("#sum").textContent = `saved event ${name}`;
      } catch (e) { $("#sum").innerHTML = fail(e); }
    };
    $("#run").onclick = async () => {
      $("#run").disabled = true;
      $("#sum").textContent = "invoking…";
      const t0 = performance.now();
      try {
        const res = await api("POST", `/functions/${urnOf(pkg, name, $("#qual").value)}/invocations`, { body: $("#evt").value, headers: { "X-Cff-Log-Type": "tail" }, raw: true });
        const wall = performance.now() - t0;
        const body = await res.text();
        let summary = {};
        try { summary = JSON.parse(res.headers.get("X-Cff-Invoke-Summary") || "{}"); } catch {}
        const funcErr = res.headers.get("X-Is-Func-Err") === "true";
        const ok = res.ok && !funcErr;
        $("#out").hidden = false;
        $("#st").innerHTML = `<span class="badge ${ok ? "ok" : "err"}">${ok ? "success" : funcErr ? "function error " + esc(res.headers.get("X-Func-Err-Code")) : "HTTP " + res.status}</span>`;
        let pretty = body;
        try { pretty = JSON.stringify(JSON.parse(body), null, 2); } catch {}
        $("#res").textContent = pretty;
        $("#log").textContent = unb64(res.headers.get("X-Cff-Function-Log") || "") || "(no log)";
        $("#sum").textContent = `request ${res.headers.get("X-Cff-Request-Id") || "-"} · ${$("#qual").value} · duration ${summary.duration ?? "?"} ms · billed ${summary.billingDuration ?? "?"} ms · memory ${summary.memoryUsed ?? "?"}/${summary.memorySize ?? "?"} MB · round trip ${wall.toFixed(0)} ms`;
      } catch (e) { $("#sum").innerHTML = fail(e); }
      $("#run").disabled = false;
    };
  },
  async invocations(el, urn) {
    el.innerHTML = `<div class="card"><div class="row"><input id="rid" class="grow" placeholder="Find a request id"><button id="find">Find</button></div><div id="ilist" class="muted">Loading…</div><h2>Log</h2><pre id="ilog">Pick an invocation.</pre></div>`;
    let logs = [];
    const load = async (marker) => {
      const rid = $("#rid").value.trim();
      let r;
      try { r = await api("GET", `/functions/${urn}/logs`, { query: { order: "desc", limit: 30, request_id: rid, marker } }); } catch (e) {
        $("#ilist").innerHTML = fail(e);
        return;
      }
      logs = marker ? logs.concat(r.logs || []) : r.logs || [];
      $("#ilist").innerHTML = logs.length ? `<table id="inv"><tr><th>Start</th><th>Request</th><th>Version</th><th>Type</th><th>Duration</th><th>Status</th></tr>${logs.map((l, i) => `<tr class="click" data-i="${i}"><td>${esc(l.start_time)}</td><td class="muted">${esc(l.request_id)}</td><td>${esc(l.version)}</td><td>${esc(l.invoke_type)}</td><td>${esc(l.duration)} ms</td><td><span class="badge ${l.status === "success" ? "ok" : "err"}">${esc(l.status)}${l.error_code ? " " + esc(l.error_code) : ""}</span></td></tr>`).join("")}</table>${r.next_marker ? `<p><button id="more">Older</button></p>` : ""}` : `<p class="muted">${rid ? "No invocation with that request id." : "No invocations recorded yet."}</p>`;
      for (const tr of el.querySelectorAll("tr.click")) tr.onclick = () => { const l = logs[+tr.dataset.i]; $("#ilog").textContent = l.log + (l.truncated ? "\n[truncated]" : ""); };
      if (r.next_marker) $("#more").onclick = () => load(r.next_marker);
      const first = el.querySelector("tr.click");
      if (first && !marker) first.onclick();
    };
    $("#find").onclick = () => load();
    $("#rid").onkeydown = (e) => { if (e.key === "Enter") load(); };
    await load();
  },
  async monitoring(el, urn) {
    const period = +(sessionStorage.getItem("fgs.period") || 60);
    const s = await api("GET", `/functions/${urn}/statistics/${period}`);
    el.innerHTML = `<div class="row"><label>Last <select id="per">${[[15, "15 minutes"], [60, "hour"], [360, "6 hours"], [1440, "24 hours"]].map(([v, l]) => `<option value="${v}" ${v === period ? "selected" : ""}>${l}</option>`).join("")}</select></label><span class="muted">Kept in memory for 24 h; a restart starts from zero.</span></div>
      <div class="charts">${chart("Invocations", [[s.count, "#0b5cad"]])}${chart("Errors and throttles", [[s.fail_count, "#c7000b"], [s.reject_count, "#e09b00"]])}${chart("Duration (ms): max and average", [[s.max_duration, "#9aa3b5"], [s.duration, "#1a7f37"]])}</div>`;
    $("#per").onchange = () => { sessionStorage.setItem("fgs.period", $("#per").value); PAGES.monitoring(el, urn); };
  },
};

// A tiny line chart: one polyline per series, a y-axis top label and the time span below.
function chart(title, series) {
  const W = 320, H = 120, P = 4;
  const pts = series[0][0] || [];
  const max = Math.max(1, ...series.flatMap(([s]) => (s || []).map((p) => p.value)));
  const x = (i) => P + (i * (W - 2 * P)) / Math.max(1, pts.length - 1);
  const y = (v) => H - P - (v * (H - 2 * P)) / max;
  const lines = series.map(([s, color]) => `<polyline fill="none" stroke="${color}" stroke-width="1.6" points="${(s || []).map((p, i) => `${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ")}"/>`).join("");
  const total = (series[0][0] || []).reduce((a, p) => a + p.value, 0);
  const span = pts.length ? `${new Date(pts[0].timestamp).toLocaleTimeString()} – ${new Date(pts[pts.length - 1].timestamp).toLocaleTimeString()}` : "";
  return `<div class="card chart"><h3>${esc(title)} <span class="muted">max ${+max.toFixed(2)}, sum ${+total.toFixed(2)}</span></h3>
    <svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="${esc(title)}"><line x1="0" x2="${W}" y1="${H - P}" y2="${H - P}" stroke="#dde1e8"/>${lines}</svg><div class="muted" style="font-size:12px">${esc(span)}</div></div>`;
}

// ---- routing ----------------------------------------------------------------------------
function route() {
  const c = cred();
  if (!c) return login();
  $("#who").innerHTML = `<span>project ${esc(c.project)} · ${c.token ? "token" : "AK " + esc(c.ak)}</span><button id="out-btn">Sign out</button>`;
  $("#out-btn").onclick = () => { sessionStorage.removeItem(KEY); location.hash = ""; login(); };
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "fn" && parts[2]) return fnPage(parts[1], parts[2], parts[3] || "overview");
  if (parts[0] === "new") return newPage();
  return listPage();
}
window.addEventListener("hashchange", route);
route();
