'use strict';

// The sample API's data migration, run once per release as a one-off
// container of the new image before any traffic moves to it
// (`node src/migrate.js`; webstack_apps[].migrate in the inventory):
//
//   items-schema-2  every item in sample:items gets `schema: 2` and a `slug`
//                   made from its name; items already at schema 2 are left
//                   alone, so a second run rewrites nothing.
//
// The list is rewritten in one MULTI/EXEC under WATCH: a write that lands
// meanwhile makes the transaction retry, nothing is lost. Prints one JSON
// line (what it did) and exits 0; any failure exits 1 having changed
// nothing. A build made deliberately broken (APP_BROKEN) refuses to migrate.

const { createClient } = require('redis');
const { loadConfig } = require('./config');
const { ITEMS_KEY } = require('./store');

const MIGRATION = 'items-schema-2';
const TRIES = 5;

function slugify(name) {
  return String(name)
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

// The items after the migration, and how many of them changed.
function migrateItems(items) {
  let rewritten = 0;
  const migrated = items.map((item) => {
    if (item && item.schema >= 2) return item;
    rewritten += 1;
    return { ...item, schema: 2, slug: slugify(item.name) };
  });
  return { migrated, rewritten };
}

async function migrate(client) {
  for (let attempt = 1; attempt <= TRIES; attempt += 1) {
    await client.watch(ITEMS_KEY);
    const raw = await client.lRange(ITEMS_KEY, 0, -1);
    const { migrated, rewritten } = migrateItems(raw.map((entry) => JSON.parse(entry)));
    if (rewritten === 0) {
      await client.unwatch();
      return { items: raw.length, rewritten: 0, attempts: attempt };
    }
    const multi = client.multi().del(ITEMS_KEY);
    if (migrated.length > 0) multi.rPush(ITEMS_KEY, migrated.map((item) => JSON.stringify(item)));
    try {
      const result = await multi.exec();
      if (result !== null) return { items: raw.length, rewritten, attempts: attempt };
    } catch (err) {
      if (err.name !== 'WatchError') throw err;
    }
  }
  throw new Error(`${ITEMS_KEY} kept changing: gave up after ${TRIES} tries`);
}

async function main() {
  const config = loadConfig();
  const started = Date.now();
  const report = { migration: MIGRATION, version: config.version };
  if (config.broken) {
    console.log(JSON.stringify({ ...report, error: 'this build is deliberately broken (APP_BROKEN is set): nothing migrated' }));
    return 1;
  }
  const client = createClient({ url: config.redisUrl, socket: { connectTimeout: 5000, reconnectStrategy: false } });
  client.on('error', () => {}); // reported by the command that fails
  try {
    await client.connect();
    const done = await migrate(client);
    console.log(JSON.stringify({ ...report, ...done, seconds: (Date.now() - started) / 1000 }));
    return 0;
  } catch (err) {
    console.log(JSON.stringify({ ...report, error: err.message }));
    return 1;
  } finally {
    if (client.isOpen) await client.close().catch(() => client.destroy());
  }
}

if (require.main === module) {
  main().then((code) => {
    process.exitCode = code;
  });
}

module.exports = { migrateItems, slugify, MIGRATION };
