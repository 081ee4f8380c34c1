'use strict';

// HTTP layer against an in-memory item store: routes, validation, health.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const winston = require('winston');
const { createApp, validateItem } = require('../src/app');
const { createMemoryStore } = require('../src/store');
const { loadConfig } = require('../src/config');

function quietLogger() {
  return winston.createLogger({ transports: [new winston.transports.Console({ silent: true })] });
}

async function serve(app) {
  const server = http.createServer(app);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return { server, base };
}

function baseConfig(overrides = {}) {
  return { ...loadConfig({ APP_VERSION: 'v-test', COLOR: 'green' }), ...overrides };
}

describe('healthy build', () => {
  const store = createMemoryStore();
  const state = { shuttingDown: false };
  let ctx;
  before(async () => {
    ctx = await serve(createApp({ config: baseConfig(), logger: quietLogger(), store, state }));
  });
  after(() => ctx.server.close());

  test('GET /health reports version, color and redis ok', async () => {
    const res = await fetch(`${ctx.base}/health`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok', version: 'v-test', color: 'green', redis: 'ok' });
  });

  test('GET /health stays 200 while redis is away, and says so', async () => {
    store.setAvailable(false);
    try {
      const res = await fetch(`${ctx.base}/health`);
      assert.equal(res.status, 200);
      assert.equal((await res.json()).redis, 'unavailable');
      const items = await fetch(`${ctx.base}/api/items`);
      assert.equal(items.status, 503);
      const created = await fetch(`${ctx.base}/api/items`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'lost' }),
      });
      assert.equal(created.status, 503);
    } finally {
      store.setAvailable(true);
    }
  });

  test('GET /api/version', async () => {
    const res = await fetch(`${ctx.base}/api/version`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.version, 'v-test');
    assert.equal(body.color, 'green');
    assert.match(body.node, /^v\d+\./);
  });

  test('POST /api/items then GET lists it', async () => {
    const res = await fetch(`${ctx.base}/api/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: '  first item ' }),
    });
    assert.equal(res.status, 201);
    const item = await res.json();
    assert.equal(item.name, 'first item');
    assert.equal(item.version, 'v-test');
    assert.ok(Number.isInteger(item.id));
    assert.ok(!Number.isNaN(Date.parse(item.created_at)));
    const list = await (await fetch(`${ctx.base}/api/items`)).json();
    assert.deepEqual(list.items.at(-1), item);
  });

  for (const [label, body, contentType, status] of [
    ['missing name', '{}', 'application/json', 400],
    ['empty name', '{"name":"   "}', 'application/json', 400],
    ['name not a string', '{"name":42}', 'application/json', 400],
    ['array body', '[1]', 'application/json', 400],
    ['too long', JSON.stringify({ name: 'x'.repeat(101) }), 'application/json', 400],
    ['malformed JSON', '{"name":', 'application/json', 400],
    ['not JSON', 'name=x', 'application/x-www-form-urlencoded', 415],
  ]) {
    test(`POST /api/items rejects ${label} with ${status}`, async () => {
      const res = await fetch(`${ctx.base}/api/items`, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body,
      });
      assert.equal(res.status, status);
      assert.equal(typeof (await res.json()).error, 'string');
    });
  }

  test('unknown route answers JSON 404', async () => {
    const res = await fetch(`${ctx.base}/nope`);
    assert.equal(res.status, 404);
    assert.match((await res.json()).error, /GET \/nope/);
  });

  test('GET /api/slow bounds its delay', async () => {
    assert.equal((await fetch(`${ctx.base}/api/slow?ms=999999`)).status, 400);
    const res = await fetch(`${ctx.base}/api/slow?ms=50`);
    assert.equal(res.status, 200);
    assert.equal((await res.json()).slept_ms, 50);
  });

  test('while shutting down /health is 503 and connections are closed', async () => {
    state.shuttingDown = true;
    try {
      const res = await fetch(`${ctx.base}/health`);
      assert.equal(res.status, 503);
      assert.equal((await res.json()).status, 'draining');
      assert.equal(res.headers.get('connection'), 'close');
    } finally {
      state.shuttingDown = false;
    }
  });
});

describe('broken build (APP_BROKEN=1)', () => {
  let ctx;
  before(async () => {
    const config = { ...loadConfig({ APP_VERSION: 'v3', APP_BROKEN: '1' }) };
    ctx = await serve(createApp({ config, logger: quietLogger(), store: createMemoryStore() }));
  });
  after(() => ctx.server.close());

  test('starts, serves the API, but /health is never 200', async () => {
    for (let i = 0; i < 3; i += 1) {
      const res = await fetch(`${ctx.base}/health`);
      assert.equal(res.status, 503);
      const body = await res.json();
      assert.equal(body.status, 'broken');
      assert.equal(body.version, 'v3');
      assert.match(body.reason, /broken/);
    }
    assert.equal((await fetch(`${ctx.base}/api/version`)).status, 200);
  });
});

describe('config and validation', () => {
  test('defaults', () => {
    const c = loadConfig({});
    assert.equal(c.port, 5000);
    assert.equal(c.logDir, '/var/log/app');
    assert.equal(c.redisUrl, 'redis://127.0.0.1:6379/0');
    assert.equal(c.broken, false);
  });
  test('bad PORT is refused with the variable named', () => {
    assert.throws(() => loadConfig({ PORT: 'abc' }), /PORT/);
    assert.throws(() => loadConfig({ PORT: '70000' }), /PORT/);
  });
  test('validateItem trims and bounds', () => {
    assert.deepEqual(validateItem({ name: ' a ' }), { name: 'a' });
    assert.ok(validateItem(null).error);
    assert.ok(validateItem({ name: 'x'.repeat(101) }).error);
  });
});
