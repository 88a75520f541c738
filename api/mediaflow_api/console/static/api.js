// The API as the console uses it: a session (tokens), JSON requests and uploads with progress.
//
// The access token lives in this module's memory only; the refresh token in sessionStorage,
// so a reload of the tab keeps the login and closing the tab ends it (docs/console.md).

export const API = "/api/v1";
const REFRESH_KEY = "mediaflow.refresh_token";
// Refresh this long before the access token expires.
const REFRESH_MARGIN_MS = 60_000;

/** An error answer of the API, carrying its problem details (RFC 9457). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { title: response.statusText, detail: `The API answered ${response.status}.` };
  }
}

/** The `exp` claim of a JWT, in milliseconds (the console never verifies it: the API does). */
export function tokenExpiry(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).exp * 1000;
  } catch {
    return Date.now() + 5 * 60_000;
  }
}

export class Session {
  constructor(onChange) {
    this.access = null;
    this.timer = null;
    this.refreshing = null;
    this.onChange = onChange; // called with true (signed in) or false and a reason
  }

  get signedIn() {
    return this.access !== null;
  }

  /** Sign in again from the refresh token kept in this tab, if there is one. */
  async resume() {
    if (!sessionStorage.getItem(REFRESH_KEY)) return false;
    try {
      await this.refresh();
      return true;
    } catch {
      return false;
    }
  }

  async register(email, password) {
    const response = await fetch(`${API}/auth/register`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email, password }),
    });
    if (!response.ok) throw new ApiError(response.status, await problemOf(response));
    this.#keep((await response.json()).data.tokens);
  }

  async login(email, password) {
    const response = await fetch(`${API}/auth/login`, {
      method: "POST",
      body: new URLSearchParams({ username: email, password }),
    });
    if (!response.ok) throw new ApiError(response.status, await problemOf(response));
    this.#keep(await response.json());
  }

  /** A new token pair for the kept refresh token (one at a time: the old one retires). */
  refresh() {
    this.refreshing ??= (async () => {
      const token = sessionStorage.getItem(REFRESH_KEY);
      try {
        if (!token) throw new ApiError(401, { detail: "You are signed out." });
        const response = await fetch(`${API}/auth/refresh`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: token }),
        });
        if (!response.ok) throw new ApiError(response.status, await problemOf(response));
        this.#keep((await response.json()).data);
      } catch (error) {
        if (error instanceof ApiError && error.status !== 503) this.#forget(error.message);
        throw error;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  async logout() {
    const token = sessionStorage.getItem(REFRESH_KEY);
    this.#forget(null);
    if (token) {
      await fetch(`${API}/auth/logout`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: token }),
      }).catch(() => {});
    }
  }

  #keep(tokens) {
    const wasSignedIn = this.signedIn;
    this.access = tokens.access_token;
    sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token);
    clearTimeout(this.timer);
    // A minute before expiry, or a quarter of the lifetime before it for short-lived tokens.
    const lifetime = tokenExpiry(this.access) - Date.now();
    const wait = Math.max(5_000, lifetime - Math.min(REFRESH_MARGIN_MS, lifetime / 4));
    this.timer = setTimeout(() => this.refresh().catch(() => {}), wait);
    if (!wasSignedIn) this.onChange(true);
  }

  #forget(reason) {
    const wasSignedIn = this.signedIn;
    this.access = null;
    clearTimeout(this.timer);
    sessionStorage.removeItem(REFRESH_KEY);
    if (wasSignedIn) this.onChange(false, reason);
  }

  /** fetch() with the access token; after a 401 the token is refreshed and the call retried once. */
  async fetch(path, init = {}) {
    for (let attempt = 0; ; attempt++) {
      const headers = { ...(init.headers || {}), Authorization: `Bearer ${this.access}` };
      const response = await fetch(`${API}${path}`, { ...init, headers });
      if (response.status === 401 && attempt === 0) {
        await this.refresh();
        continue;
      }
      if (!response.ok) throw new ApiError(response.status, await problemOf(response));
      return response;
    }
  }

  async json(path, init) {
    return (await this.fetch(path, init)).json();
  }

  /**
   * POST a multipart form with XMLHttpRequest, whose upload events give progress
   * (fetch() has none). `onProgress(loaded, total)`; resolves to the JSON answer.
   */
  upload(path, form, onProgress) {
    const send = () =>
      new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open("POST", `${API}${path}`);
        xhr.setRequestHeader("Authorization", `Bearer ${this.access}`);
        xhr.responseType = "json";
        xhr.upload.addEventListener("progress", (event) => {
          if (event.lengthComputable) onProgress(event.loaded, event.total);
        });
        xhr.addEventListener("load", () => {
          if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
          else reject(new ApiError(xhr.status, xhr.response));
        });
        xhr.addEventListener("error", () =>
          reject(new ApiError(0, { detail: "The upload failed: the connection was lost." })),
        );
        xhr.send(form);
      });
    return send().catch(async (error) => {
      if (error.status !== 401) throw error;
      await this.refresh();
      return send();
    });
  }
}
