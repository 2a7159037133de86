// The gateway's JSON API (/api/v1): one function that calls it and one error type.
//
// Every failure becomes an ApiError with the gateway's stable code ("own_thing",
// "rate_limited", ...) or one of ours: "offline" when the gateway cannot be reached.

export const TIMEOUT_MS = 10_000;

export class ApiError extends Error {
  constructor(code, message, { status = 0, retryAfterSeconds = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** Worth retrying later with the same Idempotency-Key. */
  get transient() {
    return isTransient(this);
  }

  toJSON() {
    return {
      code: this.code, message: this.message, status: this.status,
      retryAfterSeconds: this.retryAfterSeconds,
    };
  }
}

/** An ApiError (or any error) as a plain object that survives runtime messaging. */
export function errorJson(error) {
  if (error instanceof ApiError) return error.toJSON();
  return { code: "internal", message: String(error?.message ?? error), status: 0 };
}

// Whether the gateway answered lately: a failure to reach it is forgotten, and whatever
// waited for it is retried, as soon as any request gets an answer again.
const reachability = { unreachable: false, answeredAt: 0, listeners: new Set() };

/** When the gateway last answered (ms since the epoch; 0 when not since the worker started). */
export function gatewayAnsweredAt() {
  return reachability.answeredAt;
}

/** Call `listener()` each time the gateway answers again after it could not be reached. */
export function onGatewayBack(listener) {
  reachability.listeners.add(listener);
}

function answered() {
  reachability.answeredAt = Date.now();
  if (!reachability.unreachable) return;
  reachability.unreachable = false;
  for (const listener of reachability.listeners) {
    Promise.resolve().then(listener).catch(() => {});
  }
}

/** Worth retrying later with the same request: no answer, too many requests, or 5xx. */
export function isTransient(error) {
  return error?.code === "offline" || error?.status === 429 || error?.status >= 500;
}

export async function call(gateway, method, path, options = {}) {
  const { token, body, query, idempotencyKey } = options;
  const url = new URL(`${gateway}/api/v1${path}`);
  for (const [name, value] of Object.entries(query ?? {})) url.searchParams.set(name, value);
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;

  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    reachability.unreachable = true;
    throw new ApiError("offline", `the gateway at ${gateway} cannot be reached (${error.name})`);
  }
  if (response.status < 500) answered();
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
    throw new ApiError(
      data?.error?.code ?? `http_${response.status}`,
      data?.error?.message ?? `the gateway answered ${response.status}`,
      { status: response.status, retryAfterSeconds: Number.isFinite(retryAfter) ? retryAfter : null },
    );
  }
  return {
    status: response.status,
    data,
    replayed: response.headers.get("Idempotent-Replayed") === "true",
  };
}
