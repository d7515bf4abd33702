'use strict'

/**
 * Options and arguments of every public constructor and `listen`, checked at
 * the call. Unchecked, a bad value reached the native layer, which converts
 * late and lossily: N-API wraps -5 to 4294967291 for a u32 and reports a
 * string in its own terms ("rust type 'u32' on EngineOptions") only at
 * listen time. Here it is a TypeError (wrong type) or a RangeError (wrong
 * value) that names the option as the user wrote it, with Node's codes:
 * ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE, ERR_INVALID_ARG_VALUE (a value
 * of the right type that is not accepted) and ERR_SOCKET_BAD_PORT (what
 * Node's own listen throws, so what socket.io's `new Server(70000)` throws).
 *
 * As in socket.io and uWS.js, unknown keys are ignored, and `undefined` or
 * `null` mean "not given" (the default applies).
 */

// Native u32 options (src/napi): larger values would wrap.
const U32 = 0xffffffff
// setTimeout's largest delay; beyond it Node fires after 1 ms.
const TIMER_MAX = 0x7fffffff
// Each worker is two OS threads (a tokio worker and a connection group).
const MAX_WORKERS = 1024

const absent = (value) => value === undefined || value === null

/** A short rendering of what the user passed, for the message. */
function show (value) {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 40 ? value.slice(0, 37) + '...' : value)
    case 'function':
      return `function ${value.name || '(anonymous)'}`
    case 'bigint':
      return `${value}n`
    case 'object':
      if (value === null) return 'null'
      if (Array.isArray(value)) return 'an array'
      return value.constructor && value.constructor.name && value.constructor.name !== 'Object'
        ? `an instance of ${value.constructor.name}`
        : 'an object'
    default:
      return String(value)
  }
}

/** `got`: what to say was received (default: the value shown). */
function fail (Ctor, code, label, expected, value, got = show(value)) {
  const err = new Ctor(`ferrosocket: ${label} must be ${expected}, got ${got}`)
  err.code = code
  return err
}

const typeError = (label, expected, value) => fail(TypeError, 'ERR_INVALID_ARG_TYPE', label, expected, value)

/**
 * An integer in [min, max] (`unit` only names it in the message); with
 * `infinity`, Infinity too. Returns the value; absent passes through.
 */
