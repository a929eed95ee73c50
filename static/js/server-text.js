// What the server says, in the reader's language. The server speaks English (its messages are
// for every client, scripts included); a page translates here, by the error's code and by a
// shipped model's id. Anything without a translation stays as the server said it.
import { t, tn } from "./i18n.js";

// The codes a refusal can carry on the photo and prediction paths (POST /api/predict,
// /api/saliency, /api/projects/{id}/predict and /samples, GET /api/models/{id}): their texts are
// "error.<code>" in app/i18n/<lang>.json. English has none of them: there the server's own
// message, which is more precise ("This is a PDF document, not an image."), is shown.
export const REFUSALS = [
  "image_empty", "image_unsupported", "image_corrupt", "image_too_large", "image_blank",  // the file
  "body_too_large", "bad_length",                     // the upload, refused before it is read
  "unknown_model", "no_photo_network", "not_trained",  // the model asked for
  "project_not_found", "class_not_found", "no_class", "too_many_samples",  // a project's photos
  "invalid_request", "disk_full", "database_unavailable", "internal",
];

// The refusal `err` (an Error thrown by api.js: .code, .message, .status) as the reader's text.
// No code and no status: the server was not reached at all.
export function refusal(err) {
  if (err?.code) return t(`error.${err.code}`, err.message);
  if (err && err.status === undefined && err.name === "TypeError") return t("error.offline", err.message);
  return err?.message ?? String(err);
}

// A model's name to show: a shipped model's (by its id: "model.<id>") and a name the server made
// for a model trained here (from its parts: network, data, accuracy, time) in the reader's
// language; a name a person gave is shown as it was given.
export function modelName(m) {
  if (m.made_name) return madeName(m.made_name);
  return m.trained_here ? m.name : t(`model.${m.id}`, m.name);
}

function madeName({ network, layers, data, accuracy, trained, lr }) {
  const lang = document.documentElement.lang || "en";
  const when = new Date(trained * 1000).toLocaleString(lang, { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" });
  const net = network ? t(network) : tn(layers, "Custom network ({n} layer)", "Custom network ({n} layers)");
  const name = `${net} · ${t(data)} · ${(accuracy * 100).toFixed(1)}% · ${when}`;
  return lr === null || lr === undefined ? name : `${name} (lr ${lr})`;
}
