'use strict';

const fs = require('node:fs');
const path = require('node:path');
const winston = require('winston');

// JSON lines {"level","message","timestamp",...} to stdout and, when the log
// directory is writable, to error.log (errors only) and combined.log (all).
function createLogger({ logDir, logLevel = 'info', version, color, stdout = true } = {}) {
  const format = winston.format.combine(
    winston.format.timestamp(),
    winston.format.errors({ stack: true }),
    winston.format.json(),
  );
  const transports = [];
  if (stdout) transports.push(new winston.transports.Console());
  let fileError = null;
  if (logDir) {
    try {
      fs.mkdirSync(logDir, { recursive: true });
      fs.accessSync(logDir, fs.constants.W_OK);
      transports.push(
        new winston.transports.File({ filename: path.join(logDir, 'error.log'), level: 'error' }),
        new winston.transports.File({ filename: path.join(logDir, 'combined.log') }),
      );
    } catch (err) {
      fileError = err;
    }
  }
  const logger = winston.createLogger({
    level: logLevel,
    format,
    defaultMeta: { service: 'sample-api', version, color, pid: process.pid },
    transports: transports.length ? transports : [new winston.transports.Console({ silent: true })],
  });
  if (fileError) {
    logger.warn('log directory not writable, logging to stdout only', {
      log_dir: logDir,
      error: fileError.message,
    });
  }
  return logger;
}

// Resolve once every transport has written what it was given, so the last
// lines ("shutdown complete") reach combined.log before the process exits.
function flushLogger(logger, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const files = logger.transports.filter((t) => t instanceof winston.transports.File);
    let pending = files.length;
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    const done = () => {
      pending -= 1;
      if (pending <= 0) {
        clearTimeout(timer);
        resolve();
      }
    };
    if (pending === 0) {
      logger.end();
      setImmediate(() => {
        clearTimeout(timer);
        resolve();
      });
      return;
    }
    for (const t of files) t.once('finish', done);
    logger.end();
  });
}

// Reopen error.log and combined.log by name (SIGHUP, after logrotate renamed
// them): new file transports take over in the same tick, so no line is lost
// or written twice; the old ones finish what they hold in the renamed files.
function reopenLogFiles(logger) {
  const files = logger.transports.filter((t) => t instanceof winston.transports.File);
  for (const old of files) {
    logger.add(
      new winston.transports.File({
        filename: path.join(old.dirname, old.filename),
        level: old.level,
      }),
    );
    // A removed transport closes its file at once and drops the lines it
    // still holds: close it only when it has written them.
    const close = old.close.bind(old);
    old.close = () => {};
    logger.remove(old);
    old.once('finish', () => close());
    old.end();
  }
  return files.length;
}

module.exports = { createLogger, flushLogger, reopenLogFiles };
