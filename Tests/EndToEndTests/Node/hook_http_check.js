// Checks the Node preload's plain-http path and NO_PROXY with a stand-in proxy that records the
// request lines it gets: `node hook_http_check.js NODE HOOK_FILE`. Starts the stand-in and an
// origin server, runs NODE with the preload (TOKENTAP_PROXY: the stand-in; NO_PROXY: one host),
// which requests http://127.0.0.1:ORIGIN/via-proxy and http://localhost:ORIGIN/direct, and prints
// one JSON object: what the stand-in and the origin saw, and what the child printed.
'use strict';
const http = require('http');
const { execFile } = require('child_process');
const [node, hook] = process.argv.slice(2);
const proxied = [];
const direct = [];
const proxy = http.createServer((req, res) => {
  proxied.push(req.method + ' ' + req.url);
  res.end('from the stand-in proxy');
});
const origin = http.createServer((req, res) => {
  direct.push(req.method + ' ' + req.url);
  res.end('from the origin');
});
proxy.listen(0, '127.0.0.1', () => origin.listen(0, '127.0.0.1', () => {
  const port = origin.address().port;
  const child = `
    const http = require('http');
    const get = (url) => new Promise((resolve) => http.get(url, (r) => { let b = ''; r.on('data', (c) => { b += c; }); r.on('end', () => resolve(b)); })
      .on('error', (e) => resolve('error ' + e.message)));
    (async () => {
      const a = await get('http://127.0.0.1:${port}/via-proxy?code=1');
      const b = await get('http://localhost:${port}/direct');
      console.log(JSON.stringify({ a, b, hook: String(globalThis[Symbol.for('tokentap.node-hook')]) }));
    })();`;
  const env = Object.assign({}, process.env, {
    TOKENTAP_PROXY: 'http://127.0.0.1:' + proxy.address().port,
    NO_PROXY: 'localhost',
    NODE_OPTIONS: '--require "' + hook.replace(/(["\\])/g, '\\$1') + '"',
  });
  delete env.NODE_USE_ENV_PROXY;
  execFile(node, ['-e', child], { env }, (error, stdout, stderr) => {
    process.stdout.write(JSON.stringify({ proxied, direct, child: stdout.trim(), stderr, error: error ? String(error) : null }) + '\n');
    proxy.close();
    origin.close();
  });
}));
