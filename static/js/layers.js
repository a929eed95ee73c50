// The architecture editor: a preset or a hand-edited layer list, shown as the slides count it
// (each layer's output shape, weights and biases, and the total), checked by the server.
import { t } from "./i18n.js";
import { getJSON, sendJSON } from "./api.js";
import { count } from "./format.js";

// New layers: `size` is the filters of a conv, the units of a dense layer, a dropout percent.
const NEW_LAYERS = {
  conv: (act, size) => ({ type: "conv", filters: size, kernel: 3, padding: "same", activation: act }),
  pool: () => ({ type: "pool", size: 2 }),
  dense: (act, size) => ({ type: "dense", units: size, activation: act }),
  dropout: (act, size) => ({ type: "dropout", rate: Math.min(size, 90) / 100 }),
  batchnorm: () => ({ type: "batchnorm" }),
};

export class LayerEditor {
  constructor({ select, tbody, total, onChange }) {
    Object.assign(this, { select, tbody, total, onChange, presets: {}, layers: [], preset: null });
    select.addEventListener("change", () => this.choose(select.value));
  }

  async init(name) {
    const { presets } = await getJSON("/api/architectures");
    for (const p of presets) {
      this.presets[p.name] = p;
      this.select.append(new Option(t(p.title), p.name));  // the server's English title, translated
    }
    this.select.append(new Option(t("Custom (edited)"), "custom"));
    await this.choose(this.presets[name] ? name : "mnist_recipe");
  }

  async choose(name) {
    if (name === "custom") return;
    this.preset = name;
    this.select.value = name;
    this.layers = structuredClone(this.presets[name].layers);
    await this.refresh();
  }

  // The value for POST /api/train: the preset's name while unedited, else the layer list.
  value() {
    return this.preset || this.layers;
  }

  async edit(change) {
    change(this.layers);
    this.preset = null;
    this.select.value = "custom";
    await this.refresh();
  }

  add(type, activation, size) {
    const act = activation === "none" ? null : activation;
    return this.edit((layers) => layers.push(NEW_LAYERS[type](act, Math.max(1, Math.round(size) || 16))));
  }

  async refresh() {
    try {
      const info = await sendJSON("POST", "/api/architectures/describe", { architecture: this.value() });
      this.render(info);
      this.onChange(null);
    } catch (err) {
      this.total.textContent = "";
      this.onChange(err.message);
    }
  }

  render(info) {
    this.tbody.replaceChildren();
    let lastLayer = -1;
    for (const row of info.layers) {
      const tr = document.createElement("tr");
      const shape = row.output.length === 3 ? `${row.output[1]}×${row.output[2]}×${row.output[0]}` : `${row.output[0]}`;
      for (const text of [row.label, shape, row.weights ? count(row.weights) : "", row.biases ? count(row.biases) : ""]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      const cell = document.createElement("td");
      if (row.layer !== null && row.layer !== lastLayer && row.type !== "Flatten") {
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "remove";
        remove.textContent = "✕";
        remove.setAttribute("aria-label", `Remove ${row.label}`);
        const index = row.layer;
        remove.addEventListener("click", () => this.edit((layers) => layers.splice(index, 1)));
        cell.append(remove);
      }
      if (row.type !== "Flatten") lastLayer = row.layer ?? lastLayer;
      tr.append(cell);
      this.tbody.append(tr);
    }
    this.total.textContent = `· ${t(info.fits ? "{n} parameters" : "{n} parameters (too large for this server)", undefined, { n: count(info.parameters) })}`;
  }
}
