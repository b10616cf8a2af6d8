// fgs runtime for Node.js handlers (fgs SPEC.md section 4).
//
// Speaks the instance's Runtime API exactly like a Custom runtime would: long-polls
// GET /v1/runtime/invocation/request through a keep-alive agent, runs the `file.func` handler
// named by RUNTIME_HANDLER (`async (event, context)` or `(event, context, callback)`) and posts
// the result to .../response/{id} or .../error/{id}. Built-in modules only.
//
// fgs writes this file into a read-only runtime directory and starts it with the node binary
// mapped to the function's runtime name, with cwd at the code root. Writes to a pipe are
// synchronous in Node.js on Linux, so console output is in fgs's hands before the response is.
'use strict';

const http = require('http');
const path = require('path');
const fs = require('fs');
const util = require('util');
const Module = require('module');

// A pre-started interpreter (fgs docs/runtimes.md) started with no function and waits here for
// fgs's message on fd 3, which comes once the function's code, dependencies and limits are in
// place. It then becomes what a start for the function would have made: the function's
// environment and nothing of the placeholder's, its cwd, and the global module paths NODE_PATH
// and HOME give at start.
if (process.env.FGS_PLACEHOLDER === '1') {
  const msg = JSON.parse(fs.readFileSync(3, 'utf8'));
  fs.closeSync(3);
  for (const k of Object.keys(process.env)) delete process.env[k];
  for (const [k, v] of msg.env) process.env[k] = v;
  process.chdir(msg.cwd);
  Module._initPaths();
}

const ENV = process.env;
const API_ADDR = ENV.RUNTIME_API_ADDR || '';
const CODE_ROOT = ENV.RUNTIME_CODE_ROOT || process.cwd();

// Error codes fgs gives meaning to (SPEC.md 3); a runtime may name them in `errorCode`.
const HANDLER_NOT_FOUND = 4001;
const INIT_TIMEOUT = 4211;

const [apiHost, apiPort] = (() => {
  const i = API_ADDR.lastIndexOf(':');
  return [API_ADDR.slice(0, i), Number(API_ADDR.slice(i + 1))];
})();
// Events taken at once (the function's `strategy_config.concurrent_num`, fgs's one argument):
// each has its own long poll and kept-alive connection, so a handler that awaits I/O does not
// hold up the next event.
const CONCURRENCY = Math.max(1, parseInt(process.argv[1], 10) || 1);
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function intEnv(name, dflt = 0) {
  const n = parseInt(ENV[name], 10);
  return Number.isNaN(n) ? dflt : n;
}

const USER_DATA = (() => {
  try {
    const d = JSON.parse(ENV.RUNTIME_USERDATA || '{}');
    return d && typeof d === 'object' && !Array.isArray(d) ? d : {};
  } catch (_) {
    return {};
  }
})();

function write(text) {
  process.stdout.write(text);
}

// FunctionGraph's logger: `<ISO-8601 UTC with ms> <request id> <LEVEL> <message>`.
class Logger {
  constructor(requestId) {
    this.requestId = requestId;
  }
  log(level, args) {
    write(`${new Date().toISOString()} ${this.requestId} ${level} ${util.format(...args)}\n`);
  }
  debug(...a) { this.log('DEBUG', a); }
  info(...a) { this.log('INFO', a); }
  warn(...a) { this.log('WARN', a); }
  error(...a) { this.log('ERROR', a); }
  setLevel() {}
}

// The context object of FunctionGraph's Node.js runtime (SPEC.md 4).
class Context {
  constructor(requestId, timeoutMs, headers) {
    this.requestId = requestId;
    this.deadline = Date.now() + timeoutMs;
    this.headers = headers || {};
    this.logger = new Logger(requestId);
  }
  header(name) { return this.headers[name.toLowerCase()] || ''; }
  getRequestID() { return this.requestId; }
  getRemainingTimeInMilliSeconds() { return Math.max(0, this.deadline - Date.now()); }
  getUserData(key) { return USER_DATA[key]; }
  getFunctionName() { return ENV.RUNTIME_FUNC_NAME || ''; }
  getVersion() { return ENV.RUNTIME_FUNC_VERSION || ''; }
  getMemorySize() { return intEnv('RUNTIME_MEMORY'); }
  getCPUNumber() { return intEnv('RUNTIME_CPU'); }
  getPackage() { return ENV.RUNTIME_PACKAGE || ''; }
  getProjectID() { return ENV.RUNTIME_PROJECT_ID || ''; }
  // FunctionGraph's name for the function's timeout, not the time spent so far.
  getRunningTimeInSeconds() { return intEnv('RUNTIME_TIMEOUT'); }
  getAlias() { return this.header('X-Cff-Alias'); }
  // [FGS] The invocation's W3C trace context, for the function's own outgoing calls.
  getTraceparent() { return this.header('traceparent'); }
  getLogger() { return this.logger; }
  getAccessKey() { return this.header('X-CFF-Access-Key'); }
  getSecretKey() { return this.header('X-CFF-Secret-Key'); }
  getToken() { return this.header('X-CFF-Auth-Token'); }
  getSecurityAccessKey() { return this.header('X-CFF-Security-Access-Key'); }
  getSecuritySecretKey() { return this.header('X-CFF-Security-Secret-Key'); }
  getSecurityToken() { return this.header('X-CFF-Security-Token'); }
}

