// The "Your devices" page: lists the user's sessions and signs them out.
import { SessionsClient } from "./sessionsvc-client.js";

const root = document.getElementById("app");
const client = new SessionsClient({ api: root.dataset.api });
const list = document.getElementById("sessions");
const announcer = document.getElementById("announce");
const dialog = document.getElementById("confirm");
const actionError = document.getElementById("action-error");
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const exact = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const UNITS = [
  ["year", 31_536_000],
  ["month", 2_592_000],
  ["week", 604_800],
  ["day", 86_400],
  ["hour", 3_600],
  ["minute", 60],
  ["second", 1],
];

function known(value) {
  return value && value !== "unknown" ? value : null;
}

/** "Chrome 120 on Windows": what a person calls the device. */
function deviceName({ browser, version, os }) {
  const major = known(version)?.split(".")[0];
  const name = [known(browser) ?? "Unknown browser", major].filter(Boolean).join(" ");
  return known(os) ? `${name} on ${os}` : name;
}

function ago(iso) {
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  const [unit, size] = UNITS.find(([, size]) => Math.abs(seconds) >= size) ?? ["second", 1];
  return relative.format(Math.round(seconds / size), unit);
}

function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((child) => child !== null));
  return node;
}

function timeOf(iso) {
  const shown = exact.format(new Date(iso));
  const node = element("time", { dateTime: iso, tabIndex: 0, title: shown }, ago(iso));
  node.dataset.exact = shown;
  return node;
}

function detail(term, value) {
  return value === null ? [] : [element("dt", {}, term), element("dd", {}, value)];
}

// RFC 8176's method names, in words; a name not here is shown as it is.
const METHODS = {
  pwd: "Password",
  otp: "authenticator app",
  hwk: "security key",
  swk: "passkey",
  sms: "text message",
  tel: "phone call",
  pin: "PIN",
  fpt: "fingerprint",
  face: "face recognition",
  iris: "iris scan",
  retina: "retina scan",
  vbm: "voice",
  sc: "smart card",
  kba: "security questions",
  geo: "location",
  pop: "device key",
  user: "presence check",
  wia: "Windows sign-in",
  mca: "several channels",
  rba: "risk check",
  mfa: "multiple factors",
};

/** "Password and authenticator app": how the user signed in, from the session's amr. */
function methodsOf(amr) {
  if (!Array.isArray(amr) || amr.length === 0) return null;
  const words = amr.map((name) => METHODS[name] ?? name);
  words[0] = words[0].charAt(0).toUpperCase() + words[0].slice(1);
  return words.length === 1 ? words[0] : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
}

// The user's known devices by id (GET /devices), for their own names.
let knownDevices = new Map();

/** When the session ends: its expireAt, and for one not remembered, when the browser closes. */
function ends(session) {
  const end = timeOf(session.expireAt);
  if (session.persistent !== false) return end;
  return element("span", {}, "Signed out when the browser closes, at the latest ", end);
}

function row(session) {
  const device = knownDevices.get(session.deviceId);
  const name = device?.ownName || deviceName(session.device); // the user's own name first
  const location = known(session.location);
  const heading = element("h3", { id: `session-${session._id}` }, name);
  const badges = element("span", { className: "badges" });
  if (session.current) badges.append(element("span", { className: "badge current" }, "This device"));
  if (session.device.isDev) badges.append(element("span", { className: "badge dev" }, "Developer tool"));
  // Opened by support staff on the user's behalf (docs/support-sessions.md): who, and why.
  const support = session.support ?? null;
  if (support) badges.append(element("span", { className: "badge support" }, "Support session"));
  if (badges.childElementCount) heading.append(" ", badges);
  const details = element(
    "dl",
    { className: "details" },
    ...detail("Browser", device?.ownName ? deviceName(session.device) : null),
    ...detail("Opened by", support && `Support staff (${support.actor})`),
    ...detail("Reason", support && support.reason),
    ...detail("Device", known(session.device.platform)),
    ...detail("Location", location ?? "Unknown location"),
    ...detail("IP address", known(session.ip)),
    ...detail("Signed in", timeOf(session.createdAt)),
    ...detail("Signed in with", methodsOf(session.amr)),
    ...detail("Last active", timeOf(session.lastActiveAt ?? session.createdAt)),
    ...detail("Ends", ends(session)),
  );
  const item = element("li", { className: "session" }, element("div", { className: "summary" }, heading, details));
  item.dataset.sessionId = session._id;
  if (device) {
    item.dataset.deviceId = device.id;
    const rename = element("button", { type: "button", className: "secondary" }, "Rename");
    rename.setAttribute("aria-label", `Rename ${name}`);
    rename.addEventListener("click", () => renameDevice(device, rename));
    const actions = element("div", { className: "device-actions" }, rename);
    if (!session.current) {
      // This one is left by "Sign out everywhere", as its sessions are.
      const forget = element("button", { type: "button", className: "secondary" }, "Forget this device");
      forget.setAttribute("aria-label", `Forget ${name}`);
      forget.addEventListener("click", () => forgetDevice(device, forget));
      actions.append(forget);
    }
    item.append(actions);
  }
  if (!session.current) {
    const label = location ? `${name}, ${location}` : name;
    const button = element("button", { type: "button", className: "secondary" }, "Sign out");
    button.setAttribute("aria-label", `Sign out ${label}`);
    button.addEventListener("click", () => signOutOne(session._id, label, item));
    item.append(button);
  }
  return item;
}

