'use strict';

const { createClient } = require('redis');

const ITEMS_KEY = 'sample:items';
const SEQ_KEY = 'sample:items:seq';
const LIST_LIMIT = 100;

// Items kept in Redis: a list of JSON documents plus a counter for ids.
// The client reconnects on its own; while Redis is away commands fail at once
// (no offline queue) so requests answer 503 instead of hanging.
function createRedisStore({ url, logger }) {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 2000,
      reconnectStrategy: (retries) => Math.min(100 + retries * 200, 2000),
    },
  });
  let lastError = null;
  client.on('error', (err) => {
    // Every reconnect attempt raises one: log only when the reason changes.
    const message = err && err.message ? err.message : String(err);
    if (message !== lastError) {
      lastError = message;
      logger.warn('redis error', { error: message });
    }
  });
  client.on('ready', () => {
    lastError = null;
    logger.info('redis ready', { redis_url: redactUrl(url) });
  });
  client.on('end', () => logger.info('redis connection closed'));

  return {
    connect() {
      return client.connect().catch((err) => {
        logger.warn('redis connect failed, retrying in the background', { error: err.message });
      });
    },
    get ready() {
      return client.isReady;
    },
    async ping(timeoutMs = 1000) {
      if (!client.isReady) return false;
      let timer;
      try {
        const result = await Promise.race([
          client.ping(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('redis ping timed out')), timeoutMs);
          }),
        ]);
        return result === 'PONG';
      } catch {
        return false;
      } finally {
        clearTimeout(timer);
      }
    },
    async listItems() {
      const raw = await client.lRange(ITEMS_KEY, -LIST_LIMIT, -1);
      return raw.map((entry) => JSON.parse(entry));
    },
    async addItem(fields) {
      const id = await client.incr(SEQ_KEY);
      const item = { id, ...fields };
      await client.rPush(ITEMS_KEY, JSON.stringify(item));
      return item;
    },
    async close() {
      if (client.isOpen) {
        try {
          await client.close();
        } catch {
          client.destroy();
        }
      } else {
        // Stop the background reconnect loop, if any.
        try {
          client.destroy();
        } catch {
          /* not open */
        }
      }
    },
  };
}

function redactUrl(url) {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'invalid url';
  }
}

// Same interface in memory, for the unit tests of the HTTP layer.
function createMemoryStore() {
  const items = [];
  let available = true;
  return {
    connect: async () => {},
    get ready() {
      return available;
    },
    setAvailable(value) {
      available = value;
    },
    async ping() {
      return available;
    },
    async listItems() {
      if (!available) throw new Error('store unavailable');
      return items.slice(-LIST_LIMIT);
    },
    async addItem(fields) {
      if (!available) throw new Error('store unavailable');
      const item = { id: items.length + 1, ...fields };
      items.push(item);
      return item;
    },
    async close() {},
  };
}

module.exports = { createRedisStore, createMemoryStore, redactUrl, ITEMS_KEY, SEQ_KEY };
