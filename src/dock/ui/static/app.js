// The armorer's view of the dock: polls GET /api/v1/bays every second and keeps one card per bay.
// Cards are updated in place (never rebuilt), so a half-typed officer id or focus survives a poll.
// Actions send the armorer token as a Bearer header; the API decides who may act, the page only
// shows its one-line answer.
"use strict";

const POLL_MS = 1000;
const TOKEN_KEY = "bwc.dock.armorerToken";

const STATES = {
  identifying: { text: "Identifying", icon: "…" },
  offloading: { text: "Offloading", icon: "⇅" },
  updating: { text: "Updating", icon: "↻" },
  done: { text: "Done", icon: "✓" },
  needs_attention: { text: "Needs attention", icon: "!" },
  left: { text: "Left the dock", icon: "–" },
};

const cards = new Map(); // card key -> {el, state}
const quarantineItems = new Map(); // quarantine id -> element
let quarantinedCount = 0;

const $ = (id) => document.getElementById(id);

function cardKey(bay) {
  return bay.serial ? `serial:${bay.serial}` : `bay:${bay.bay}`;
}

function domId(text) {
  return text.replace(/[^A-Za-z0-9_-]/g, "_");
}

function formatBytes(n) {
  if (n === null || n === undefined) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function capitalised(text) {
  const word = String(text || "");
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function setText(root, selector, text) {
  const el = root.querySelector(selector);
  if (el.textContent !== text) el.textContent = text;
}

// ---- the armorer token and actions ---------------------------------------------------------

function askToken() {
  const dialog = $("token-dialog");
  const input = $("token-input");
  input.value = "";
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve(dialog.returnValue === "use" ? input.value.trim() : null),
      { once: true },
    );
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
  });
}

async function armorerToken() {
  const kept = sessionStorage.getItem(TOKEN_KEY);
  if (kept !== null) return kept;
  const token = await askToken();
  if (token === null) return null; // cancelled: no request
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  showTokenState();
  return token; // may be "": the request goes without one and the API says what is missing
}

function showTokenState() {
  const signedIn = sessionStorage.getItem(TOKEN_KEY) !== null;
  $("sign-in").hidden = signedIn;
  $("sign-out").hidden = !signedIn;
}

// The token goes with reads too: on loopback they need none, but from another machine they do.
function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") return body.error;
  } catch (_) {
    // not JSON: fall through to the status line
  }
  return `The dock answered ${response.status} ${response.statusText}`.trim();
}

// POSTs ``body`` to ``path`` as the armorer; writes the outcome into ``resultEl``.
async function act(path, body, resultEl, doneText) {
  const token = await armorerToken();
  if (token === null) return false;
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  resultEl.classList.remove("error", "ok");
  resultEl.textContent = "Sending…";
  let response;
  try {
    response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  } catch (_) {
    resultEl.textContent = "The dock did not answer: check that it is running, then try again.";
    resultEl.classList.add("error");
    return false;
  }
  if (response.ok) {
    resultEl.textContent = doneText;
    resultEl.classList.add("ok");
    poll();
    return true;
  }
  if (response.status === 401 || response.status === 403) {
    sessionStorage.removeItem(TOKEN_KEY); // ask again next time
    showTokenState();
  }
  resultEl.textContent = await errorText(response);
  resultEl.classList.add("error");
  return false;
}

// ---- bay cards ---------------------------------------------------------------------------

function newCard(bay) {
  const key = cardKey(bay);
  const el = $("bay-template").content.firstElementChild.cloneNode(true);
  const id = domId(key);
  const heading = el.querySelector(".serial");
  heading.id = `card-${id}`;
  el.querySelector("article").setAttribute("aria-labelledby", heading.id);
  el.dataset.key = key;
  const input = el.querySelector(".assign-input");
  input.id = `officer-${id}`;
  el.querySelector(".assign-label").htmlFor = input.id;
  const result = el.querySelector(".action-result");

  el.querySelector(".assign").addEventListener("submit", async (event) => {
    event.preventDefault();
    const serial = el.dataset.serial;
    const officer = input.value.trim();
    if (!serial || !officer) return;
    const path = `/api/v1/cameras/${encodeURIComponent(serial)}/officer`;
    if (await act(path, { officer_id: officer }, result, `Assigned to ${officer}.`)) {
      input.value = "";
    }
  });
  el.querySelector(".retry").addEventListener("click", () => {
    const serial = el.dataset.serial || null;
    act("/api/v1/retry", { serial }, result, "Waiting clips are trying again.");
  });
  $("bays").appendChild(el);
  return { el, state: null, updating: false };
}

// ---- firmware and profile (docs/dock-api.md "Updates") -----------------------------------

