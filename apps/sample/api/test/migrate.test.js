'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { migrateItems, slugify } = require('../src/migrate');

test('migrateItems brings every item to schema 2 with a slug of its name', () => {
  const { migrated, rewritten } = migrateItems([
    { id: 1, name: 'First Item' },
    { id: 2, name: '  Ünïcode & more!  ' },
  ]);
  assert.equal(rewritten, 2);
  assert.deepEqual(migrated[0], { id: 1, name: 'First Item', schema: 2, slug: 'first-item' });
  assert.equal(migrated[1].schema, 2);
  assert.equal(migrated[1].slug, 'n-code-more');
});

test('migrateItems leaves items already at schema 2 alone, so a second run rewrites nothing', () => {
  const once = migrateItems([{ id: 1, name: 'a' }, { id: 2, name: 'b', schema: 2, slug: 'kept' }]);
  assert.equal(once.rewritten, 1);
  assert.equal(once.migrated[1].slug, 'kept');
  const twice = migrateItems(once.migrated);
  assert.equal(twice.rewritten, 0);
  assert.deepEqual(twice.migrated, once.migrated);
});

test('slugify keeps letters and digits, joined by dashes', () => {
  assert.equal(slugify('Smoke Test 42'), 'smoke-test-42');
  assert.equal(slugify('---'), '');
});
