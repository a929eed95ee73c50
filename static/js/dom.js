// The one DOM shorthand every page module uses.
export const $ = (id) => document.getElementById(id);
