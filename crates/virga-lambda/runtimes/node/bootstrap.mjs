// Virga's runtime interface client for Node.js Lambda functions.
//
// Virga starts this file as `node bootstrap.mjs` with cwd = LAMBDA_TASK_ROOT.
// It speaks the Lambda Runtime API (GET .../invocation/next, POST .../response
// or .../error) and follows AWS's own client (aws-lambda-nodejs-runtime-
// interface-client, as bundled in /var/runtime/index.mjs of the nodejs18.x to
// nodejs22.x runtimes) closely: handler lookup, the callback / context.done /
// promise programming models, "wait for an empty event loop", error bodies and
// the console log format, so functions behave as they would on AWS.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import Module, { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------
// Errors: AWS names its own errors "Runtime.<Class>" via the prototype.
// ---------------------------------------------------------------------------

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
for (const cls of [ImportModuleError, HandlerNotFound, MalformedHandlerName, UserCodeSyntaxError, NodeJsExit, UnhandledPromiseRejection]) {
  cls.prototype.name = `Runtime.${cls.name}`;
}

const isErrorLike = (o) =>
  o && typeof o.name === 'string' && o.name && typeof o.message === 'string' && o.message && typeof o.stack === 'string';

// Body of an /error POST. Non-Error values keep AWS's quirky shape:
// `throw "boom"` is reported as {"errorType":"string","errorMessage":"boom"}.
function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || isErrorLike(error)) {
      return { errorType: error.name, errorMessage: error.message, trace: error.stack.split('\n') };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

const intoError = (err) => (err instanceof Error ? err : new Error(err));

// The log form of an error: "\t" + JSON with name, message, code, the
// enumerable properties and the stack as an array (nested errors likewise).
function toFormatted(error) {
  const withEnumerableProperties = (_key, value) => {
    if (!(value instanceof Error)) return value;
    const ret = Object.assign({ errorType: value.name, errorMessage: value.message, code: value.code }, value);
    if (typeof value.stack === 'string') ret.stack = value.stack.split('\n');
    return ret;
  };
  try {
    return '\t' + JSON.stringify(error, withEnumerableProperties);
  } catch {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

// ---------------------------------------------------------------------------
// Console. Text format (the default): "<ISO time>\t<request id>\t<LEVEL>\t
// <util.format(...)>" on stdout. Newlines become "\r" so a multi-line message
// stays one log event (Virga, like the Lambda platform, splits stdout on "\n").
// JSON format (AWS_LAMBDA_LOG_FORMAT=JSON, LoggingConfig.LogFormat JSON):
// {"timestamp","level","requestId","message"} per call, as AWS's LogPatch.js.
// Either way calls below AWS_LAMBDA_LOG_LEVEL are dropped.
// ---------------------------------------------------------------------------

// AWS keeps the request id under a global symbol; tools such as Powertools read it.
const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
let currentTenantId; // of the invocation in progress; in JSON records when set

const jsonLogFormat = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';

// Errors in a JSON record: errorType (the constructor's name), errorMessage,
// stackTrace as an array, then the enumerable properties.
const jsonErrorReplacer = (_key, value) => {
  if (value instanceof Error) {
    return Object.assign(
      {
        errorType: value?.constructor?.name ?? 'UnknownError',
        errorMessage: value.message,
        stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
      },
      value,
    );
  }
  return value;
};

function formatJsonMessage(requestId, timestamp, level, ...messageParams) {
  const result = { timestamp, level, requestId };
  if (currentTenantId) result.tenantId = currentTenantId;
  if (messageParams.length === 1) {
    // A single argument is kept as is (an object stays an object).
    result.message = messageParams[0];
    try {
      return JSON.stringify(result, jsonErrorReplacer);
    } catch {
      result.message = util.format(result.message); // circular, BigInt...
      return JSON.stringify(result);
    }
  }
  result.message = util.format(...messageParams);
  for (const param of messageParams) {
    if (param instanceof Error) {
      result.errorType = param?.constructor?.name ?? 'UnknownError';
      result.errorMessage = param.message;
      result.stackTrace = typeof param.stack === 'string' ? param.stack.split('\n') : [];
      break;
    }
  }
  return JSON.stringify(result);
}

function patchConsole() {
  const write = jsonLogFormat
    ? (level) => (message, ...params) => {
        const line = formatJsonMessage(globalThis[REQUEST_ID], new Date().toISOString(), level, message, ...params);
        process.stdout.write(line.replace(/\n/g, '\r') + '\n');
      }
    : (level) => (message, ...params) => {
        const line = `${new Date().toISOString()}\t${globalThis[REQUEST_ID]}\t${level}\t${util.format(message, ...params)}`;
        process.stdout.write(line.replace(/\n/g, '\r') + '\n');
      };
  const levels = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
  const wanted = levels.indexOf((process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase());
  const enabled = (level) => levels.indexOf(level) >= Math.max(wanted, 0);
  const nop = () => {};
  console.trace = enabled('TRACE') ? write('TRACE') : nop; // like AWS: no stack trace
  console.debug = enabled('DEBUG') ? write('DEBUG') : nop;
  console.info = enabled('INFO') ? write('INFO') : nop;
  console.log = console.info;
  console.warn = enabled('WARN') ? write('WARN') : nop;
  console.error = enabled('ERROR') ? write('ERROR') : nop;
  console.fatal = write('FATAL');
}

// The runtime's own error records ("Invoke Error", "Uncaught Exception"...):
// the JSON format logs just the error, as AWS does.
const logError = jsonLogFormat
  ? (_msg, err) => console.error(intoError(err))
  : (msg, err) => console.error(msg, toFormatted(intoError(err)));

// ---------------------------------------------------------------------------
// Runtime API client. node:http rather than fetch: undici's default 300 s
// headers timeout would break the indefinitely blocking GET /next.
// ---------------------------------------------------------------------------

const API = process.env.AWS_LAMBDA_RUNTIME_API;
const [API_HOST, API_PORT] = [API.slice(0, API.lastIndexOf(':')).replace(/^\[|\]$/g, ''), API.slice(API.lastIndexOf(':') + 1)];
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, urlPath, body, headers, retried = false) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: API_HOST, port: API_PORT, method, path: `/2018-06-01/runtime${urlPath}`, agent, headers },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', (err) => {
      // The server may have closed the idle keep-alive connection just as we
      // reused it; one retry on a fresh connection is safe.
      if (req.reusedSocket && !retried) resolve(call(method, urlPath, body, headers, true));
      else reject(err);
    });
    req.end(body);
  });
}

