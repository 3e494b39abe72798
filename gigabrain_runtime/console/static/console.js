// The operator console page: state and camera frames in over one WebSocket, controls out.
"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
let ws = null;
let cameras = [];
let lastMessage = 0;
let nextId = 1;
let state = null;
let holdToRun = false;
let holdTimer = null;

function setLink(ok, text) {
  const b = $("link");
  b.className = "banner " + (ok ? "ok" : "lost");
  b.textContent = text;
}

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${proto}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { lastMessage = performance.now(); setLink(true, "connected"); };
  ws.onclose = () => { setLink(false, "CONNECTION LOST - controls do not reach the robot"); setTimeout(connect, 1000); };
  ws.onerror = () => setLink(false, "CONNECTION LOST - controls do not reach the robot");
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") onJson(JSON.parse(ev.data)); else onFrame(ev.data);
  };
}

// the server sends state 10 times a second: a second without one is a lost link, and five
// are a dead one (a socket can stay open with nothing behind it): start a new one
setInterval(() => {
  const silent = performance.now() - lastMessage;
  if (ws && ws.readyState === WebSocket.OPEN && silent > 5000) {
    window.reconnects = (window.reconnects || 0) + 1;
    ws.close();  // onclose says so and reconnects
  } else if (ws && ws.readyState === WebSocket.OPEN && silent > 1000) {
    setLink(false, "CONNECTION LOST - no data for " + (silent / 1000).toFixed(1) + " s");
  } else if (ws && ws.readyState === WebSocket.OPEN) {
    setLink(true, "connected");
  }
}, 200);

function onJson(m) {
  if (m.type === "hello") {
    lastMessage = performance.now();
    cameras = m.cameras;
    holdToRun = m.hold_to_run;
    $("hold").classList.toggle("hidden", !holdToRun);
    const box = $("cameras");
    box.innerHTML = "";
    cameras.forEach((c, i) => {
      const d = document.createElement("div");
      d.className = "camera";
      d.innerHTML = `<img id="cam_${i}" data-frames="0" alt="${c}"><span class="name">${c}${i === 0 ? " + predicted trajectory" : ""}</span><span class="stale hidden" id="stale_${i}"></span>`;
      box.appendChild(d);
    });
    loadEpisodes();
  } else if (m.type === "state") {
    lastMessage = performance.now();  // the state (10 Hz) is the link's heartbeat
    window.statesShown = (window.statesShown || 0) + 1;
    state = m;
    try {
      showState(m);
    } finally {
      ws.send(JSON.stringify({ op: "ack", state: true }));  // drawn: ready for the next
    }
  } else if (m.type === "reply") {
    $("reply").textContent = m.ok ? `${m.op}: ok` : `refused: ${m.error}`;
    $("reply").className = m.ok ? "" : "error";
  }
}

function onFrame(buf) {
  const view = new DataView(buf);
  const i = view.getUint8(0);
  const img = $(`cam_${i}`);
  if (!img) return;
  const url = URL.createObjectURL(new Blob([buf.slice(5)], { type: "image/jpeg" }));
  img.onload = () => {
    if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
    img.dataset.url = url;
    img.dataset.frames = String(Number(img.dataset.frames) + 1);
    ws.send(JSON.stringify({ op: "ack", camera: i }));  // ready for the next one
  };
  img.onerror = () => {  // undecodable: still ready for the next one
    URL.revokeObjectURL(url);
    ws.send(JSON.stringify({ op: "ack", camera: i }));
  };
  img.src = url;
}

const fmt = (v, d = 1) => (v === null || v === undefined ? "-" : Number(v).toFixed(d));

function showState(m) {
  $("executor").textContent = m.executor;
  document.body.classList.toggle("estop", m.estop);
  $("mode").textContent = m.mode || "-";
  $("chunk_hz").textContent = fmt(m.chunk_hz, 2);
  $("latency").textContent = `${fmt(m.inference_ms_p50)} / ${fmt(m.inference_ms_p99)}`;
  $("jitter").textContent = fmt(m.jitter_ms_p99, 3);
  $("recording").textContent = m.recording ? `recording ${m.episode}` : "not recording";
  $("episode").textContent = m.episode || "-";
  $("interventions").textContent = m.episode_interventions;
  $("detector").textContent = m.task_success === null ? "-" : (m.task_success ? "success" : "not yet");
  $("current_instruction").textContent = m.instruction || "-";
  $("estop").classList.toggle("active", m.estop);
  $("takeover").classList.toggle("active", m.takeover);
  $("takeover").disabled = !m.teleop;
  $("handback").disabled = !m.teleop;
  cameras.forEach((c, i) => {  // a camera gone quiet is not shown as live
    const age = m.cameras[c], tag = $(`stale_${i}`);
    if (!tag) return;
    const stale = age === undefined || age > 1.0;
    tag.classList.toggle("hidden", !stale);
    tag.textContent = age === undefined ? "NO FRAMES" : `STALE: ${age.toFixed(1)} s old`;
  });
  const ul = $("problems");
  ul.innerHTML = "";
  for (const p of m.problems) {
    const li = document.createElement("li");
    li.className = p.level;
    li.textContent = `${p.level} ${p.name}: ${p.message}`;
    ul.appendChild(li);
  }
  drawJoints(m);
  drawValue(m);
}

