// A Node client as an app would write it, with no proxy or CA setting of its own, for the
// `tokentap run` tests: `node run_client.js MODE URL [FORM]` sends FORM (POST) or nothing (GET) and
// prints one JSON line: ok, status, body or error, the Node version and what tokentap's preload did.
// MODE `https`: `https.request` with the default agent (what node-fetch v2, and so Miro's Node SDK,
// does); `fetch`: Node's built-in fetch (undici).
'use strict';
const [mode, url, form] = process.argv.slice(2);

function done(result) {
  const hook = globalThis[Symbol.for('tokentap.node-hook')];
  process.stdout.write(JSON.stringify(Object.assign(result, { node: process.version, hook: hook === undefined ? 'none' : hook })) + '\n');
}

const headers = form ? { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(form) } : {};
if (mode === 'https') {
  const request = require('https').request(url, { method: form ? 'POST' : 'GET', headers, timeout: 30000 }, (response) => {
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk) => { body += chunk; });
    response.on('end', () => done({ ok: response.statusCode === 200, status: response.statusCode, body }));
  });
  request.on('timeout', () => request.destroy(new Error('timed out')));
  request.on('error', (error) => done({ ok: false, error: String(error.message || error) }));
  request.end(form);
} else if (mode === 'fetch') {
  fetch(url, form ? { method: 'POST', headers, body: form, signal: AbortSignal.timeout(30000) } : { signal: AbortSignal.timeout(30000) })
    .then(async (response) => done({ ok: response.status === 200, status: response.status, body: await response.text() }),
      (error) => done({ ok: false, error: String((error.cause && error.cause.message) || error.message || error) }));
} else {
  done({ ok: false, error: 'unknown mode ' + mode });
}
