// The one network client: JSON over HTTP and a self-healing WebSocket.
import { modelName } from "./server-text.js";

// The JSON a request answers with; an error carrying the server's message (and its code, per-field
// problems, and the status) when it fails.
async function request(url, init = {}) {
  const response = await fetch(url, { ...init, headers: { Accept: "application/json", "X-Owner-Token": ownerToken(), ...init.headers } });
  const text = await response.text();
  const data = text ? JSON.parse(text) : {};
  if (!response.ok) {
    throw Object.assign(new Error(data.message || `HTTP ${response.status}`), { code: data.error, fields: data.fields || {}, status: response.status });
  }
  return data;
}

export const getJSON = (url) => request(url);

// Save what `url` answers as a file named `filename` (a request that needs headers, so not a plain
// link); a refusal is thrown as request's errors are.
export async function download(url, filename, headers = {}) {
  const response = await fetch(url, { headers: { "X-Owner-Token": ownerToken(), ...headers } });
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    throw Object.assign(new Error(data.message || `HTTP ${response.status}`), { code: data.error, status: response.status });
  }
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(await response.blob()), download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

export const sendJSON = (method, url, body, headers = {}) => request(url, {
  method, headers: { "Content-Type": "application/json", ...headers },
  body: body === undefined ? undefined : JSON.stringify(body),
});

// POST a multipart form (files and fields): `fields` maps names to strings, Blobs or lists of Blobs.
export function postForm(url, fields, headers = {}) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item instanceof Blob) form.append(name, item, item.name || `${name}.png`);
      else if (item !== undefined && item !== null) form.append(name, String(item));
    }
  }
  return request(url, { method: "POST", body: form, headers });
}

// This browser's owner token (128 random bits, kept in localStorage): whatever it creates on the
// server (models, projects, jobs, sessions) can be changed or deleted only with it.
export function ownerToken() {
  let token = localStorage.getItem("neuronlab.owner");
  if (!/^[0-9a-f]{32}$/.test(token || "")) {
    token = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem("neuronlab.owner", token);
  }
  return token;
}

export function pageConfig() {
  return JSON.parse(document.getElementById("page-config").textContent);
}

// A WebSocket that reconnects with backoff. `path` is a string or a function (called at every
// connection, so it can carry a resume point). `onMessage(obj)` gets parsed JSON; `onState(s)`
// gets "open" | "closed". `onOpen()` runs after every (re)connection.
export class LiveSocket {
  constructor(path, { onMessage, onState = () => {}, onOpen = () => {} }) {
    Object.assign(this, { path, onMessage, onState, onOpen, delay: 250, ws: null, stopped: false });
    this.connect();
  }

  close() {
    this.stopped = true;
    if (this.ws) this.ws.close();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const path = typeof this.path === "function" ? this.path() : this.path;
    const ws = new WebSocket(`${scheme}://${location.host}${path}`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { this.delay = 250; this.onState("open"); this.onOpen(); };
    ws.onmessage = (event) => this.onMessage(JSON.parse(event.data));
    ws.onclose = () => {
      this.onState("closed");
      if (!this.stopped) setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 4000);
    };
    this.ws = ws;
  }

  get ready() { return this.ws && this.ws.readyState === WebSocket.OPEN; }

  send(data) {
    if (!this.ready) return false;
    this.ws.send(typeof data === "string" || data instanceof Blob || data instanceof ArrayBuffer ? data : JSON.stringify(data));
    return true;
  }
}

// A model as a choice in a list: a long name is cut (the whole name shows on hover), so a list
// of trained models never widens the page.
export function modelOption(m, selected, suffix = "") {
  const full = modelName(m);  // a shipped model's name in the reader's language
  const name = full.length > 44 ? `${full.slice(0, 43)}…` : full;
  const option = new Option(`${name}${suffix}`, m.id, false, selected);
  option.title = full;
  return option;
}
