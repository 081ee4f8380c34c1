'use strict';

// The real entry point as a child process: JSON log files, SIGTERM drain.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const SERVER = path.join(__dirname, '..', 'src', 'server.js');

// Whatever a failed test left running is killed, so the run always ends.
const children = new Set();
after(() => {
  for (const child of children) child.kill('SIGKILL');
});

async function closedPort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

async function startServer(extraEnv = {}) {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sample-api-test-'));
  const child = spawn(process.execPath, [SERVER], {
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_DIR: logDir,
      APP_VERSION: 'v-proc',
      COLOR: 'blue',
      REDIS_URL: `redis://127.0.0.1:${await closedPort()}/0`,
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  children.add(child);
  exited.then(() => children.delete(child));
  let out = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 5000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const entry = JSON.parse(line);
          if (entry.message === 'listening') {
            clearTimeout(timer);
            resolve(entry.port);
          }
        } catch {
          /* partial line */
        }
      }
    });
    child.on('exit', () => reject(new Error(`server exited early: ${out}`)));
  });
  return { child, port, logDir, exited, output: () => out };
}

function get(port, pathName, agent) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathName, agent }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

test('SIGTERM lets the in-flight request finish and exits 0 promptly', async () => {
  const srv = await startServer();
  const inflight = get(srv.port, '/api/slow?ms=1200');
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  srv.child.kill('SIGTERM');
  const res = await inflight;
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(res.body).slept_ms, 1200);
  assert.equal(res.headers.connection, 'close');
  const { code } = await srv.exited;
  const elapsed = Date.now() - t0;
  assert.equal(code, 0);
  assert.ok(elapsed < 3000, `exit took ${elapsed} ms`);
  assert.ok(elapsed >= 800, `exit after ${elapsed} ms: did not wait for the request`);

  const lines = fs.readFileSync(path.join(srv.logDir, 'combined.log'), 'utf8').trim().split('\n');
  const entries = lines.map((l) => JSON.parse(l));
  for (const e of entries) {
    assert.equal(typeof e.level, 'string');
    assert.equal(typeof e.message, 'string');
    assert.ok(!Number.isNaN(Date.parse(e.timestamp)), `bad timestamp in ${JSON.stringify(e)}`);
  }
  const messages = entries.map((e) => e.message);
  assert.ok(messages.includes('listening'));
  assert.ok(messages.includes('shutdown started'));
  assert.equal(messages.at(-1), 'shutdown complete');
  fs.rmSync(srv.logDir, { recursive: true, force: true });
});

test('an idle keep-alive connection does not hold the exit back', async () => {
  const srv = await startServer();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const first = await get(srv.port, '/api/version', agent);
  assert.equal(first.status, 200);
  assert.notEqual(first.headers.connection, 'close');
  const t0 = Date.now();
  srv.child.kill('SIGTERM');
  const { code } = await srv.exited;
  const elapsed = Date.now() - t0;
  agent.destroy();
  assert.equal(code, 0);
  // keepAliveTimeout is 65 s: only closing idle sockets makes this fast.
  assert.ok(elapsed < 2000, `exit took ${elapsed} ms with an idle keep-alive socket`);
  fs.rmSync(srv.logDir, { recursive: true, force: true });
});

test('error.log holds only error lines, combined.log all of them', async () => {
  const srv = await startServer();
  // Redis is unreachable: listing items logs an error.
  const res = await get(srv.port, '/api/items');
  assert.equal(res.status, 503);
  srv.child.kill('SIGTERM');
  await srv.exited;
  const errors = fs
    .readFileSync(path.join(srv.logDir, 'error.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.ok(errors.length >= 1);
  assert.ok(errors.every((e) => e.level === 'error'));
  assert.ok(errors.some((e) => e.message === 'listing items failed'));
  const combined = fs.readFileSync(path.join(srv.logDir, 'combined.log'), 'utf8');
  assert.match(combined, /"level":"info"/);
  // stdout carries the same JSON lines.
  assert.match(srv.output(), /"message":"listing items failed"/);
  fs.rmSync(srv.logDir, { recursive: true, force: true });
});

test('an unwritable LOG_DIR falls back to stdout instead of crashing', async () => {
  // A directory below a regular file can never be created.
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sample-api-test-')), 'plain-file');
  fs.writeFileSync(file, '');
  const srv = await startServer({ LOG_DIR: path.join(file, 'logs') });
  const res = await get(srv.port, '/health');
  assert.equal(res.status, 200);
  srv.child.kill('SIGTERM');
  const { code } = await srv.exited;
  assert.equal(code, 0);
  assert.match(srv.output(), /log directory not writable/);
});
