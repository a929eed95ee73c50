// The interface text of this page's language (from the server: app/i18n/<lang>.json), by key.
const config = JSON.parse(document.getElementById("page-config").textContent);
const strings = config.strings || {};

export const lang = config.lang || "en";

// The text for `key`, with {name} placeholders filled from `values`; `fallback` if it is missing.
export function t(key, fallback = key, values = {}) {
  const text = strings[key] ?? fallback;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in values ? String(values[name]) : m));
}

// The text for a count: `one` when n is 1, `other` otherwise (both keys translated), n filled in.
export function tn(n, one, other, values = {}) {
  return t(n === 1 ? one : other, undefined, { ...values, n });
}
