// Signing in (a token for the scopes read and flattr; the password is sent once and never
// stored) and signing out (the token revokes itself).
import { ext } from "./browser.js";
import { ApiError, call } from "./api.js";
import { clearAuth, getAuth, setAuth, updateSettings } from "./settings.js";
import { normaliseGateway } from "./urls.js";

export const SCOPES = ["read", "flattr"];
export const TOKEN_LABEL = "Flattr browser extension";

// What belongs to the signed-in member, besides the token: dropped when they change.
const MEMBER_KEYS = ["me", "queue", "sent", "automatic", "autoSkip", "failures"];

export async function signIn(gatewayText, handle, password) {
  const gateway = normaliseGateway(gatewayText);
  if (!gateway) throw new ApiError("invalid_gateway", "the gateway address is not an http(s) URL");
  if (!handle || !password) throw new ApiError("invalid_credentials", "give a handle and a password");
  const { data } = await call(gateway, "POST", "/tokens", {
    body: { handle, password, scopes: SCOPES, label: TOKEN_LABEL },
  });
  await forgetMemberState();
  const auth = {
    gateway, handle, token: data.token, tokenId: data.id, scopes: data.scopes,
    signedInAt: Date.now(),
  };
  await setAuth(auth);
  await updateSettings({ gateway });
  return auth;
}

/** Revoke the token at the gateway, then forget it (also when the gateway is unreachable). */
export async function signOut() {
  const auth = await getAuth();
  if (!auth) return { revoked: false, dropped: 0, error: null };
  let revoked = false;
  let error = null;
  try {
    await call(auth.gateway, "DELETE", `/tokens/${auth.tokenId}`, { token: auth.token });
    revoked = true;
  } catch (caught) {
    // A token the gateway no longer knows is as good as revoked.
    if (caught.code === "unauthorized" || caught.code === "not_found") revoked = true;
    else error = caught;
  }
  const { queue } = await ext.storage.local.get("queue");
  await clearAuth();
  await forgetMemberState();
  return { revoked, dropped: queue?.length ?? 0, error };
}

/** The gateway no longer accepts the token (401): forget it, as the 2017 extension did. */
export async function forgetToken() {
  await clearAuth();
  await forgetMemberState();
}

async function forgetMemberState() {
  await ext.storage.local.remove(MEMBER_KEYS);
  await ext.storage.session.clear();
}