function integer (label, value, { min = 0, max = U32, unit, infinity = false } = {}) {
  if (absent(value)) return undefined
  let expected = min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer from ${min}`
  if (unit) expected += ` number of ${unit}`
  if (max !== Infinity) expected += ` up to ${max}`
  if (infinity) expected += ' or Infinity'
  if (typeof value !== 'number') throw typeError(label, expected, value)
  if (infinity && value === Infinity) return value
  if (!Number.isInteger(value) || value < min || value > max) {
    throw fail(RangeError, 'ERR_OUT_OF_RANGE', label, expected, value)
  }
  return value
}

function boolean (label, value) {
  if (!absent(value) && typeof value !== 'boolean') throw typeError(label, 'true or false', value)
  return value
}

function string (label, value) {
  if (!absent(value) && typeof value !== 'string') throw typeError(label, 'a string', value)
  return value
}

function func (label, value, { required = false } = {}) {
  if ((required || !absent(value)) && typeof value !== 'function') throw typeError(label, 'a function', value)
  return value
}

/** A non-empty array of `allowed` strings; `needed`: at least one of these. */
function listOf (label, value, allowed, needed = allowed) {
  if (absent(value)) return undefined
  const expected = `a non-empty array of ${allowed.map((a) => `"${a}"`).join(', ')}`
  if (!Array.isArray(value)) throw typeError(label, expected, value)
  const bad = value.find((v) => !allowed.includes(v))
  if (bad !== undefined) {
    throw fail(RangeError, 'ERR_INVALID_ARG_VALUE', label, expected, value, `an array holding ${show(bad)}`)
  }
  if (!value.some((v) => needed.includes(v))) {
    const one = needed.map((a) => `"${a}"`).join(' or ')
    const got = value.length ? `[${value.map(show).join(', ')}]` : 'an empty array'
    throw fail(RangeError, 'ERR_INVALID_ARG_VALUE', label, `an array holding ${one}`, value, got)
  }
  return value
}

/** A TCP port: an integer 0-65535 or a string of digits (as Node and socket.io take). */
function port (label, value) {
  const expected = 'a port number from 0 to 65535'
  let n = value
  if (typeof value === 'string' && /^\s*\d+\s*$/.test(value)) n = Number(value)
  if (typeof n !== 'number') throw typeError(label, expected, value)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw fail(RangeError, 'ERR_SOCKET_BAD_PORT', label, expected, value)
  return n
}

/** An HTTP path ('' means the default, as in socket.io). */
function path (label, value) {
  if (absent(value) || value === '') return value
  if (typeof value !== 'string') throw typeError(label, 'a string starting with "/"', value)
  if (!value.startsWith('/')) throw fail(RangeError, 'ERR_INVALID_ARG_VALUE', label, 'a string starting with "/"', value)
  return value
}

function cors (label, value) {
  const t = typeof value
  if (!absent(value) && t !== 'boolean' && t !== 'function' && (t !== 'object' || Array.isArray(value))) {
    throw typeError(label, 'an object of `cors` package options, a function or a boolean', value)
  }
  return value
}

function pem (label, value) {
  if (!absent(value) && typeof value !== 'string' && !(value instanceof ArrayBuffer) && !ArrayBuffer.isView(value)) {
    throw typeError(label, 'PEM text (a string or a Buffer)', value)
  }
  return value
}

// ---- what each API takes: option name -> check ---------------------------

const ms = (min, max = U32) => (label, v) => integer(label, v, { min, max, unit: 'milliseconds' })
const workers = (label, v) => integer(label, v, { min: 1, max: MAX_WORKERS })

/**
 * Options for features ferrosocket lacks. Ignoring them would be silent
 * breakage: another adapter (Redis…) means broadcasts that never leave this
 * node, a custom parser means clients that cannot connect. So they are
 * refused at construction.
 */
function unsupported (label, value) {
  if (absent(value) || value === false) return
  const err = new Error(`ferrosocket: ${label} is not supported yet; remove it ` +
    '(see "Not supported" in the README)')
  err.code = 'FERROSOCKET_UNSUPPORTED'
  throw err
}

/**
 * socket.io's `connectionStateRecovery`: `{ maxDisconnectionDuration,
 * skipMiddlewares }`, plus `maxStoredBytes` (ours: a bound on the stored
 * broadcasts, which socket.io does not have).
 */
const RECOVERY = {
  maxDisconnectionDuration: ms(0, TIMER_MAX),
  skipMiddlewares: boolean,
  maxStoredBytes: (label, v) => integer(label, v, { min: 0, max: Number.MAX_SAFE_INTEGER, unit: 'bytes' })
}

function recovery (label, value) {
  if (absent(value) || typeof value === 'boolean') return
  if (typeof value !== 'object' || Array.isArray(value)) throw typeError(label, 'an object', value)
  for (const key of Object.keys(RECOVERY)) RECOVERY[key](`option "connectionStateRecovery.${key}"`, value[key])
}

/**
 * engine.io's `perMessageDeflate`: false (the default), true, or ws's
 * options object. Of ws's options, `threshold` (bytes, default 1024) and
 * `serverNoContextTakeover` / `clientNoContextTakeover` set to false (keep
 * context: a compressor or decompressor per connection) apply; the zlib
 * tuning ones (`zlibDeflateOptions`, `zlibInflateOptions`,
 * `serverMaxWindowBits`, `clientMaxWindowBits`, `concurrencyLimit`) are
 * accepted and left to ferrosocket's defaults.
 */
const DEFLATE = {
  threshold: (label, v) => integer(label, v, { unit: 'bytes' }),
  serverNoContextTakeover: boolean,
  clientNoContextTakeover: boolean
}

function perMessageDeflate (label, value) {
  if (absent(value) || typeof value === 'boolean') return
  if (typeof value !== 'object' || Array.isArray(value)) throw typeError(label, 'true, false or an options object', value)
  for (const key of Object.keys(DEFLATE)) DEFLATE[key](`option "perMessageDeflate.${key}"`, value[key])
}

/** The native form of a checked `perMessageDeflate` (undefined: off). */
function nativeDeflate (value) {
  if (!value) return undefined
  const o = value === true ? {} : value
  return {
    threshold: o.threshold,
    serverContextTakeover: o.serverNoContextTakeover === false,
    clientContextTakeover: o.clientNoContextTakeover === false
  }
}

/** engine.io's options, shared by `Server` and `EngineServer`. */
const ENGINE = {
  path,
  // The client arms one timer for pingInterval + pingTimeout (see heartbeat()).
  pingInterval: ms(1, TIMER_MAX),
  pingTimeout: ms(1, TIMER_MAX),
  upgradeTimeout: ms(1),
  // 1 GiB and beyond (Infinity included) is capped at 1 GiB (src/napi/http.rs).
  maxHttpBufferSize: (label, v) => integer(label, v, { min: 1, max: Infinity, unit: 'bytes', infinity: true }),
  // ferrosocket's: bytes waiting for one client before it is disconnected
  // ("transport error"); 1 KiB to 1 TiB (src/napi/http.rs).
  maxBackpressure: (label, v) => integer(label, v, { min: 1024, max: 2 ** 40, unit: 'bytes' }),
  allowUpgrades: boolean,
  // "webtransport" is accepted and never offered: its clients fall back.
  transports: (label, v) => listOf(label, v, ['polling', 'websocket', 'webtransport'], ['polling', 'websocket']),
  cors,
  allowRequest: func,
  destroyUpgrade: boolean,
  // 0 means the default (1000), as in engine.io.
  destroyUpgradeTimeout: ms(0, TIMER_MAX),
  workers,
  allowEIO3: boolean,
  perMessageDeflate,
  // ferrosocket's: from accept to a complete request head on the Rust
  // listener, also for heads it hands to Node (slow-loris); default 10000.
  handshakeTimeout: ms(100, TIMER_MAX)
}

/**
 * socket.io-client waits pingInterval + pingTimeout on one setTimeout;
 * beyond setTimeout's limit it fires at once and every client drops out
 * with "ping timeout".
 */
function heartbeat (opts) {
  const total = (opts.pingInterval ?? 25000) + (opts.pingTimeout ?? 20000)
  if (total > TIMER_MAX) {
    throw fail(RangeError, 'ERR_OUT_OF_RANGE', 'options "pingInterval" + "pingTimeout"',
      `at most ${TIMER_MAX} milliseconds together (the client's timer limit)`, total)
  }
}

