// Why CNNs, in numbers: the slides' rows (an image into a first dense layer, lessons 002 and 004)
// editable, each counted by the server (POST /api/parameters) as a dense layer and, beside it, as
// a conv layer of 3x3 filters; and the slides' 3-4-5-3-2 table (POST /api/parameters/network).
import { t as tr } from "./i18n.js";
import { getJSON, sendJSON } from "./api.js";
import { $ } from "./dom.js";
import { count } from "./format.js";

const S = { info: null, rows: [], loaded: false };

const sum = (answer) => `${count(answer.weights)} + ${count(answer.biases)} = ${count(answer.params)}`;

function numberInput(value, label, onChange, max) {
  const input = document.createElement("input");
  Object.assign(input, { type: "number", min: "1", max: String(max), step: "1", value: String(value) });
  input.setAttribute("aria-label", label);
  input.addEventListener("change", () => onChange(Number(input.value)));
  return input;
}

function cell(row, content, cls = "") {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  td.append(...[].concat(content));
  row.append(td);
  return td;
}

// What the slide says, and where the server's count differs from it.
function slideNote(row, dense) {
  const ex = row.example;
  if (!ex || ex.input.join() !== [row.c, row.h, row.w].join() || ex.units !== row.units) return "—";
  const where = tr("lesson {n}", undefined, { n: ex.lesson });
  const notes = [`“${ex.says}” (${where})`];
  if (ex.slide_weights === undefined) {
    notes.push(dense.inputs === ex.slide_inputs ? tr("The same number of inputs.") : tr("The slide says {n} inputs.", undefined, { n: count(ex.slide_inputs) }));
  } else if (ex.slide_weights === dense.weights) {
    notes.push(tr("The same weights; the slide leaves out the {b} biases: {p} parameters in all.", undefined,
      { b: count(dense.biases), p: count(dense.params) }));
  } else {
    notes.push(tr("The slide rounds: counted exactly, {w} weights and {b} biases ({p} in all).", undefined,
      { w: count(dense.weights), b: count(dense.biases), p: count(dense.params) }));
  }
  return notes.join(" ");
}

async function countRow(row) {
  const input = [row.c, row.h, row.w];
  const [dense, conv] = await Promise.all([
    sendJSON("POST", "/api/parameters", { input, layers: [{ type: "dense", units: row.units }] }),
    sendJSON("POST", "/api/parameters", { input, layers: [{ type: "conv", filters: row.filters, kernel: S.info.conv.kernel }] }),
  ]);
  return { dense, conv };
}

// Each cell named by its column's heading (a phone shows each row as a card of named cells).
function labelCells(table) {
  const headings = [...(table.tHead?.rows[0]?.cells || [])].map((th) => th.textContent);
  for (const row of table.tBodies[0].rows) [...row.cells].forEach((td, i) => { td.dataset.label = headings[i] || ""; });
}

// One table row per image: its inputs are made once (typing keeps its place), its counts redone.
function renderRows() {
  const limit = S.info.limits.side;
  $("why-table").tBodies[0].replaceChildren(...S.rows.map((row) => {
    const line = document.createElement("tr");
    const again = (key) => (v) => { row[key] = v; recount(row); };
    const shape = document.createElement("span");
    shape.className = "why-shape";
    shape.append(numberInput(row.h, tr("Height"), again("h"), limit), "×", numberInput(row.w, tr("Width"), again("w"), limit),
      "×", numberInput(row.c, tr("Channels"), again("c"), S.info.limits.channels));
    cell(line, shape);
    row.cells = { inputs: cell(line, "…", "why-inputs") };
    cell(line, numberInput(row.units, tr("Dense units"), again("units"), 4096));
    row.cells.dense = cell(line, "…", "why-dense");
    cell(line, numberInput(row.filters, tr("Conv filters"), again("filters"), 512));
    row.cells.conv = cell(line, "…", "why-conv");
    row.cells.slide = cell(line, "…", "why-slide");
    return line;
  }));
  labelCells($("why-table"));
  return Promise.all(S.rows.map(recount));
}

async function recount(row) {
  const asked = (row.asked = (row.asked || 0) + 1);
  const answer = await countRow(row).catch((err) => ({ error: err.message }));
  if (asked !== row.asked) return;  // a newer edit of this row is being counted
  $("why-error").textContent = answer.error || "";
  row.cells.inputs.textContent = answer.error ? "—" : count(answer.dense.inputs);
  row.cells.dense.textContent = answer.error ? answer.error : sum(answer.dense);
  row.cells.conv.textContent = answer.error ? "—" : sum(answer.conv);
  row.cells.slide.textContent = answer.error ? "—" : slideNote(row, answer.dense);
}

async function renderNetwork() {
  const sizes = $("why-sizes").value.split(/[\s,;-]+/).filter(Boolean).map(Number);
  const body = $("why-network");
  try {
    const table = await sendJSON("POST", "/api/parameters/network", { sizes });
    $("why-network-error").textContent = "";
    body.tBodies[0].replaceChildren(...table.rows.map((r) => {
      const row = document.createElement("tr");
      for (const v of [r.layer, r.inputs, r.nodes, r.weights, r.biases]) cell(row, typeof v === "number" ? count(v) : v);
      return row;
    }));
    const total = document.createElement("tr");
    for (const v of [tr("Total"), "", "", count(table.weights), count(table.biases)]) cell(total, v);
    body.tFoot.replaceChildren(total);
    const slide = S.info.network;
    $("why-network-note").textContent = sizes.join("-") === slide.sizes.join("-")
      ? tr("As on the slide of lesson {n}: {w} weights and {b} biases.", undefined, { n: slide.lesson, w: slide.weights, b: slide.biases })
      : tr("Each layer has inputs × nodes weights and one bias per node.");
  } catch (err) {
    body.tBodies[0].replaceChildren();
    body.tFoot.replaceChildren();
    $("why-network-error").textContent = err.message;
  }
}

function slidesRows() {
  S.rows = S.info.examples.map((ex) => ({ c: ex.input[0], h: ex.input[1], w: ex.input[2], units: ex.units,
                                          filters: S.info.conv.filters, example: ex }));
}

export async function showWhy() {
  if (S.loaded) return;
  S.loaded = true;
  S.info = await getJSON("/api/parameters");
  slidesRows();
  await Promise.all([renderRows(), renderNetwork()]);
}

$("why-add").addEventListener("click", () => {
  S.rows.push({ c: 1, h: 28, w: 28, units: 128, filters: S.info.conv.filters, example: null });
  renderRows();
});
$("why-slides").addEventListener("click", () => { slidesRows(); renderRows(); });
$("why-sizes").addEventListener("change", renderNetwork);