// Why a session ended, in words (docs/history.md has the reasons).
const REASONS = {
  signed_out: "Signed out",
  revoked_by_user: "Signed out from another device",
  revoked_by_admin: "Signed out by an administrator",
  signed_out_everywhere: "Signed out everywhere",
  evicted_by_cap: "Ended because too many devices were signed in",
  refresh_token_reused: "Ended because its refresh token was reused",
  reported_not_me: "Ended because you said the sign-in was not you",
  expired: "Expired",
  idle: "Ended after a time without use",
};
const historyList = document.getElementById("history");

function activity(ended) {
  // The user's own name for its device while the device is known, as the list above says it.
  const own = knownDevices.get(ended.deviceId)?.ownName;
  const name = own || (ended.device ? deviceName(ended.device) : "A device");
  const location = known(ended.location);
  const details = [
    ...detail("Location", location),
    ...detail("IP address", known(ended.ip)),
    ...detail("Signed in", ended.createdAt ? timeOf(ended.createdAt) : null),
  ];
  const item = element(
    "li",
    { className: "ended" },
    element("h3", {}, name),
    element("p", { className: "reason" }, REASONS[ended.reason] ?? "Signed out", " ", timeOf(ended.endedAt)),
    details.length ? element("dl", { className: "details" }, ...details) : null,
  );
  item.dataset.sessionId = ended._id;
  item.dataset.reason = ended.reason;
  return item;
}

/** Fill "Recent activity"; a failure there leaves the list of devices as it is. */
async function loadHistory() {
  const failed = document.getElementById("history-error");
  try {
    const { sessions } = await client.history();
    historyList.replaceChildren(...sessions.map(activity));
    document.getElementById("history-empty").hidden = sessions.length > 0;
    failed.hidden = true;
  } catch (error) {
    if (error.status === 401 || error.status === 403) return; // the page shows signed out
    failed.hidden = false;
  }
}

function show(state) {
  root.dataset.state = state;
  for (const section of root.querySelectorAll(".state")) {
    section.hidden = section.id !== `state-${state}`;
  }
}

function announce(message) {
  announcer.textContent = message;
}

function showOnlyThisNote() {
  const others = list.querySelectorAll("li:not(:has(.current))").length;
  document.getElementById("only-this").hidden = others > 0;
  document.getElementById("sign-out-others").hidden = others === 0;
}

/**
 * "Signed in as alice": always in sight above the list, so a browser signed in
 * to someone else's account (a planted refresh cookie: docs/browser.md) is noticed.
 */
function showAccount() {
  const account = client.account;
  const who = document.getElementById("account-name");
  if (!account) {
    who.replaceChildren();
    return;
  }
  const id = element("span", { className: "user-id" }, `(${account.userId})`);
  who.replaceChildren(...(account.name ? [account.name, " ", id] : [account.userId]));
}

function render(sessions) {
  showAccount();
  // This device first, then the others as the service lists them (newest first).
  const ordered = [...sessions].sort((a, b) => Number(b.current) - Number(a.current));
  list.replaceChildren(...ordered.map(row));
  showOnlyThisNote();
  show("list");
  performance.mark("sessions-rendered"); // make bench reads it
}

function showError(error, focus = true) {
  if (error.status === 401 || error.status === 403) {
    show("signed-out");
  } else if (error.status === 429) {
    const wait = error.retryAfter ?? 60;
    document.getElementById("rate-limited-when").textContent =
      `Please try again ${relative.format(wait >= 60 ? Math.ceil(wait / 60) : wait, wait >= 60 ? "minute" : "second")}.`;
    show("rate-limited");
  } else if (error.status === 503 || error.status === 0) {
    show("unavailable");
  } else {
    document.getElementById("failed-detail").textContent = `Your devices could not be loaded (${error.code}).`;
    show("failed");
  }
  if (focus) root.querySelector(`#state-${root.dataset.state} h2`)?.focus();
}

async function load({ focus = false } = {}) {
  try {
    const [{ sessions }, devices] = await Promise.all([
      client.list(),
      client.devices().catch(() => ({ devices: [] })), // names are a nicety: the list comes first
    ]);
    knownDevices = new Map(devices.devices.map((device) => [device.id, device]));
    render(sessions);
    if (focus) document.getElementById("title").focus();
    await loadHistory();
  } catch (error) {
    showError(error, focus);
  }
}

function confirmed(title, text, action) {
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = action;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
  });
}

