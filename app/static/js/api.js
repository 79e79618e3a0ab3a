// The public JSON API, read with the key kept in this tab's sessionStorage.
// Every call resolves to {ok: true, body} or {ok: false, message}: errors are values to show.

const KEY_STORAGE = "glowing-fiesta.api-key";

/** The key kept for this tab, or "". */
export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

/** Keep the key for this tab (sessionStorage only: never a URL or a cookie); "" forgets it. */
export function storeKey(key) {
  if (key) {
    sessionStorage.setItem(KEY_STORAGE, key);
  } else {
    sessionStorage.removeItem(KEY_STORAGE);
  }
}

/** GET an API path with query parameters (empty ones left out; a list repeats its name), the
 * key (an API key or a JWT) as `Authorization: Bearer`. */
export async function getJson(path, params, signal) {
  const key = storedKey();
  if (!key) {
    return { ok: false, message: "Enter an API key first." };
  }
  const url = new URL(path, window.location.origin);
  for (const [name, given] of Object.entries(params)) {
    for (const value of Array.isArray(given) ? given : [given]) {
      if (value !== "" && value !== undefined && value !== null) {
        url.searchParams.append(name, value);
      }
    }
  }
  let response;
  try {
    response = await fetch(url, {
      headers: { Authorization: `Bearer ${key}`, Accept: "application/json" },
      credentials: "omit",
      cache: "no-store",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") {
      return { ok: false, aborted: true };
    }
    return { ok: false, message: "The server could not be reached." };
  }
  return readResponse(response);
}

async function readResponse(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): the status alone describes it.
  }
  if (response.ok && body && body.success) {
    return { ok: true, body };
  }
  return { ok: false, status: response.status, message: describeError(response, body) };
}

function describeError(response, body) {
  const error = body && body.error;
  let text = `${response.status} ${error ? error.code : response.statusText || "error"}`;
  if (error && error.message) {
    text += `: ${error.message}`;
  }
  const retryAfter = response.headers.get("Retry-After");
  if (retryAfter && (response.status === 429 || response.status === 503)) {
    text += ` (try again in ${retryAfter} s)`;
  }
  return text;
}
