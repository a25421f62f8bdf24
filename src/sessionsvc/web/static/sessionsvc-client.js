/**
 * sessionsvc's browser client: one dependency-free ES module (docs/browser.md).
 *
 * The refresh token lives in an HttpOnly cookie the page cannot read; the access
 * token lives in this object's memory only. Calls carry it as a Bearer header;
 * it is refreshed shortly before it expires, or once when an answer says it has,
 * and one refresh serves every tab of the site (Web Locks + BroadcastChannel).
 *
 *   import { SessionsClient } from "/api/ui/sessionsvc-client.js";
 *   const client = new SessionsClient({ api: "/api", origins: ["https://orders.example.com"] });
 *   client.addEventListener("signedout", () => location.assign("/login"));
 *   const { sessions } = await client.list();
 */

const CSRF_HEADER = { "X-Requested-With": "sessionsvc" };
const LOCK_NAME = "sessionsvc-refresh";
const STEP_UP_LOCK_NAME = "sessionsvc-step-up";
const CHANNEL_NAME = "sessionsvc";
const REFRESH_BEFORE_MS = 60_000; // at most; never earlier than half the token's life

/** An answer that was not a success: its HTTP status and the service's error code. */
export class SessionsvcError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = "SessionsvcError";
    this.status = status; // 0: the network failed
    this.code = code;
    this.retryAfter = retryAfter; // seconds, on 429 and 503 when the service says
  }
}

/** Read a JWT's payload without verifying it: the service does that. */
function payloadOf(token) {
  const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function expiryOf(token) {
  return payloadOf(token).exp;
}

async function errorFrom(response) {
  const body = await response.json().catch(() => null);
  const retryAfter = Number.parseInt(response.headers.get("Retry-After"), 10);
  return new SessionsvcError(
    response.status,
    body?.code ?? `HTTP_${response.status}`,
    body?.error ?? response.statusText,
    Number.isNaN(retryAfter) ? null : retryAfter,
  );
}

/** Read RFC 9470's challenge: {acrValues: [...], maxAge: seconds or null, challenge}. */
function stepUpOf(challenge) {
  const acr = /acr_values="([^"]*)"/.exec(challenge ?? "");
  const age = /max_age=(\d+)/.exec(challenge ?? "");
  return {
    acrValues: acr ? acr[1].split(/[ ,]+/).filter(Boolean) : [],
    maxAge: age ? Number(age[1]) : null,
    challenge: challenge ?? "",
  };
}

/** The origin of url, resolved as fetch() resolves it: against the document's base URL. */
function originOf(url) {
  const href = url instanceof Request ? url.url : String(url);
  return new URL(href, globalThis.document?.baseURI).origin;
}

async function send(url, init) {
  try {
    return await fetch(url, init);
  } catch (error) {
    throw new SessionsvcError(0, "NETWORK_ERROR", error.message);
  }
}

/**
 * A signed-in browser's client. Events: "refreshed" (a new access token),
 * "signedout" (detail.reason: the error code, or "signed-out-here"; a sign-out
 * in one tab is told to the others) and "stepuprequired" (detail: acrValues,
 * maxAge, challenge), once across tabs when a route wants a stronger or fresher
 * sign-in: the app steps the user up, then calls stepUpDone() (or stepUpFailed()).
 */
export class SessionsClient extends EventTarget {
  #api;
  #token = null;
  #timer = null;
  #refreshing = null;
  #channel = null;
  #origins;
  #stepUp = null; // {promise, resolve, reject}: the step-up this tab waits for
  #steppedUpAt = 0; // when a step-up was last done, here or in another tab

