// A page's state in its address, declared once as a table (TensorFlow Playground's way): each row
// names a parameter, reads it into the page's state, writes it back, and may say when it belongs
// in the address. A lesson link reproduces what the class saw; chrome.js keeps the lesson's own
// parameters (hide, note, projector) beside it.
import { setQuery } from "./chrome.js";

// Readers of a parameter's text; null means "not usable: keep the default".
export const text = (v) => v;
export const positive = (v) => (Number(v) > 0 && isFinite(Number(v)) ? Number(v) : null);
export const numbers = (v) => v.split(",").map(Number);

// A row for one property of the state: at("lr", (s) => s, "lr", { parse: positive }).
export function at(key, pick, name, options = {}) {
  return { key, get: (s) => pick(s)[name], set: (s, v) => { pick(s)[name] = v; }, ...options };
}

// A row for a form control, read and written as the control shows it (a checkbox is 1 or 0).
export function control(form, name) {
  const el = () => form.elements[name];
  return {
    key: name,
    get: () => (el().type === "checkbox" ? (el().checked ? "1" : "0") : el().value),
    set: (_, v) => { if (el().type === "checkbox") el().checked = v === "1"; else el().value = v; },
  };
}

// Fill the state from the address, row by row in the table's order.
export function readURL(table, state) {
  const params = new URLSearchParams(location.search);
  for (const row of table) {
    if (!params.has(row.key)) continue;
    const value = (row.parse || text)(params.get(row.key));
    if (value !== null && value !== undefined) row.set(state, value);
  }
  return state;
}

// Write the state into the address (replacing it: no history entry per change).
export function writeURL(table, state) {
  const params = new URLSearchParams();
  for (const row of table) {
    if (row.when && !row.when(state)) continue;
    const value = row.get(state);
    if (value === null || value === undefined) continue;
    params.set(row.key, (row.show || String)(value));
  }
  setQuery(params);
}