/**
 * `new Server(port, { tls })` (ferrosocket's): the standalone server's TLS,
 * terminated in Rust. The key and certificate chain as PEM (`key`, `cert`:
 * strings or Buffers, as `https.createServer` takes them) or as files
 * (`key_file_name`, `cert_file_name`, as `SSLApp` takes them), and the
 * key's `passphrase`. Whether they load (readable, decryptable, a pair) is
 * Rust's to say (`checkTls`, at construction); here only their shape. Other
 * `tls.createServer` settings (`ca`, `requestCert`, `pfx`…) are refused:
 * ignored, a client-certificate requirement would silently not apply.
 */
const TLS_KEYS = ['key', 'cert', 'key_file_name', 'cert_file_name', 'passphrase']
const TLS_SHAPE = 'an object { key, cert, passphrase? } or { key_file_name, cert_file_name, passphrase? }'

function serverTls (label, value) {
  if (absent(value)) return
  if (typeof value !== 'object' || Array.isArray(value)) throw typeError(label, TLS_SHAPE, value)
  const other = Object.keys(value).find((k) => !TLS_KEYS.includes(k) && !absent(value[k]))
  if (other !== undefined) {
    throw fail(TypeError, 'ERR_INVALID_ARG_VALUE', label, `${TLS_SHAPE} (no other TLS settings are supported)`, value, `one with "${other}"`)
  }
  for (const [inline, file] of [['key', 'key_file_name'], ['cert', 'cert_file_name']]) {
    pem(`option "tls.${inline}"`, value[inline])
    string(`option "tls.${file}"`, value[file])
    if (!absent(value[inline]) && !absent(value[file])) {
      throw fail(TypeError, 'ERR_INVALID_ARG_VALUE', `option "tls.${inline}"`, `left out when "tls.${file}" is given (one or the other)`, value[inline])
    }
    if (absent(value[inline]) && absent(value[file])) {
      throw typeError(`option "tls.${inline}"`, `PEM text (a string or a Buffer), or "tls.${file}" a file name`, value[inline])
    }
  }
  string('option "tls.passphrase"', value.passphrase)
}

/** socket.io's `Server` options (engine.io's plus its own). */
const SERVER = {
  ...ENGINE,
  // 0 means the default (45000), as in socket.io.
  connectTimeout: ms(0),
  serveClient: boolean,
  host: string,
  // ferrosocket's: SO_REUSEPORT for the Rust listener of `new Server(port)`.
  reusePort: boolean,
  // ferrosocket's: TLS in Rust for `new Server(port)` (see serverTls).
  tls: serverTls,
  cleanupEmptyChildNamespaces: boolean,
  adapter: func,
  parser: unsupported,
  connectionStateRecovery: recovery
}