  /**
   * api: where sessionsvc's API is (default "/api"). origins: further origins the access
   * token may go to with fetch() (the app's own API on another origin): absolute URLs, of
   * which only the origin counts. The page's own origin and the API's always may.
   */
  constructor({ api = "/api", origins = [] } = {}) {
    super();
    this.#api = api.replace(/\/$/, "");
    this.#origins = new Set([
      globalThis.location?.origin,
      originOf(this.#api),
      ...origins.map((origin) => new URL(origin).origin), // absolute: a relative one throws here
    ]);
    this.#origins.delete("null"); // an opaque origin (data:, a sandbox) is no one's own
    if (typeof BroadcastChannel === "function") {
      this.#channel = new BroadcastChannel(CHANNEL_NAME);
      this.#channel.onmessage = ({ data }) => this.#heard(data);
    }
  }

  /**
   * Whose account this browser is signed in to: {userId, name} (name: the
   * session's "name" claim, else null), from the access token; null before
   * the first token.
   */
  get account() {
    if (!this.#token) return null;
    const { sub, claims } = payloadOf(this.#token);
    const name = typeof claims?.name === "string" && claims.name.trim() ? claims.name.trim() : null;
    return { userId: sub, name };
  }

  /** List the user's live sessions: {sessions: [...]}, the current one marked. */
  list() {
    return this.#json("GET", "/sessions");
  }

  /** The user's ended sessions, the latest first: {sessions: [...]}, each with its reason. */
  history() {
    return this.#json("GET", "/sessions/history");
  }

  /** Sign out one session; signing out this one signs this browser out. */
  async revoke(sessionId, { current = false } = {}) {
    const body = await this.#json("DELETE", `/sessions/${encodeURIComponent(sessionId)}`);
    if (current) this.#signOut("signed-out-here", true);
    return body;
  }

  /** Sign out every session but this one. */
  revokeOthers() {
    return this.#json("DELETE", "/sessions?keep=current");
  }

  /** Sign out every session, this one too. */
  async revokeAll() {
    const body = await this.#json("DELETE", "/sessions");
    this.#signOut("signed-out-here", true);
    return body;
  }

  /** List the user's known devices: {devices: [...]}, each with its own name and sessions. */
  devices() {
    return this.#json("GET", "/devices");
  }

  /** Give one of the user's devices a name of their own (1-64 characters). */
  renameDevice(deviceId, name) {
    return this.#json("PATCH", `/devices/${encodeURIComponent(deviceId)}`, { name });
  }

  /** Forget one of the user's devices, signing out its sessions. */
  forgetDevice(deviceId) {
    return this.#json("DELETE", `/devices/${encodeURIComponent(deviceId)}`);
  }

  /** Use an access token a sign-in answered with (the refresh cookie came with it). */
  signedIn(accessToken) {
    this.#adopt(accessToken, true);
  }

  /**
   * fetch() with the Bearer header, for the app's own API behind the gateway:
   * a token about to expire is refreshed first, and an answer that it has
   * expired is retried once after a refresh. Only the page's own origin, the
   * API's and those in `origins` get the token: any other URL is fetched as
   * it is, with no Authorization header and no refresh.
   */
  async fetch(url, init = {}) {
    if (!this.#origins.has(originOf(url))) return send(url, init);
    if (!this.#token || this.#expiresSoon()) await this.refresh();
    const used = this.#token;
    let response = await send(url, this.#authorized(init));
    if (response.status === 401) {
      const { code } = await response.clone().json().catch(() => ({}));
      if (code === "TOKEN_EXPIRED" || code === "INVALID_TOKEN") {
        await this.refresh(used);
        response = await send(url, this.#authorized(init));
      } else if (code === "INSUFFICIENT_AUTHENTICATION") {
        // The gateway reads the session on every request: once stepped up, the
        // same request with the same token passes. Given up: the 401 stands.
        response = await this.#afterStepUp(response, () => send(url, this.#authorized(init)));
      } else if (code === "TOKEN_REVOKED") {
        this.#signOut(code, true);
      }
    }
    return response;
  }

  /** Get a new access token: one request at a time in this tab, and across tabs. */
  refresh(stale = this.#token) {
    this.#refreshing ??= this.#refreshOnce(stale).finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  /**
   * Tell the client the user has stepped up (the login service called the
   * step-up endpoint): the requests waiting are sent again, in every tab. An
   * access token the step-up answered with may be given, to carry the new claims.
   */
  stepUpDone(accessToken = null) {
    if (accessToken) this.#adopt(accessToken, true);
    this.#steppedUpAt = Date.now();
    this.#channel?.postMessage({ type: "steppedup", at: this.#steppedUpAt });
    this.#stepUp?.resolve(true);
  }

  /** Tell the client the user did not step up: the waiting requests get their 401. */
  stepUpFailed() {
    this.#stepUp?.resolve(false);
  }

  /** Stop the timer and leave the channel (the object is not used after). */
  close() {
    clearTimeout(this.#timer);
    this.#channel?.close();
  }

  async #refreshOnce(stale) {
    const run = async () => {
      // Another tab may have refreshed while this one waited for the lock.
      if (this.#token && this.#token !== stale && !this.#expiresSoon()) return this.#token;
      const response = await send(`${this.#api}/sessions/refresh`, {
        method: "POST",
        credentials: "include",
        headers: CSRF_HEADER,
      });
      if (!response.ok) {
        const error = await errorFrom(response);
        if (response.status === 401 || response.status === 403) this.#signOut(error.code, false);
        throw error;
      }
      this.#adopt((await response.json()).accessToken, true);
      return this.#token;
    };
    return navigator.locks ? navigator.locks.request(LOCK_NAME, run) : run();
  }

  /**
   * Send a request again once the user has stepped up: the first tab to need it
   * fires "stepuprequired"; one that waited for that tab's step-up (the lock)
   * first tries again, and asks only if the request still falls short.
   */
  async #afterStepUp(refused, again) {
    const asked = Date.now();
    const run = async (waited) => {
      let challenge = refused.headers.get("WWW-Authenticate");
      if (this.#steppedUpAt >= asked) return again();
      if (waited) {
        const retried = await again();
        if (retried.status !== 401) return retried;
        const { code } = await retried.clone().json().catch(() => ({}));
        if (code !== "INSUFFICIENT_AUTHENTICATION") return retried;
        challenge = retried.headers.get("WWW-Authenticate");
      }
      return (await this.#stepUpAsked(challenge)) ? again() : refused;
    };
    if (this.#stepUp) return (await this.#stepUp.promise) ? again() : refused; // asked here
    if (!navigator.locks) return run(false);
    const free = await navigator.locks.request(STEP_UP_LOCK_NAME, { ifAvailable: true }, (lock) =>
      lock ? run(false).then((response) => ({ response })) : null,
    );
    return free ? free.response : navigator.locks.request(STEP_UP_LOCK_NAME, () => run(true));
  }

  /** Fire "stepuprequired" and wait for stepUpDone() (true) or stepUpFailed() (false). */
  #stepUpAsked(challenge) {
    if (!this.#stepUp) {
      let resolve;
      const promise = new Promise((done) => {
        resolve = done;
      }).finally(() => {
        this.#stepUp = null;
      });
      this.#stepUp = { promise, resolve };
      this.dispatchEvent(new CustomEvent("stepuprequired", { detail: stepUpOf(challenge) }));
    }
    return this.#stepUp.promise;
  }

  async #json(method, path, body = undefined) {
    const init = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { "Content-Type": "application/json" };
    }
    const response = await this.fetch(`${this.#api}${path}`, init);
    if (!response.ok) throw await errorFrom(response);
    return response.json();
  }

  #authorized(init) {
    const headers = new Headers(init.headers);
    headers.set("Authorization", `Bearer ${this.#token}`);
    for (const [name, value] of Object.entries(CSRF_HEADER)) headers.set(name, value);
    return { ...init, headers, credentials: "include" };
  }

  #expiresSoon() {
    return expiryOf(this.#token) * 1000 - Date.now() < 1000;
  }

  #adopt(token, tell) {
    this.#token = token;
    clearTimeout(this.#timer);
    const left = expiryOf(token) * 1000 - Date.now();
    const early = Math.min(REFRESH_BEFORE_MS, left / 2);
    this.#timer = setTimeout(() => this.refresh().catch(() => {}), Math.max(0, left - early));
    if (tell) this.#channel?.postMessage({ type: "token", token });
    this.dispatchEvent(new CustomEvent("refreshed"));
  }

  #signOut(reason, tell) {
    this.#token = null;
    clearTimeout(this.#timer);
    if (tell) this.#channel?.postMessage({ type: "signedout", reason });
    this.dispatchEvent(new CustomEvent("signedout", { detail: { reason } }));
  }

  #heard(message) {
    if (message?.type === "token") this.#adopt(message.token, false);
    else if (message?.type === "signedout") this.#signOut(message.reason, false);
    else if (message?.type === "steppedup") {
      this.#steppedUpAt = Math.max(this.#steppedUpAt, message.at);
      this.#stepUp?.resolve(true);
    }
  }
}
