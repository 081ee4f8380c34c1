'use strict';

// Runtime settings, all from the environment. The image bakes APP_VERSION and
// APP_BROKEN in at build time; the deploy roles set PORT, REDIS_URL, COLOR and
// LOG_DIR per container (blue/green).

function intFrom(env, name, fallback, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer between ${min} and ${max}, got '${raw}'`);
  }
  return value;
}

function truthy(raw) {
  return ['1', 'true', 'yes', 'on'].includes(String(raw || '').toLowerCase());
}

function loadConfig(env = process.env) {
  return {
    port: intFrom(env, 'PORT', 5000, { min: 0, max: 65535 }),
    host: env.HOST || '0.0.0.0',
    version: env.APP_VERSION || 'dev',
    color: env.COLOR || 'none',
    broken: truthy(env.APP_BROKEN),
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379/0',
    logDir: env.LOG_DIR || '/var/log/app',
    logLevel: env.LOG_LEVEL || 'info',
    // How long SIGTERM waits for in-flight requests before closing them anyway.
    shutdownTimeoutMs: intFrom(env, 'SHUTDOWN_TIMEOUT_MS', 10000, { min: 0, max: 600000 }),
    // Upper bound of GET /api/slow?ms=..., the endpoint drain tests use.
    slowMaxMs: intFrom(env, 'SLOW_MAX_MS', 10000, { min: 0, max: 600000 }),
  };
}

module.exports = { loadConfig, truthy };
