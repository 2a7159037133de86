// Options: the gateway and the account (sign in / sign out), and the two opt-ins that need
// optional permissions, asked for at the moment the member turns them on.
import { ext } from "../browser.js";
import { describe } from "../messages.js";
import { AUTOMATIC_PERMISSIONS, STATUS_PERMISSIONS } from "../permissions.js";
import { MAX_BLOCKLIST_ENTRIES, getAuth, getSettings, updateSettings } from "../settings.js";
import { gatewayPattern, normaliseGateway, normaliseHost } from "../urls.js";

const $ = (id) => document.getElementById(id);
// Origins already granted, known before any click: a permission request must be made in the
// click itself, before the first await, or the browser refuses it.
let grantedOrigins = new Set();

function say(id, text, kind = "done") {
  const element = $(id);
  element.textContent = text;
  element.dataset.kind = kind;
  element.hidden = !text;
}

async function ask(message) {
  const reply = await ext.runtime.sendMessage(message);
  if (!reply?.ok) throw reply?.error ?? { code: "internal", message: "no answer" };
  return reply.answer;
}

async function loadGranted() {
  grantedOrigins = new Set((await ext.permissions.getAll()).origins ?? []);
}

function covered(pattern) {
  const scheme = pattern.split("//")[0];
  return grantedOrigins.has(pattern) || grantedOrigins.has(`${scheme}//*/*`);
}

async function renderAccount() {
  const [auth, settings] = await Promise.all([getAuth(), getSettings()]);
  $("signed-in").hidden = !auth;
  $("sign-in-form").hidden = Boolean(auth);
  if (auth) {
    $("who").textContent = `@${auth.handle}`;
    $("where").textContent = auth.gateway;
  } else if (!$("gateway").value) {
    $("gateway").value = settings.gateway;
  }
}

async function renderSettings() {
  const settings = await getSettings();
  $("show-status").checked = settings.showStatus;
  $("auto-flattr").checked = settings.autoFlattr;
  $("auto-only-declared").checked = settings.autoOnlyDeclared;
  $("auto-only-declared").disabled = !settings.autoFlattr;
  $("blocklist").value = settings.autoBlocklist.join("\n");
}

function onSignIn(event) {
  event.preventDefault();
  const gateway = normaliseGateway($("gateway").value);
  if (!gateway) {
    say("account-message", describe({ code: "invalid_gateway" }), "error");
    return;
  }
  const pattern = gatewayPattern(gateway);
  const permitted = covered(pattern)
    ? Promise.resolve(true)
    : ext.permissions.request({ origins: [pattern] }); // in the click, before any await
  signIn(gateway, permitted).catch((error) => say("account-message", describe(error), "error"));
}

async function signIn(gateway, permitted) {
  if (!(await permitted)) {
    say("account-message", describe({ code: "no_gateway_access" }), "error");
    return;
  }
  const button = $("sign-in");
  button.disabled = true;
  say("account-message", "Signing in…");
  try {
    const password = $("password");
    const answer = await ask({
      type: "sign-in", gateway, handle: $("handle").value.trim(), password: password.value,
    });
    password.value = "";
    say("account-message", `Signed in as @${answer.handle}.`);
    await loadGranted();
    await renderAccount();
  } finally {
    button.disabled = false;
  }
}

async function onSignOut() {
  $("sign-out").disabled = true;
  try {
    const done = await ask({ type: "sign-out" });
    const dropped = done.dropped ? ` ${done.dropped} flattr(s) waiting to be sent were dropped.` : "";
    if (done.revoked) say("account-message", `Signed out; the token is revoked.${dropped}`);
    else {
      say("account-message", `Signed out here, but the gateway could not revoke the token `
        + `(${describe(done.error)}).${dropped}`, "error");
    }
    await renderAccount();
  } catch (error) {
    say("account-message", describe(error), "error");
  } finally {
    $("sign-out").disabled = false;
  }
}

// Toggles: turning on asks for the permission in the click; turning off gives it back.
function toggle(setting, permissions) {
  return (event) => {
    const box = event.target;
    const enabling = box.checked;
    const asked = enabling ? ext.permissions.request(permissions) : Promise.resolve(true);
    applyToggle(setting, permissions, enabling, asked).catch((error) => {
      say("settings-message", describe(error), "error");
    });
  };
}

async function applyToggle(setting, permissions, enabling, asked) {
  if (enabling && !(await asked)) {
    $(setting === "showStatus" ? "show-status" : "auto-flattr").checked = false;
    say("settings-message", "Not turned on: the permission was not given.", "error");
    return;
  }
  await updateSettings({ [setting]: enabling });
  if (!enabling) await ext.permissions.remove(await returnable(permissions)).catch(() => false);
  if (setting === "autoFlattr") await ask({ type: "sync-attention" });
  say("settings-message", enabling ? "Turned on." : "Turned off.");
  await loadGranted();
  await renderSettings();
}

// Page access also covers a gateway signed in to while it was on: keep it then.
async function returnable(permissions) {
  const auth = await getAuth();
  const gateway = auth && gatewayPattern(auth.gateway);
  if (!permissions.origins || !gateway || grantedOrigins.has(gateway)) return permissions;
  return { ...permissions, origins: [] };
}

async function saveBlocklist() {
  const lines = $("blocklist").value.split(/\s+/).filter(Boolean);
  const hosts = [...new Set(lines.map(normaliseHost).filter(Boolean))].slice(0, MAX_BLOCKLIST_ENTRIES);
  const refused = lines.filter((line) => !normaliseHost(line));
  await updateSettings({ autoBlocklist: hosts });
  await ask({ type: "sync-attention" });
  await renderSettings();
  say("settings-message", refused.length
    ? `Saved ${hosts.length} site(s); not site names, left out: ${refused.join(", ")}`
    : `Saved ${hosts.length} site(s).`, refused.length ? "error" : "done");
}

$("sign-in-form").addEventListener("submit", onSignIn);
$("sign-out").addEventListener("click", onSignOut);
$("show-status").addEventListener("change", toggle("showStatus", STATUS_PERMISSIONS));
$("auto-flattr").addEventListener("change", toggle("autoFlattr", AUTOMATIC_PERMISSIONS));
$("auto-only-declared").addEventListener("change", (event) => {
  updateSettings({ autoOnlyDeclared: event.target.checked }).catch(() => {});
});
$("save-blocklist").addEventListener("click", () => {
  saveBlocklist().catch((error) => say("settings-message", describe(error), "error"));
});
ext.storage.onChanged.addListener((changes, area) => {
  if (area === "local" && changes.auth) renderAccount().catch(() => {});
});

Promise.all([loadGranted(), renderAccount(), renderSettings()]).then(() => {
  $("options").dataset.state = "ready";
});
