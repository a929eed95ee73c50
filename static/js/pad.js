// A drawing pad: strokes from mouse, finger or pen on a square canvas, in coordinates 0..1, and
// the PNG frame (280x280, black ink on white) the server reads. Used by /draw and /join.

export const FRAME_SIZE = 280;

export function paintStrokes(canvas, strokes, widthScale = 1) {
  const ctx = canvas.getContext("2d");
  const s = canvas.width;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, s, s);
  ctx.strokeStyle = "#000";
  ctx.fillStyle = "#000";
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const stroke of strokes) {
    ctx.lineWidth = (stroke.width * widthScale / FRAME_SIZE) * s;
    const [first, ...rest] = stroke.points;
    if (!rest.length) {            // a dot
      ctx.beginPath();
      ctx.arc(first[0] * s, first[1] * s, ctx.lineWidth / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(first[0] * s, first[1] * s);
    for (const [x, y] of rest) ctx.lineTo(x * s, y * s);
    ctx.stroke();
  }
}

export class DrawingPad {
  // onChange(strokeEnded) runs after every change: each pointer move, and once more when a stroke ends.
  // frameSize: the side of the PNG frames sent (smaller is cheaper for the server to read).
  constructor(canvas, { onChange = () => {}, pen = 24, frameSize = FRAME_SIZE } = {}) {
    Object.assign(this, { canvas, onChange, pen, strokes: [], current: null });
    this.frame = document.createElement("canvas");
    this.frame.width = this.frame.height = frameSize;
    this.frame.getContext("2d", { willReadFrequently: true });  // its first context: "try to break it" reads it back
    canvas.addEventListener("pointerdown", (event) => {
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      this.current = { width: this.pen, points: [this.pointOf(event)] };
      this.strokes.push(this.current);
      this.changed(false);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!this.current) return;
      const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
      for (const e of events.length ? events : [event]) this.current.points.push(this.pointOf(e));
      this.changed(false);
    });
    for (const type of ["pointerup", "pointercancel"]) {
      canvas.addEventListener(type, () => {
        if (!this.current) return;
        this.current = null;
        this.changed(true);
      });
    }
    window.addEventListener("resize", () => this.resize());
  }

  pointOf(event) {
    const r = this.canvas.getBoundingClientRect();
    return [Math.min(Math.max((event.clientX - r.left) / r.width, 0), 1),
            Math.min(Math.max((event.clientY - r.top) / r.height, 0), 1)];
  }

  changed(strokeEnded) {
    paintStrokes(this.canvas, this.strokes);
    this.onChange(strokeEnded);
  }

  resize() {
    const size = Math.round(this.canvas.getBoundingClientRect().width * (window.devicePixelRatio || 1));
    if (size > 0 && this.canvas.width !== size) { this.canvas.width = this.canvas.height = size; }
    paintStrokes(this.canvas, this.strokes);
  }

  undo() { this.strokes.pop(); this.changed(true); }

  clear() { this.strokes = []; this.changed(true); }

  get empty() { return this.strokes.length === 0; }

  // The frame sent to the server; `change(frame, paint)` may draw it otherwise (see robust.js).
  frameBlob(change = null) {
    if (change) change(this.frame, (canvas, widthScale) => paintStrokes(canvas, this.strokes, widthScale));
    else paintStrokes(this.frame, this.strokes);
    return new Promise((resolve) => this.frame.toBlob(resolve, "image/png"));
  }
}