const UPDATE_STEPS = {
  sending: "Sending",
  installing: "Installing",
  rebooting: "Rebooting",
  confirming: "Waiting for the camera to report healthy",
  done: "Done",
  failed: "Failed",
};

// What an update shows once it failed: its reason; else null.
function failedText(bay, kind) {
  const u = bay.update;
  if (!u || u.kind !== kind || u.step !== "failed") return null;
  return `failed: ${u.error || "no reason given"}`;
}

// The update of ``kind`` under way (not done, not failed), or null.
function inFlight(bay, kind) {
  const u = bay.update;
  return u && u.kind === kind && u.step !== "done" && u.step !== "failed" ? u : null;
}

// "1.2.0", "1.2.0 (trial)", "1.1.0 → 1.2.0" while updating, "failed: why" (as bwc dock status)
function firmwareText(bay) {
  const running = bay.firmware || "unknown";
  const u = inFlight(bay, "firmware");
  if (u) return `${running} → ${u.version}`;
  const shown = bay.firmware_state === "trial" ? `${running} (trial)` : running;
  return failedText(bay, "firmware") || shown;
}

function profileText(bay) {
  const id = bay.profile_id ? ` ${bay.profile_id.slice(0, 8)}` : "";
  const running = bay.profile_id ? `v${bay.profile_version}${id}` : "none";
  const u = inFlight(bay, "profile");
  if (u) return `${running} → v${u.version}`;
  return failedText(bay, "profile") || running;
}

function updateUpdate(card, bay) {
  const el = card.el;
  for (const kind of ["firmware", "profile"]) {
    const cell = el.querySelector(`.${kind}`);
    const text = kind === "firmware" ? firmwareText(bay) : profileText(bay);
    if (cell.textContent !== text) cell.textContent = text;
    cell.classList.toggle("update-failed", failedText(bay, kind) !== null);
  }
  const u = inFlight(bay, "firmware") || inFlight(bay, "profile");
  el.querySelector(".update").hidden = !u;
  if (u) {
    const total = u.bytes_total || 0;
    const done = u.bytes_done || 0;
    const sending = u.step === "sending" && total > 0;
    const what = u.kind === "firmware" ? `firmware ${u.version}` : `profile v${u.version}`;
    const step = UPDATE_STEPS[u.step] || capitalised(u.step);
    const percent = sending ? Math.floor((100 * done) / total) : 0;
    const bytes = sending ? ` · ${formatBytes(done)} of ${formatBytes(total)} (${percent}%)` : "";
    setText(el, ".update-text", `Updating ${what}: ${step}${bytes}`);
    const bar = el.querySelector(".update-bar");
    bar.max = sending ? total : 1;
    bar.value = sending ? Math.min(done, total) : 1;
    bar.setAttribute("aria-label", `Update of ${bay.serial || bay.bay}: ${step.toLowerCase()}`);
  } else if (card.updating && bay.update) {
    const outcome = bay.update.step === "done" ? "done" : "failed";
    announce(`${bay.serial || "Camera"}: ${bay.update.kind} update ${outcome}.`);
  }
  card.updating = Boolean(u);
}

function updateCard(card, bay) {
  const el = card.el;
  el.dataset.serial = bay.serial || "";
  const state = STATES[bay.state] || { text: bay.state, icon: "?" };
  el.dataset.state = bay.state;
  setText(el, ".serial", bay.serial || "Unknown camera");
  setText(el, ".state-text", state.text);
  setText(el, ".state-icon", state.icon);
  setText(el, ".bay-id", bay.bay);
  setText(el, ".officer", bay.officer_id || "not assigned");
  let battery = "unknown";
  if (bay.battery_percent !== null && bay.battery_percent !== undefined) {
    battery = `${Math.round(bay.battery_percent)}%${bay.charging ? ", charging" : ""}`;
  }
  setText(el, ".battery", battery);
  setText(el, ".clips", `${bay.clips_pending} pending, ${bay.clips_done} done`);

  const transferBox = el.querySelector(".transfer");
  const bar = el.querySelector(".transfer-bar");
  const t = bay.transfer;
  if (t) {
    const total = t.bytes_total || 0;
    const done = t.bytes_done || 0;
    const percent = total > 0 ? Math.floor((100 * done) / total) : 0;
    setText(
      el,
      ".transfer-text",
      `${capitalised(t.step)} clip ${String(t.clip_id).slice(0, 12)} · ${formatBytes(done)} of ` +
        `${formatBytes(total)} (${percent}%)`,
    );
    bar.max = total > 0 ? total : 1;
    bar.value = Math.min(done, bar.max);
    bar.setAttribute("aria-label", `Transfer of ${bay.serial || bay.bay}: ${percent}%`);
    transferBox.hidden = false;
  } else {
    transferBox.hidden = true;
  }
  const lastError = el.querySelector(".last-error");
  lastError.hidden = !bay.last_error;
  setText(el, ".last-error", bay.last_error || "");
  updateUpdate(card, bay);
  el.querySelector(".assign-input").disabled = !bay.serial;
  el.querySelector(".assign button").disabled = !bay.serial;

  if (card.state !== bay.state) {
    announce(`${bay.serial || "Camera"} in bay ${bay.bay}: ${state.text.toLowerCase()}.`);
    card.state = bay.state;
  }
}