/**
 * A Redis URL the Rust client takes: `redis://[user:password@]host[:port][/db]`.
 * `rediss://` (TLS to Redis) is refused rather than connected in the clear.
 */
function redisUrl (label, value) {
  let u
  try {
    u = typeof value === 'string' ? new URL(value) : null
  } catch {}
  const schemes = ['redis:', 'rediss:', 'redis-cluster:', 'rediss-cluster:']
  if (!u || !schemes.includes(u.protocol) || !u.hostname) {
    throw fail(TypeError, 'ERR_INVALID_ARG_VALUE', label, 'a redis:// URL (redis://host:port[/db], rediss:// for TLS, or redis-cluster://host:port[?node=host:port…] for a cluster)', value)
  }
  if (u.protocol.endsWith('-cluster:')) {
    for (const [k, v] of u.searchParams) {
      if (k !== 'node' || !/^[^:/?#]+:\d+$/.test(v)) throw fail(TypeError, 'ERR_INVALID_ARG_VALUE', label, 'a redis-cluster:// URL whose query names other nodes only (node=host:port)', value)
    }
    if (u.pathname !== '' && u.pathname !== '/') throw fail(TypeError, 'ERR_INVALID_ARG_VALUE', label, 'a redis-cluster:// URL without a database (a cluster has only database 0)', value)
  }
  if (!/^\/?(\d+)?$/.test(u.pathname)) {
    throw fail(TypeError, 'ERR_INVALID_ARG_VALUE', label, 'a redis:// URL whose path, if any, is a database number', value)
  }
  return value
}

/**
 * TLS options for a `rediss://` URL, as Node's `tls.connect` takes them:
 * `ca` (replaces the system's CAs), `cert` and `key` (a client
 * certificate, together); each PEM as a string or Buffer (`ca` also an
 * array of them). Returns them as Buffers for Rust, or undefined.
 */
function redisTls (label, value, url) {
  if (absent(value)) return undefined
  if (typeof value !== 'object' || Array.isArray(value)) throw typeError(label, 'an object { ca?, cert?, key? }', value)
  for (const k of Object.keys(value)) {
    if (!['ca', 'cert', 'key', 'rejectUnauthorized'].includes(k)) throw fail(TypeError, 'ERR_INVALID_ARG_VALUE', `${label}.${k}`, 'one of ca, cert, key, rejectUnauthorized', value[k])
  }
  if (value.rejectUnauthorized !== undefined && typeof value.rejectUnauthorized !== 'boolean') throw typeError(`${label}.rejectUnauthorized`, 'a boolean', value.rejectUnauthorized)
  if (!new URL(url).protocol.startsWith('rediss')) throw fail(TypeError, 'ERR_INVALID_ARG_VALUE', label, 'given only with a rediss:// URL', value)
  const pem = (k, v, many) => {
    if (absent(v)) return undefined
    if (many && Array.isArray(v)) return Buffer.concat(v.map((x) => Buffer.concat([pem(k, x, false), Buffer.from('\n')])))
    if (typeof v === 'string') return Buffer.from(v)
    if (Buffer.isBuffer(v)) return v
    throw typeError(`${label}.${k}`, many ? 'PEM text (a string or Buffer, or an array of them)' : 'PEM text (a string or Buffer)', v)
  }
  const out = { ca: pem('ca', value.ca, true), cert: pem('cert', value.cert, false), key: pem('key', value.key, false), rejectUnauthorized: value.rejectUnauthorized }
  if (Boolean(out.cert) !== Boolean(out.key)) throw fail(TypeError, 'ERR_INVALID_ARG_VALUE', label, 'given a client certificate with its key (cert and key together)', value)
  return out
}

/**
 * `App({ scaleOut: { url, prefix, onState, tls } })`: the App's topics across
 * every App publishing under `prefix` on that Redis (ferrosocket's).
 */
function scaleOut (label, value) {
  if (absent(value)) return undefined
  if (typeof value !== 'object' || Array.isArray(value)) throw typeError(label, 'an object { url, prefix?, onState? }', value)
  for (const k of Object.keys(value)) {
    if (!['url', 'prefix', 'onState', 'tls'].includes(k)) throw fail(TypeError, 'ERR_INVALID_ARG_VALUE', `${label}.${k}`, 'one of url, prefix, onState, tls', value[k])
  }
  redisUrl(`${label}.url`, value.url)
  redisTls(`${label}.tls`, value.tls, value.url)
  if (value.prefix !== undefined && (typeof value.prefix !== 'string' || value.prefix === '')) {
    throw typeError(`${label}.prefix`, 'a non-empty string', value.prefix)
  }
  func(`${label}.onState`, value.onState)
  return value
}

const APP = {
  workers,
  maxConnections: (label, v) => integer(label, v, { min: 1 }),
  // From accept to a complete request head (TLS handshake included); 10000.
  handshakeTimeout: ms(100, TIMER_MAX),
  // Largest request body an HTTP route is streamed; 413 over it. 16 MiB.
  maxBodyLength: (label, v) => integer(label, v, { max: Number.MAX_SAFE_INTEGER, unit: 'bytes', infinity: true }),
  scaleOut
}

const SSL_APP = {
  ...APP,
  key_file_name: string,
  cert_file_name: string,
  key: pem,
  cert: pem,
  passphrase: string
}

const HANDLERS = ['upgrade', 'open', 'message', 'drain', 'dropped', 'close', 'ping', 'pong', 'subscription']

const BEHAVIOR = {
  idleTimeout: (label, v) => integer(label, v, { unit: 'seconds' }),
  // Beyond 1 GiB (Infinity included) is capped at 1 GiB (src/napi/app.rs).
  maxPayloadLength: (label, v) => integer(label, v, { max: Infinity, unit: 'bytes', infinity: true }),
  maxBackpressure: (label, v) => integer(label, v, { max: Infinity, unit: 'bytes', infinity: true }),
  closeOnBackpressureLimit: boolean,
  sendPingsAutomatically: boolean,
  // permessage-deflate: uWS.js's constants (a compressor | a decompressor).
  compression: (label, v) => integer(label, v, { max: 0xfff }),
  // Accepted and ignored (no lifetime limit); uWS.js's range.
  maxLifetime: (label, v) => integer(label, v, { max: 240, unit: 'minutes' }),
  ...Object.fromEntries(HANDLERS.map((h) => [h, func]))
}

/**
 * Checks `opts` against `schema`, then the whole with `across` (rules that
 * tie options together). Returns a copy without its null values (`{}` when
 * absent): null means "not given", and a native option field refuses it.
 */
function checkOptions (schema, opts, label = 'options', across) {
  if (absent(opts)) return {}
  if (typeof opts !== 'object' || Array.isArray(opts)) throw typeError(label, 'an object', opts)
  for (const key of Object.keys(schema)) schema[key](`option "${key}"`, opts[key])
  if (across) across(opts)
  const given = {}
  for (const key of Object.keys(opts)) if (opts[key] !== null) given[key] = opts[key]
  return given
}

/**
 * What `io.attach(srv)` was given: the port to listen on (absent: 0), or
 * undefined for an http(s).Server (an object with `listen`).
 */
function attachPort (srv) {
  if (srv === undefined) return 0
  if (typeof srv === 'function') {
    // As socket.io refuses it: an Express app is a function with `listen`.
    throw typeError('the server', 'an http(s).Server, not a request handler function ' +
      '(an Express app? pass http.createServer(app))', srv)
  }
  if (typeof srv === 'object' && srv !== null && typeof srv.listen === 'function') return undefined
  return port('port', srv)
}

/**
 * uWS.js's `listen([host,] port[, options], cb)`; the callback is required
 * (uWS.js requires it too, and it is the only way a failure is reported).
 */
function listenArgs (args) {
  const rest = args.slice()
  const cb = func('listen() callback (the last argument)', rest.pop(), { required: true })
  const host = typeof rest[0] === 'string' && rest.length >= 2 ? rest.shift() : undefined
  if (rest.length === 0) throw typeError('listen() port', 'a port number from 0 to 65535', undefined)
  // uWS.js's LIBUS_LISTEN_* flags: LIBUS_LISTEN_EXCLUSIVE_PORT (1) turns
  // off the port sharing (SO_REUSEPORT) uSockets does by default.
  const options = rest.length >= 2 ? integer('listen() options', rest[1]) : 0
  return { host, port: port('listen() port', rest[0]), options: options || 0, cb }
}

module.exports = {
  func,
  redisUrl,
  redisTls,
  attachPort,
  serverOptions: (opts) => checkOptions(SERVER, opts, undefined, heartbeat),
  engineOptions: (opts) => checkOptions(ENGINE, opts, undefined, heartbeat),
  appOptions: (opts) => checkOptions(APP, opts),
  sslAppOptions: (opts) => checkOptions(SSL_APP, opts),
  behaviorOptions: (b) => checkOptions(BEHAVIOR, b, '.ws() behavior'),
  listenArgs,
  nativeDeflate
}
