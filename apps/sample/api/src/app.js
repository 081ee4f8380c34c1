'use strict';

const express = require('express');

const NAME_MAX = 100;

function validateItem(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { error: 'body must be a JSON object like {"name": "..."}' };
  }
  if (typeof body.name !== 'string') {
    return { error: 'name is required and must be a string' };
  }
  const name = body.name.trim();
  if (name.length === 0) return { error: 'name must not be empty' };
  if (name.length > NAME_MAX) return { error: `name must be at most ${NAME_MAX} characters` };
  return { name };
}

function requestLevel(path, status) {
  if (path === '/health') return status < 400 ? 'debug' : 'warn';
  if (status >= 500) return 'error';
  if (status >= 400) return 'warn';
  return 'info';
}

// The HTTP layer. `state.shuttingDown` is flipped by the SIGTERM handler:
// /health then answers 503 (load balancers stop sending) and every response
// carries "Connection: close" so keep-alive clients reconnect elsewhere.
function createApp({ config, logger, store, state = { shuttingDown: false } }) {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    if (state.shuttingDown) res.set('Connection', 'close');
    res.on('finish', () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      logger.log(requestLevel(req.path, res.statusCode), 'request', {
        method: req.method,
        path: req.path,
        status: res.statusCode,
        duration_ms: Math.round(durationMs * 10) / 10,
        remote: req.socket.remoteAddress,
      });
    });
    next();
  });

  app.get('/health', async (req, res) => {
    const base = { version: config.version, color: config.color };
    if (config.broken) {
      return res.status(503).json({
        status: 'broken',
        reason: 'this build is deliberately broken (APP_BROKEN is set)',
        ...base,
      });
    }
    if (state.shuttingDown) {
      return res.status(503).json({ status: 'draining', reason: 'shutting down', ...base });
    }
    // Redis being briefly away does not make this instance unhealthy: it is
    // reported, and the item endpoints answer 503 until it is back.
    const redis = (await store.ping()) ? 'ok' : 'unavailable';
    return res.json({ status: 'ok', ...base, redis });
  });

  app.get('/api/version', (req, res) => {
    res.json({ version: config.version, color: config.color, node: process.version });
  });

  app.get('/api/items', async (req, res) => {
    try {
      res.json({ items: await store.listItems() });
    } catch (err) {
      logger.error('listing items failed', { error: err.message });
      res.status(503).json({ error: 'item store (redis) unavailable' });
    }
  });

  app.post('/api/items', express.json({ limit: '10kb', strict: false }), async (req, res) => {
    if (!req.is('application/json')) {
      return res.status(415).json({ error: 'send Content-Type: application/json' });
    }
    const checked = validateItem(req.body);
    if (checked.error) return res.status(400).json({ error: checked.error });
    try {
      const item = await store.addItem({
        name: checked.name,
        created_at: new Date().toISOString(),
        version: config.version,
        color: config.color,
      });
      logger.info('item created', { item_id: item.id });
      return res.status(201).json(item);
    } catch (err) {
      logger.error('creating item failed', { error: err.message });
      return res.status(503).json({ error: 'item store (redis) unavailable' });
    }
  });

  // Answers after ?ms= milliseconds: lets tests hold a request in flight
  // while the process is told to stop.
  app.get('/api/slow', async (req, res) => {
    const ms = Number(req.query.ms ?? 1000);
    if (!Number.isInteger(ms) || ms < 0 || ms > config.slowMaxMs) {
      return res.status(400).json({ error: `ms must be an integer between 0 and ${config.slowMaxMs}` });
    }
    await new Promise((resolve) => setTimeout(resolve, ms));
    return res.json({ slept_ms: ms, version: config.version, color: config.color });
  });

  app.use((req, res) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  });

  // Express recognises error handlers by their four parameters.
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    const status = err.status || err.statusCode || 500;
    if (status >= 500) logger.error('unhandled error', { error: err.message, stack: err.stack });
    const message = err.type === 'entity.parse.failed' ? 'body is not valid JSON' : err.expose ? err.message : 'internal error';
    res.status(status).json({ error: message });
  });

  return app;
}

module.exports = { createApp, validateItem, requestLevel };