function announce(message) {
  const line = document.createElement("p");
  line.textContent = message;
  const announcer = $("announcer");
  announcer.appendChild(line);
  while (announcer.childElementCount > 5) announcer.firstElementChild.remove();
}

function renderBays(status) {
  const dock = status.dock || {};
  setText(document, "#dock-name", dock.name || "");
  setText(document, "#dock-store", dock.store || "not configured");
  const updated = dock.updated_at_ns ? new Date(dock.updated_at_ns / 1e6) : new Date();
  const updatedEl = $("dock-updated");
  updatedEl.dateTime = updated.toISOString();
  updatedEl.textContent = updated.toLocaleTimeString();

  const seen = new Set();
  for (const bay of status.bays || []) {
    const key = cardKey(bay);
    seen.add(key);
    let card = cards.get(key);
    if (!card) {
      card = newCard(bay);
      cards.set(key, card);
    }
    updateCard(card, bay);
  }
  for (const [key, card] of cards) {
    if (!seen.has(key)) {
      card.el.remove();
      cards.delete(key);
    }
  }
  $("no-bays").hidden = cards.size > 0;
  const waiting = status.unfinished_elsewhere || 0;
  quarantinedCount = status.quarantined || 0;
  setText(
    document,
    "#summary",
    `${cards.size} ${cards.size === 1 ? "camera" : "cameras"} · ` +
      `${quarantinedCount} quarantined · ${waiting} unfinished for cameras not docked`,
  );
}

// ---- quarantine --------------------------------------------------------------------------

function newQuarantineItem(entry) {
  const el = $("quarantine-template").content.firstElementChild.cloneNode(true);
  const input = el.querySelector(".release-input");
  input.id = `reason-${domId(String(entry.id))}`;
  el.querySelector(".release-label").htmlFor = input.id;
  const result = el.querySelector(".action-result");
  el.querySelector(".release").addEventListener("submit", (event) => {
    event.preventDefault();
    const reason = input.value.trim();
    if (!reason) return;
    const path = `/api/v1/quarantine/${encodeURIComponent(entry.id)}/release`;
    act(path, { reason }, result, "Released: the clip is fetched and checked again.");
  });
  $("quarantine").appendChild(el);
  return el;
}

function renderQuarantine(entries) {
  const seen = new Set();
  for (const entry of entries) {
    const key = String(entry.id);
    seen.add(key);
    let el = quarantineItems.get(key);
    if (!el) {
      el = newQuarantineItem(entry);
      quarantineItems.set(key, el);
    }
    const when = entry.at_ns ? new Date(entry.at_ns / 1e6).toLocaleString() : "";
    setText(el, ".q-what", `Clip ${entry.clip_id} of ${entry.device_id} · ${when}`);
    setText(el, ".q-why", entry.why);
  }
  for (const [key, el] of quarantineItems) {
    if (!seen.has(key)) {
      el.remove();
      quarantineItems.delete(key);
    }
  }
  $("quarantine-section").hidden = quarantineItems.size === 0;
}

// ---- polling -----------------------------------------------------------------------------

let timer = null;
let polling = false;

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store", headers: authHeaders() });
  if (!response.ok) throw new Error(await errorText(response));
  return response.json();
}

async function poll() {
  if (polling) return;
  polling = true;
  clearTimeout(timer);
  const banner = $("connection");
  try {
    renderBays(await getJson("/api/v1/bays"));
    if (quarantinedCount > 0 || quarantineItems.size > 0) {
      renderQuarantine(await getJson("/api/v1/quarantine"));
    }
    banner.hidden = true;
  } catch (error) {
    const text =
      error instanceof TypeError
        ? "The dock is not answering: showing the last known state, retrying every second."
        : String(error.message || error);
    if (banner.textContent !== text) banner.textContent = text;
    banner.hidden = false;
  } finally {
    polling = false;
    timer = setTimeout(poll, POLL_MS);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const globalResult = $("global-result");
  $("retry-all").addEventListener("click", async () => {
    globalResult.hidden = false;
    await act("/api/v1/retry", { serial: null }, globalResult, "Waiting clips are trying again.");
  });
  $("sign-in").addEventListener("click", async () => {
    if ((await armorerToken()) !== null) poll();
  });
  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenState();
  });
  showTokenState();
  poll();
});