function drawJoints(m) {
  const c = $("joints"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const n = m.joints.length;
  if (!n) return;
  const h = c.height / n;
  for (let j = 0; j < n; j++) {
    const series = [[m.positions, "#999"], [m.commands, "#4aa3ff"]];
    let lo = Infinity, hi = -Infinity;
    for (const [s] of series) for (const [, p] of s) { lo = Math.min(lo, p[j]); hi = Math.max(hi, p[j]); }
    if (!isFinite(lo)) continue;
    const span = Math.max(hi - lo, 1e-3);
    for (const [s, color] of series) {
      g.strokeStyle = color;
      g.beginPath();
      s.forEach(([t, p], k) => {
        const x = c.width * (1 + t / 20), y = j * h + h - 2 - (h - 4) * (p[j] - lo) / span;
        k ? g.lineTo(x, y) : g.moveTo(x, y);
      });
      g.stroke();
    }
    g.fillStyle = "#777";
    g.fillText(`${m.joints[j]}  ${lo.toFixed(3)} .. ${hi.toFixed(3)}`, 2, j * h + 10);
  }
}

function drawValue(m) {
  const c = $("value"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  g.strokeStyle = "#7cd67c";
  g.beginPath();
  m.values.forEach(([t, v], k) => {
    const x = c.width * (1 + t / 20), y = c.height - 2 - (c.height - 4) * Math.min(Math.max(v, 0), 1);
    k ? g.lineTo(x, y) : g.moveTo(x, y);
  });
  g.stroke();
  g.fillStyle = "#777";
  const last = m.values.length ? m.values[m.values.length - 1][1] : null;
  g.fillText(last === null ? "no value: the world model runs in standard mode" : `value ${fmt(last, 3)} (0..1)`, 2, 10);
}

function send(op, field, value) {
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    $("reply").textContent = `not sent (${op}): no connection`;
    return;
  }
  ws.send(JSON.stringify({ op, [field]: value, token, id: nextId++ }));
  // the controls this page sent, with the wall-clock time (ms) each left it (devtools, tests)
  window.sentControls.push({ op, value, t: Date.now() });
}
window.sentControls = [];

const actions = {
  estop: () => send("estop", "engaged", true),
  release: () => { holdStop(); if (confirm("Release the e-stop?")) send("estop", "engaged", false); },
  takeover: () => send("takeover", "active", true),
  handback: () => send("takeover", "active", false),
  start: () => send("episode", "event", "start"),
  success: () => send("episode", "event", "success"),
  failure: () => send("episode", "event", "failure"),
  modeswitch: () => send("mode", "mode", state && state.mode === "standard" ? "efficient" : "standard"),
};
for (const [id, fn] of Object.entries(actions)) $(id).addEventListener("click", fn);

$("instruction_form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  send("instruction", "text", $("instruction").value);
  $("instruction").blur();
});

// hold-to-run: 'held' ten times a second while the key or the button is down
function holdStart() {
  if (!holdToRun || holdTimer) return;
  send("hold", "held", true);
  holdTimer = setInterval(() => send("hold", "held", true), 100);
  $("hold").classList.add("active");
}
function holdStop() {
  if (!holdTimer) return;
  clearInterval(holdTimer);
  holdTimer = null;
  send("hold", "held", false);
  $("hold").classList.remove("active");
}
$("hold").addEventListener("mousedown", holdStart);
$("hold").addEventListener("mouseup", holdStop);
$("hold").addEventListener("mouseleave", holdStop);
window.addEventListener("blur", holdStop);

// physical keys (Caps Lock, layouts), never with Ctrl/Alt/Meta (the browser's own shortcuts)
const keys = { KeyE: "estop", KeyT: "takeover", KeyH: "handback", KeyS: "start", KeyY: "success", KeyF: "failure", KeyM: "modeswitch" };
document.addEventListener("keydown", (ev) => {
  if (ev.target.tagName === "INPUT") { if (ev.key === "Escape") ev.target.blur(); return; }
  if (ev.ctrlKey || ev.altKey || ev.metaKey) return;
  if (ev.code === "Space") { ev.preventDefault(); holdStart(); return; }
  if (ev.code === "KeyR" && ev.shiftKey) { actions.release(); return; }
  if (ev.shiftKey) return;
  if (ev.code === "KeyI") { ev.preventDefault(); $("instruction").focus(); return; }
  const a = keys[ev.code];
  if (a && !ev.repeat) actions[a]();
});
document.addEventListener("keyup", (ev) => { if (ev.code === "Space") holdStop(); });

async function loadEpisodes() {
  const r = await fetch(`api/episodes?token=${encodeURIComponent(token)}`);
  if (!r.ok) return;
  const data = await r.json();
  $("record_dir").textContent = data.record_dir;
  const body = $("episodes").querySelector("tbody");
  body.innerHTML = "";
  for (const e of data.episodes) {
    const tr = document.createElement("tr");
    tr.className = "episode";
    tr.dataset.episode = e.directory || e.episode;
    for (const v of [e.episode, e.status, e.duration_s === undefined ? "" : `${e.duration_s} s`, e.outcome || "", e.detector || "", e.label || "", e.interventions ?? ""]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.appendChild(td);
    }
    tr.addEventListener("click", () => {
      $("plot").src = `api/episodes/${encodeURIComponent(tr.dataset.episode)}/plot.png?token=${encodeURIComponent(token)}`;
    });
    body.appendChild(tr);
  }
}
$("refresh").addEventListener("click", loadEpisodes);

connect();