function fatal(what, err) {
  process.stderr.write(`virga bootstrap: ${what} failed: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
}

// The outcome of a POST is Virga's business, not the function's: a rejection
// (413 for an oversized response, 400 for a second answer) or even a
// connection cut mid-upload (Virga answers 413 without reading the body) is
// not reported. If Virga is really gone, the next GET fails and we exit.
function post(urlPath, bodyString, extraHeaders, callback) {
  const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(bodyString), ...extraHeaders };
  call('POST', urlPath, bodyString, headers).then(() => callback(), () => callback());
}

function serialize(body) {
  try {
    return JSON.stringify(body === undefined ? null : body);
  } catch {
    throw new Error('Unable to stringify response body');
  }
}

const errorTypeHeader = (type) => ({
  'Lambda-Runtime-Function-Error-Type': /^[\x20-\x7e]*$/.test(String(type)) ? String(type) : 'Unhandled',
});

const client = {
  async nextInvocation() {
    const res = await call('GET', '/invocation/next');
    if (res.status !== 200) throw new Error(`GET next -> ${res.status} ${res.body.slice(0, 200)}`);
    return res;
  },
  // Serialisation happens synchronously, so a failure throws at the caller,
  // exactly where AWS's client throws it.
  postInvocationResponse(result, id, callback) {
    post(`/invocation/${encodeURIComponent(id)}/response`, serialize(result), {}, callback);
  },
  postInvocationError(error, id, callback) {
    const response = toRapidResponse(error);
    post(`/invocation/${encodeURIComponent(id)}/error`, serialize(response), errorTypeHeader(response.errorType), callback);
  },
  postInitError(error, callback) {
    const response = toRapidResponse(error);
    post('/init/error', serialize(response), errorTypeHeader(response.errorType), callback);
  },
};

// ---------------------------------------------------------------------------
// Module resolution: layers live under $VIRGA_LAMBDA_OPT (Virga's /opt).
// ---------------------------------------------------------------------------

function addLayerPaths(taskRoot) {
  // Same NODE_PATH as AWS (/opt/nodejs/nodeNN/node_modules:/opt/nodejs/node_modules:
  // ...:/var/task), plus whatever Virga or the user already set. The CJS loader
  // reads NODE_PATH only at start-up, hence _initPaths(). ESM `import` ignores
  // NODE_PATH, on AWS too.
  const opt = process.env.VIRGA_LAMBDA_OPT || '/opt';
  const major = process.versions.node.split('.')[0];
  const wanted = [path.join(opt, 'nodejs', `node${major}`, 'node_modules'), path.join(opt, 'nodejs', 'node_modules'), taskRoot];
  const existing = (process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean);
  process.env.NODE_PATH = [...new Set([...wanted, ...existing])].join(path.delimiter);
  try {
    Module._initPaths();
  } catch {
    // Private API; without it layers resolve only through Virga's NODE_PATH.
  }
}

// ---------------------------------------------------------------------------
// Handler loading (AWS's UserFunction.js logic)
// ---------------------------------------------------------------------------

function hasPackageJsonTypeModule(folder) {
  // The nearest package.json decides whether .js is ESM; a node_modules folder stops the search.
  if (folder.endsWith('/node_modules')) return false;
  const pj = path.join(folder, 'package.json');
  if (fs.existsSync(pj)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(pj));
      if (pkg) return pkg.type === 'module';
    } catch (e) {
      console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
      return false;
    }
  }
  if (folder === '/') return false;
  return hasPackageJsonTypeModule(path.resolve(folder, '..'));
}

const tryRequire = (file) => (fs.existsSync(file) ? require(file) : undefined);
const tryImport = async (file) => (fs.existsSync(file) ? await import(pathToFileURL(file).href) : undefined);

async function loadModule(appRoot, moduleRoot, moduleName) {
  const base = path.resolve(appRoot, moduleRoot, moduleName);
  // Order as on AWS: extensionless, .js as CommonJS, .js as ESM, .mjs, .cjs,
  // then ordinary require resolution (e.g. a package in node_modules).
  const extensionless = tryRequire(base);
  if (extensionless) return extensionless;
  const typeModule = hasPackageJsonTypeModule(path.dirname(base));
  if (!typeModule) {
    const cjs = tryRequire(base + '.js');
    if (cjs) return cjs;
  }
  const loaded = (typeModule && (await tryImport(base + '.js'))) || (await tryImport(base + '.mjs')) || tryRequire(base + '.cjs');
  if (loaded) return loaded;
  return require(require.resolve(moduleName, { paths: [appRoot, moduleRoot] }));
}

async function loadHandler(appRoot, fullHandlerString) {
  if (fullHandlerString.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  // "dir/sub/file.a.b" -> moduleRoot "dir/sub/", module "file", property path "a.b".
  const moduleAndHandler = path.basename(fullHandlerString);
  const moduleRoot = fullHandlerString.substring(0, fullHandlerString.indexOf(moduleAndHandler));
  const match = moduleAndHandler.match(/^([^.]*)\.(.*)$/);
  if (!match) throw new MalformedHandlerName('Bad handler');
  const [, moduleName, handlerPath] = match;

  let userApp;
  try {
    userApp = await loadModule(appRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e && e.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e; // e.g. ERR_MODULE_NOT_FOUND from an ES module: reported as is, like AWS
  }

  const handler = handlerPath.split('.').reduce((nested, key) => nested && nested[key], userApp);
  if (!handler) throw new HandlerNotFound(`${fullHandlerString} is undefined or not exported`);
  if (typeof handler !== 'function') throw new HandlerNotFound(`${fullHandlerString} is not a function`);
  return handler;
}

// ---------------------------------------------------------------------------
// Invocation: callback, context.succeed/fail/done and promises (CallbackContext.js)
// ---------------------------------------------------------------------------

// One 'beforeExit' listener, swapped per invocation: it is what implements
// callbackWaitsForEmptyEventLoop and handlers that never call back.
let beforeExitListener = () => {};
const resetBeforeExit = () => (beforeExitListener = () => {});

function buildCallbackContext(id, scheduleNext) {
  const postError = (err, callback) => {
    logError('Invoke Error', err);
    client.postInvocationError(err, id, callback);
  };
  let isCompleteInvoked = false;
  const complete = (result, callback) => {
    if (isCompleteInvoked) {
      console.error('Invocation has already been reported as done. Cannot call complete more than once per invocation.');
      return;
    }
    isCompleteInvoked = true;
    client.postInvocationResponse(result, id, callback);
  };
  let waitForEmptyEventLoop = true;

  const callback = (err, result) => {
    resetBeforeExit();
    if (err !== undefined && err !== null) {
      postError(err, scheduleNext);
    } else if (!waitForEmptyEventLoop) {
      complete(result, scheduleNext);
    } else {
      // Respond only once everything the handler started has finished.
      beforeExitListener = () => setImmediate(() => complete(result, scheduleNext));
    }
  };
  const done = (err, result) => {
    resetBeforeExit();
    if (err !== undefined && err !== null) postError(err, scheduleNext);
    else complete(result, scheduleNext);
  };

  // Only the first of callback/succeed/fail/done counts. The flag is set after
  // the call, so if serialising the result throws, a following fail() still reports it.
  let finished = false;
  const once = (fn) => (...args) => {
    if (!finished) {
      fn(...args);
      finished = true;
    }
  };
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: once((result) => done(null, result)),
    fail: once((err) => (err === undefined || err === null ? done('handled') : done(err, null))),
    done: once(done),
  };
  return [once(callback), context, () => (isCompleteInvoked = true)];
}

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

// The user-visible context: callback functions + env data + invoke headers.
function attachEnvironmentData(callbackContext, headers) {
  const trace = headers['lambda-runtime-trace-id'];
  if (trace) process.env._X_AMZN_TRACE_ID = trace;
  else delete process.env._X_AMZN_TRACE_ID;
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  const env = process.env;
  return Object.assign(
    callbackContext,
    {
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, // a string, as on AWS
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    },
    {
      clientContext: parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
      identity: parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
      invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
      awsRequestId: headers['lambda-runtime-aws-request-id'],
      tenantId: headers['lambda-runtime-aws-tenant-id'],
      getRemainingTimeInMillis: () => deadline - Date.now(),
    },
  );
}

const isPromise = (obj) => obj && obj.then && typeof obj.then === 'function';

// What to do with an uncaught exception / unhandled rejection; replaced once
// an invocation is running so the error is reported against its request id.
const errorCallbacks = {
  uncaughtException: (error) => client.postInitError(error, () => process.exit(129)),
  unhandledRejection: (error) => client.postInitError(error, () => process.exit(128)),
};

function runLoop(handler) {
  const isAsync = handler.constructor && handler.constructor.name === 'AsyncFunction';

  const scheduleNext = () => setImmediate(() => handleOnce().catch((err) => fatal('GET next', err)));

  async function handleOnce() {
    const { headers, body } = await client.nextInvocation();
    const id = headers['lambda-runtime-aws-request-id'];
    globalThis[REQUEST_ID] = id;
    currentTenantId = headers['lambda-runtime-aws-tenant-id'];
    const [callback, callbackContext, markCompleted] = buildCallbackContext(id, scheduleNext);
    try {
      errorCallbacks.uncaughtException = (error) => client.postInvocationError(error, id, () => process.exit(129));
      errorCallbacks.unhandledRejection = (error) => client.postInvocationError(error, id, () => process.exit(128));
      // The event loop ran dry before the handler reported anything: an async
      // handler is awaiting a promise that can never settle (an error on AWS);
      // a plain handler that never called back succeeds with null.
      beforeExitListener = () => {
        markCompleted();
        if (isAsync) {
          const err = new NodeJsExit();
          logError('Invoke Error', err);
          client.postInvocationError(err, id, scheduleNext);
        } else {
          client.postInvocationResponse(null, id, scheduleNext);
        }
      };
      const result = handler(JSON.parse(body), attachEnvironmentData(callbackContext, headers), callback);
      if (isPromise(result)) {
        result.then(callbackContext.succeed, callbackContext.fail).catch(callbackContext.fail);
      }
    } catch (err) {
      callback(err);
    }
  }

  scheduleNext();
}

// ---------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------

patchConsole();
const appRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
if (process.cwd() !== appRoot) process.chdir(appRoot);
addLayerPaths(appRoot);

let dying = false; // report only the first fatal error; the process is exiting anyway
process.on('uncaughtException', (error) => {
  logError('Uncaught Exception', error);
  if (!dying) {
    dying = true;
    errorCallbacks.uncaughtException(error);
  }
});
process.on('unhandledRejection', (reason, promise) => {
  const error = new UnhandledPromiseRejection(reason, promise);
  logError('Unhandled Promise Rejection', error);
  if (!dying) {
    dying = true;
    errorCallbacks.unhandledRejection(error);
  }
});
process.on('beforeExit', () => beforeExitListener());

let handler;
try {
  handler = await loadHandler(appRoot, process.env._HANDLER || '');
} catch (error) {
  // On AWS a failed load surfaces as an uncaught exception of the runtime.
  process.emit('uncaughtException', error);
}
if (handler) runLoop(handler);