function failedAction(error) {
  if (error.status === 429) return "Too many attempts: wait a minute, then try again.";
  if (error.status === 503 || error.status === 0) {
    return "The session service is unavailable right now; nothing was signed out. Try again in a moment.";
  }
  return `That did not work (${error.code}). Try again.`;
}

async function act(run, busy) {
  actionError.hidden = true;
  busy.disabled = true;
  try {
    return await run();
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      showError(error);
    } else {
      actionError.textContent = failedAction(error);
      actionError.hidden = false;
      actionError.tabIndex = -1;
      actionError.focus();
    }
    return null;
  } finally {
    busy.disabled = false;
  }
}

async function signOutOne(id, label, item) {
  if (!(await confirmed(`Sign out ${label}?`, "That device will have to sign in again.", "Sign out"))) return;
  const button = item.querySelector(":scope > button");
  const done = await act(() => client.revoke(id), button);
  if (done === null) return; // act() has said why, and moved the focus there
  // Focus goes to the next row's button, else the previous one's, else the list.
  const next = item.nextElementSibling ?? item.previousElementSibling;
  item.remove();
  showOnlyThisNote();
  announce(`Signed out ${label}.`);
  loadHistory();
  const nextButton = next?.querySelector(":scope > button") ?? next?.querySelector("button");
  (nextButton ?? document.getElementById("list-title")).focus();
}

document.getElementById("sign-out-others").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  if (!(await confirmed("Sign out of all other devices?", "Every device but this one will have to sign in again.", "Sign out others"))) return;
  if ((await act(() => client.revokeOthers(), button)) === null) return;
  for (const item of list.querySelectorAll("li:not(:has(.current))")) item.remove();
  showOnlyThisNote();
  announce("Signed out of all other devices.");
  loadHistory();
  document.getElementById("list-title").focus();
});

document.getElementById("sign-out-everywhere").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  if (!(await confirmed("Sign out everywhere?", "Every device, this one too, will have to sign in again.", "Sign out everywhere"))) return;
  await act(() => client.revokeAll(), button);
});

for (const retry of root.querySelectorAll(".retry")) {
  retry.addEventListener("click", () => load({ focus: true }));
}

client.addEventListener("signedout", () => {
  list.replaceChildren();
  show("signed-out");
  announce("You are signed out.");
  document.getElementById("signed-out-title").focus();
});
// A sign-in in another tab of the site: show its list here too.
client.addEventListener("refreshed", () => {
  if (root.dataset.state === "signed-out") load();
});

const devForm = document.getElementById("dev-sign-in");
devForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(devForm);
  const response = await fetch(root.dataset.devSignIn, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Requested-With": "sessionsvc" },
    body: JSON.stringify({ userId: form.get("userId"), userAgent: form.get("userAgent") }),
  });
  const body = await response.json();
  if (!response.ok) {
    announce(body.error);
    return;
  }
  client.signedIn(body.accessToken);
  await load({ focus: true });
});

// Relative times drift: "just now" becomes "2 minutes ago".
setInterval(() => {
  for (const node of root.querySelectorAll("time")) node.textContent = ago(node.dateTime);
}, 30_000);

load();

const renameDialog = document.getElementById("rename");
const renameInput = document.getElementById("rename-name");

function askName(current) {
  renameInput.value = current;
  renameDialog.returnValue = "";
  renameDialog.showModal();
  renameInput.select();
  return new Promise((resolve) => {
    renameDialog.addEventListener(
      "close",
      () => resolve(renameDialog.returnValue === "save" ? renameInput.value.trim() : null),
      { once: true },
    );
  });
}

async function renameDevice(device, button) {
  const name = await askName(device.ownName || device.name);
  if (!name || name === device.ownName) {
    button.focus();
    return;
  }
  const renamed = await act(() => client.renameDevice(device.id, name), button);
  if (renamed === null) return;
  knownDevices.set(device.id, { ...device, ...renamed });
  await load();
  announce(`Renamed to ${renamed.name}.`);
  list.querySelector(`li[data-device-id="${CSS.escape(device.id)}"] .device-actions button`)?.focus();
}

async function forgetDevice(device, button) {
  const text = device.sessionIds.length
    ? "It will be signed out, and the next sign-in from it will count as a new device."
    : "The next sign-in from it will count as a new device.";
  if (!(await confirmed(`Forget ${device.name}?`, text, "Forget this device"))) return;
  const done = await act(() => client.forgetDevice(device.id), button);
  if (done === null) return;
  if (list.querySelector(`li[data-device-id="${CSS.escape(device.id)}"] .current`)) {
    show("signed-out");
    return;
  }
  for (const item of list.querySelectorAll(`li[data-device-id="${CSS.escape(device.id)}"]`)) item.remove();
  knownDevices.delete(device.id);
  showOnlyThisNote();
  announce(`Forgot ${device.name}.`);
  loadHistory();
  document.getElementById("list-title").focus();
}
