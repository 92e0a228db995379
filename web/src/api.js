// Calls to the metrics-lake query API with the customer's token. Errors come back as
// ApiError with the API's stable code and safe message.

export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** GET `path` with `params` (arrays repeat the key). */
export async function apiGet(base, token, path, params, signal) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value == null || value === '') continue;
    for (const v of Array.isArray(value) ? value : [value]) query.append(key, String(v));
  }
  const url = `${base.replace(/\/$/, '')}${path}${query.size ? `?${query}` : ''}`;
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  let response;
  try {
    response = await fetch(url, { headers, signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError('network', 'The metrics API could not be reached.', 0);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const err = body && body.error;
    throw new ApiError(err?.code ?? 'http_' + response.status, err?.message ?? `The metrics API answered ${response.status}.`, response.status);
  }
  return body;
}
