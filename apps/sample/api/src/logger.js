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
// them). winston's file transport has no public reopen, so this takes the
// steps of its own size rotation without renaming: hold new lines, let the
// old file receive every line it was given and close, then open the path
// again and release the held lines into it. The renamed file is complete
// before the new one exists, which is what a tailer such as rsyslog's imfile
// needs to lose nothing.
function reopenLogFiles(logger) {
  const files = logger.transports.filter((t) => t instanceof winston.transports.File);
  for (const transport of files) {
    if (transport._rotate || transport._opening) continue; // already switching files
    transport._rotate = true;
    transport._endStream(() => transport.open());
  }
  return files.length;
}

module.exports = { createLogger, flushLogger, reopenLogFiles };
