'use strict';

// Rename and reopen (what logrotate does, then SIGHUP): every line lands in
// the renamed file or the new one, once.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createLogger, flushLogger, reopenLogFiles } = require('../src/logger');

test('reopenLogFiles after a rename loses and repeats no line', async () => {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sample-api-reopen-'));
  const logger = createLogger({ logDir, version: 'v0', color: 'blue', stdout: false });
  const total = 20000;
  let seq = 0;
  await new Promise((resolve) => {
    function burst() {
      for (let k = 0; k < 200 && seq < total; k += 1) logger.info('line', { seq: seq++ });
      if (seq === 6000) {
        fs.renameSync(path.join(logDir, 'combined.log'), path.join(logDir, 'combined.log.1'));
        setTimeout(() => assert.equal(reopenLogFiles(logger), 2), 5);
      }
      if (seq < total) setImmediate(burst);
      else resolve();
    }
    burst();
  });
  await flushLogger(logger);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const seen = [];
  for (const name of ['combined.log.1', 'combined.log']) {
    const text = fs.readFileSync(path.join(logDir, name), 'utf8');
    for (const line of text.split('\n').filter(Boolean)) seen.push(JSON.parse(line).seq);
  }
  assert.ok(fs.statSync(path.join(logDir, 'combined.log.1')).size > 0, 'the renamed file got lines');
  assert.equal(seen.length, total, 'lines written');
  assert.equal(new Set(seen).size, total, 'distinct lines');
  fs.rmSync(logDir, { recursive: true, force: true });
});
