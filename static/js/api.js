// The one network client: JSON over HTTP and a self-healing WebSocket.

export async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || `HTTP ${response.status}`);
  return body;
}

export function pageConfig() {
  return JSON.parse(document.getElementById("page-config").textContent);
}

// A WebSocket that reconnects with backoff. `onMessage(obj)` gets parsed JSON; `onState(s)` gets
// "open" | "closed". `onOpen()` runs after every (re)connection so the page can resend its state.
export class LiveSocket {
  constructor(path, { onMessage, onState = () => {}, onOpen = () => {} }) {
    Object.assign(this, { path, onMessage, onState, onOpen, delay: 250, ws: null, stopped: false });
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${this.path}`);
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
