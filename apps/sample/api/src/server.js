'use strict';

const http = require('node:http');
const { loadConfig } = require('./config');
const { createLogger, flushLogger, reopenLogFiles } = require('./logger');
const { createRedisStore } = require('./store');
const { createApp } = require('./app');

// Start the API and return a handle whose shutdown() drains it:
// stop accepting, let in-flight requests finish (up to shutdownTimeoutMs),
// close idle keep-alive connections at once, close Redis, flush the logs.
function start({ config, logger, store }) {
  const state = { shuttingDown: false };
  const app = createApp({ config, logger, store, state });
  const server = http.createServer(app);
  // Longer than a typical proxy's upstream keep-alive so nginx closes first.
  server.keepAliveTimeout = 65000;
  server.headersTimeout = 66000;

  // Responses not yet sent when SIGTERM comes get "Connection: close" too.
  const active = new Set();
  server.on('request', (req, res) => {
    active.add(res);
    res.on('close', () => active.delete(res));
  });

  let closing = null;
  function shutdown(signal) {
    if (closing) return closing;
    state.shuttingDown = true;
    logger.info('shutdown started', { signal, in_flight: active.size });
    for (const res of active) {
      if (!res.headersSent) res.setHeader('Connection', 'close');
    }
    closing = new Promise((resolve) => {
      const force = setTimeout(() => {
        logger.warn('shutdown timeout reached, closing remaining connections', {
          in_flight: active.size,
          timeout_ms: config.shutdownTimeoutMs,
        });
        server.closeAllConnections();
      }, config.shutdownTimeoutMs);
      force.unref();
      server.close(async () => {
        clearTimeout(force);
        await store.close();
        logger.info('shutdown complete', { signal });
        resolve();
      });
      // Keep-alive sockets with no request on them would hold close() open
      // until they time out; busy ones close after their response.
      server.closeIdleConnections();
    });
    return closing;
  }

  const listening = new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      const { port } = server.address();
      logger.info('listening', {
        port,
        host: config.host,
        broken: config.broken,
        node: process.version,
      });
      resolve(port);
    });
  });

  store.connect();
  return { server, listening, shutdown, state };
}

function main() {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    process.stderr.write(`sample-api: ${err.message}\n`);
    process.exit(2);
  }
  const logger = createLogger(config);
  const store = createRedisStore({ url: config.redisUrl, logger });
  const handle = start({ config, logger, store });

  handle.listening.catch(async (err) => {
    logger.error('cannot listen', { error: err.message, port: config.port });
    await flushLogger(logger);
    process.exit(1);
  });

  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, async () => {
      await handle.shutdown(signal);
      await flushLogger(logger);
      process.exit(0);
    });
  }
  // logrotate renamed the files (rename and reopen, never copytruncate).
  process.on('SIGHUP', () => {
    const reopened = reopenLogFiles(logger);
    logger.info('log files reopened', { files: reopened });
  });
  process.on('uncaughtException', async (err) => {
    logger.error('uncaught exception', { error: err.message, stack: err.stack });
    await flushLogger(logger);
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    logger.error('unhandled rejection', { error: err && err.message ? err.message : String(err) });
  });
}

if (require.main === module) main();

module.exports = { start };
