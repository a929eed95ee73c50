// The one network client: JSON over HTTP and a self-healing WebSocket.

export async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || `HTTP ${response.status}`);
  return body;
}

export async function sendJSON(method, url, body, headers = {}) {
  const response = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-Client-Id": clientId(), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : {};
  if (!response.ok) {
    const error = new Error(data.message || `HTTP ${response.status}`);
    error.fields = data.fields || {};
    throw error;
  }
  return data;
}

// A random id kept by this browser: the server allows one training job per client.
export function clientId() {
  let id = localStorage.getItem("neuronlab.client");
  if (!id) {
    id = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem("neuronlab.client", id);
  }
  return id;
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