function call(method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = body.length;
    }
    const req = http.request(
      { host: apiHost, port: apiPort, method, path: urlPath, agent, headers },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setNoDelay(true);
    req.end(body);
  });
}

async function callRetry(method, urlPath, body) {
  try {
    return await call(method, urlPath, body);
  } catch (_) {
    // A kept-alive socket may have been closed under us: one fresh try.
    return call(method, urlPath, body);
  }
}

class FunctionFailure extends Error {
  constructor(body) {
    super(body.errorMessage);
    this.body = body;
  }
}

function errorBody(err) {
  if (err instanceof FunctionFailure) return err.body;
  if (err instanceof Error) {
    const stack = String(err.stack || '').split('\n').slice(1).map((s) => s.trim()).filter(Boolean);
    return { errorType: err.name || 'Error', errorMessage: err.message, stackTrace: stack };
  }
  return { errorType: 'Error', errorMessage: typeof err === 'string' ? err : util.inspect(err), stackTrace: [] };
}

function printError(err) {
  if (err instanceof FunctionFailure) return;
  process.stderr.write(`${err instanceof Error ? err.stack : util.inspect(err)}\n`);
}

function setPaths() {
  // SPEC.md 4: node_modules of the code and of dependencies (NODE_PATH) resolve from anywhere.
  const extra = [path.join(CODE_ROOT, 'node_modules')];
  const cur = (ENV.NODE_PATH || '').split(path.delimiter).filter(Boolean);
  ENV.NODE_PATH = cur.concat(extra.filter((p) => !cur.includes(p))).join(path.delimiter);
  Module._initPaths();
}

function notFound(what, spec, message) {
  return new FunctionFailure({
    errorCode: HANDLER_NOT_FOUND,
    errorType: 'HandlerNotFound',
    errorMessage: `${what} "${spec}" is not found: ${message}`,
  });
}

// The function named `file.func` (or `dir/file.func`) in the code.
async function load(spec, what) {
  const dot = spec.lastIndexOf('.');
  if (dot <= 0 || dot === spec.length - 1) {
    throw notFound(what, spec, 'it is not of the form file.function');
  }
  const modName = spec.slice(0, dot);
  const fnName = spec.slice(dot + 1);
  const base = path.resolve(CODE_ROOT, modName);
  // fgs refuses `..` at create time; a handler stored before that never leaves the code root.
  if (path.relative(CODE_ROOT, base).split(path.sep).includes('..') || path.isAbsolute(modName)) {
    throw notFound(what, spec, `it names a file outside ${CODE_ROOT}`);
  }
  let file = null;
  for (const ext of ['.js', '.cjs', '.mjs', '']) {
    if (fs.existsSync(base + ext) && fs.statSync(base + ext).isFile()) {
      file = base + ext;
      break;
    }
  }
  if (file === null && fs.existsSync(path.join(base, 'index.js'))) file = path.join(base, 'index.js');
  if (file === null) throw notFound(what, spec, `no module "${modName}" in ${CODE_ROOT}`);
  let mod;
  try {
    mod = require(file);
  } catch (e) {
    if (e && e.code !== 'ERR_REQUIRE_ESM') throw e;
    mod = await import(require('url').pathToFileURL(file).href);
  }
  let fn = mod ? mod[fnName] : undefined;
  if (fn === undefined && mod && mod.default) fn = mod.default[fnName];
  if (typeof fn !== 'function') {
    throw notFound(what, spec, `module "${modName}" has no exported function "${fnName}"`);
  }
  return fn;
}

// Calls a handler in any of its styles and settles with its result: a returned promise, the
// callback (when the function declares it and returns no promise), or a plain return value.
function callHandler(fn, args, cbIndex) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const cb = (err, res) => {
      if (settled) return;
      settled = true;
      if (err !== null && err !== undefined) reject(err);
      else resolve(res);
    };
    let r;
    try {
      r = fn(...args.slice(0, cbIndex), cb);
    } catch (e) {
      cb(e);
      return;
    }
    if (r && typeof r.then === 'function') {
      r.then((v) => cb(null, v), (e) => cb(e === undefined || e === null ? new Error('handler rejected') : e));
    } else if (fn.length <= cbIndex) {
      cb(null, r);
    }
  });
}

