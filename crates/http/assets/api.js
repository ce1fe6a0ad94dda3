// The server's JSON API. Every state-changing request carries
// X-Framerr-Client: 1 (the server refuses it otherwise); errors are always
// JSON {"error": "..."} and become an ApiError whose message is the server's.

export class ApiError extends Error {
  constructor(status, body) {
    super(messageOf(status, body));
    this.status = status;
    this.body = body && typeof body === 'object' ? body : {};
    // Set when a 401 meant "the session is gone" (not "wrong password").
    this.sessionEnded = false;
  }
}

function messageOf(status, body) {
  if (body && typeof body.error === 'string' && body.error) return body.error;
  if (status === 0) return 'The server could not be reached. Check that framerr-backup is running, then try again.';
  if (status >= 500) return 'The server could not complete the request.';
  return 'The server refused the request.';
}

let onSessionEnded = () => {};
/** Called whenever a backup API call shows that the session is gone. */
export function whenSessionEnds(fn) {
  onSessionEnded = fn;
}

function parse(text) {
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** true when signed in as an admin, false when not, null when unknown. */
export async function signedIn() {
  try {
    const res = await fetch('/api/backup/status', { headers: { Accept: 'application/json' } });
    if (res.status === 401 || res.status === 403) return false;
    return res.ok ? true : null;
  } catch {
    return null;
  }
}

// A 401 on a call that carries a password may mean "wrong password": ask the
// server whether the session is still alive before signing the user out.
async function check401(path, err, withPassword) {
  if (err.status !== 401 || !path.startsWith('/api/backup/')) return err;
  if (withPassword && (await signedIn()) !== false) return err;
  err.sessionEnded = true;
  onSessionEnded();
  return err;
}

/**
 * A JSON request. Resolves to the parsed body; rejects with ApiError.
 * `withPassword`: the body carries a password, so a 401 may mean a wrong one.
 */
export async function request(method, path, body, { withPassword = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-Framerr-Client'] = '1';
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, null);
  }
  const data = parse(await res.text().catch(() => ''));
  if (!res.ok) throw await check401(path, new ApiError(res.status, data), withPassword);
  return data || {};
}

/**
 * A multipart upload with XMLHttpRequest (fetch cannot report upload
 * progress). `fields` is a list of [name, value] in order.
 * `onProgress(percent, sent)` is called as bytes leave; `sent` once all have.
 */
export function upload(path, fields, onProgress, { withPassword = false } = {}) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of fields) form.append(name, value);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.setRequestHeader('X-Framerr-Client', '1');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable && e.total > 0) onProgress((e.loaded / e.total) * 100, false);
    });
    xhr.upload.addEventListener('load', () => onProgress(100, true));
    xhr.addEventListener('load', async () => {
      const data = parse(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300) resolve(data || {});
      else reject(await check401(path, new ApiError(xhr.status, data), withPassword));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, null)));
    xhr.addEventListener('abort', () => reject(new ApiError(0, { error: 'The upload was cancelled.' })));
    xhr.send(form);
  });
}

/** The backup's name as one URL path segment. */
export const seg = (name) => encodeURIComponent(name);
