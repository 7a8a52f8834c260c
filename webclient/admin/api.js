// Talking to the box: JSON calls under /admin/api/ with the session's CSRF token.

let csrfToken = null;
let signedOutHandler = () => {};

export class ApiError extends Error {
  constructor(status, message, data = {}) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

export function setCsrfToken(token) { csrfToken = token || null; }
export function onSignedOut(handler) { signedOutHandler = handler; }

/** Call the admin API. body: an object (sent as JSON) or a FormData (uploads). */
export async function api(method, path, body) {
  const init = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    // The box checks Origin on every change; "same-origin" makes the browser send it.
    referrerPolicy: 'same-origin',
    headers: {Accept: 'application/json'},
  };
  if (method !== 'GET') init.headers['X-CSRF-Token'] = csrfToken || '';
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/admin/api/${path}`, init);
  } catch {
    throw new ApiError(0, 'The box did not answer. Is this device still on its Wi-Fi?');
  }
  let data = {};
  try { data = await response.json(); } catch { /* not JSON: the message below says enough */ }
  if (response.status === 401 && path !== 'login') signedOutHandler();
  if (!response.ok) {
    throw new ApiError(response.status, data.error || `The box answered with error ${response.status}.`, data);
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);
export const del = (path) => api('DELETE', path);