function withTimeout(promise, ms, onTimeout) {
  if (!(ms > 0)) return promise;
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

function encode(result) {
  // FunctionGraph answers a returned string as it is, anything else as JSON.
  if (typeof result === 'string') return Buffer.from(result, 'utf8');
  if (Buffer.isBuffer(result)) return result;
  if (result === undefined) return Buffer.alloc(0);
  return Buffer.from(JSON.stringify(result), 'utf8');
}

function newId() {
  // Only initializers and pre-stop handlers need one: crypto loads lazily.
  const crypto = require('crypto');
  return crypto.randomUUID ? crypto.randomUUID() : crypto.randomBytes(16).toString('hex');
}

async function initFailed(body) {
  try {
    await callRetry('POST', '/v1/runtime/init/error', Buffer.from(JSON.stringify(body)));
  } finally {
    process.exit(1);
  }
}

async function initialize() {
  const spec = ENV.RUNTIME_INITIALIZER_HANDLER || '';
  if (!spec) return;
  // [FGS] Marks where the initializer starts (it ends at the first event's request or the init
  // error): its span in a traced cold start.
  await callRetry('POST', '/fgs/v1/initializer/start', Buffer.alloc(0));
  const timeout = intEnv('RUNTIME_INITIALIZER_TIMEOUT', 0);
  const ctx = new Context(newId(), timeout > 0 ? timeout * 1000 : 86400000, {});
  const timedOut = new FunctionFailure({
    errorCode: INIT_TIMEOUT,
    errorType: 'InitializerTimeout',
    errorMessage: `initializer ${spec} timed out after ${timeout}s`,
  });
  try {
    const fn = await load(spec, 'initializer');
    await withTimeout(callHandler(fn, [ctx], 1), timeout * 1000, () => timedOut);
  } catch (e) {
    printError(e);
    const body = errorBody(e);
    if (e !== timedOut) delete body.errorCode; // a missing initializer fails as 4201
    await initFailed(body);
  }
}

function installPreStop() {
  const spec = ENV.RUNTIME_PRE_STOP_HANDLER || '';
  if (!spec) return;
  const timeout = intEnv('RUNTIME_PRE_STOP_TIMEOUT', 3);
  process.once('SIGTERM', async () => {
    const ctx = new Context(newId(), timeout * 1000, {});
    try {
      const fn = await load(spec, 'pre-stop handler');
      await withTimeout(callHandler(fn, [ctx], 1), timeout * 1000,
        () => new Error(`pre-stop handler ${spec} timed out after ${timeout}s`));
    } catch (e) {
      printError(e);
    }
    process.exit(0);
  });
}

// The events being handled, for `fatal` to fail them.
const inflight = new Set();

async function fail(requestId, err) {
  printError(err);
  await callRetry('POST', `/v1/runtime/invocation/error/${requestId}`, Buffer.from(JSON.stringify(errorBody(err))));
}

// An error thrown outside any promise chain of a handler: the invocations in flight fail (which
// one threw cannot be told), and the process, whose state is unknown now, ends.
async function fatal(err) {
  if (inflight.size > 0) {
    const ids = [...inflight];
    inflight.clear();
    try {
      await Promise.all(ids.map((id) => fail(id, err)));
    } catch (_) { /* the instance ends anyway */ }
  } else {
    printError(err);
  }
  process.exit(1);
}

async function main() {
  if (!API_ADDR) {
    process.stderr.write('RUNTIME_API_ADDR is not set: this runtime is started by fgs\n');
    process.exit(2);
  }
  setPaths();
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  let handler = null;
  let handlerError = null;
  try {
    handler = await load(ENV.RUNTIME_HANDLER || '', 'handler');
  } catch (e) {
    if (e instanceof FunctionFailure) {
      handlerError = e; // answered to every event, the instance stays warm
    } else {
      printError(e);
      await initFailed(errorBody(e));
    }
  }
  await initialize();
  installPreStop();
  let warning = ENV.FGS_RUNTIME_WARNING || '';

  // One event of one long poll at a time; CONCURRENCY of them run side by side.
  async function serve() {
    for (;;) {
      const res = await callRetry('GET', '/v1/runtime/invocation/request');
      if (res.status === 410) return;
      if (res.status !== 200) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const requestId = res.headers['x-cff-request-id'] || '';
      let timeoutMs = parseInt(res.headers['x-cff-timeout-ms'], 10);
      if (!(timeoutMs > 0)) timeoutMs = intEnv('RUNTIME_TIMEOUT', 3) * 1000;
      const ctx = new Context(requestId, timeoutMs, res.headers);
      if (warning) {
        ctx.getLogger().warn(warning);
        warning = '';
      }
      inflight.add(requestId);
      let out;
      try {
        if (handlerError) throw handlerError;
        let event;
        try {
          event = res.body.length ? JSON.parse(res.body.toString('utf8')) : {};
        } catch (_) {
          event = res.body.toString('utf8');
        }
        out = encode(await callHandler(handler, [event, ctx], 2));
      } catch (e) {
        if (inflight.delete(requestId)) await fail(requestId, e);
        continue;
      }
      if (inflight.delete(requestId)) {
        await callRetry('POST', `/v1/runtime/invocation/response/${requestId}`, out);
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, serve));
}

main().catch(fatal);
