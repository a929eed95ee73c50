// The address students should use to reach this server: what a lesson link, a lab report's QR
// code and the class session's join address give them. A page opened on the server itself
// (localhost, 127.0.0.1) has an address no student can reach: then the server's own network
// address (or NEURONLAB_PUBLIC_URL) is given instead, and a warning when none is known.
import { getJSON } from "./api.js";
import { t } from "./i18n.js";

let asked = null;

// {origin, others, warning}: the origin to give students ("http://192.168.1.10:8000"), the other
// addresses that also work, and a warning to show ("" when students can reach `origin`).
export function studentsAddress() {
  asked ??= getJSON("/api/server/addresses").then((found) => {
    const origin = (found.public_url || found.local) && found.urls[0] ? found.urls[0] : location.origin;
    const unreachable = found.local && origin === location.origin;
    const warning = !unreachable ? ""
      : found.listening_elsewhere === false && !found.public_url
        ? t("Students cannot reach {host}, and this server answers only on this computer: start it with --host 0.0.0.0 (scripts/serve.sh does), or set NEURONLAB_PUBLIC_URL.", undefined, { host: location.host })
        : t("Students cannot reach {host}: open this page with this computer's network address (or set NEURONLAB_PUBLIC_URL).", undefined, { host: location.host });
    return { origin, others: found.urls.filter((u) => u !== origin), warning };
  }).catch(() => ({ origin: location.origin, others: [], warning: "" }));  // the page's own address stays
  return asked;
}

// This page's address (or `path`, with its query) as students should open it.
export async function studentsLink(path = `${location.pathname}${location.search}`) {
  return `${(await studentsAddress()).origin}${path}`;
}
