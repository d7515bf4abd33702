'use strict'
// Process plumbing shared by the benchmark scenarios: the server registry,
// starting servers and the load generator as child processes (every one is
// tracked by PID and ended by PID), their JSON-line protocols, RSS and GC
// settling, the throwaway TLS certificate, and machine facts.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')

const BENCH_DIR = __dirname
const ROOT = path.join(BENCH_DIR, '..')
const LOADGEN_MANIFEST = path.join(BENCH_DIR, 'loadgen', 'Cargo.toml')
const LOADGEN_BIN = path.join(BENCH_DIR, 'loadgen', 'target', 'release', 'loadgen')
const RESULTS_DIR = path.join(BENCH_DIR, 'results')

// protocol: what the load generator speaks to it (ws = plain WebSocket
// messages, sio = Socket.IO over the Engine.IO v4 WebSocket transport).
const SERVERS = {
  'ferrosocket-core': { script: 'servers/ferrosocket-core.js', label: 'ferrosocket (core API)', short: 'ferro core', protocol: 'ws', pkg: null },
  'ferrosocket-sio': { script: 'servers/ferrosocket-sio.js', label: 'ferrosocket (Socket.IO API)', short: 'ferro sio', protocol: 'sio', pkg: null },
  'ferrosocket-sio-attached': { script: 'servers/ferrosocket-sio.js', args: ['--attached'], label: 'ferrosocket (Socket.IO API, attached)', short: 'ferro sio att', protocol: 'sio', pkg: null },
  socketio: { script: 'servers/socketio.js', label: 'socket.io', short: 'socket.io', protocol: 'sio', pkg: 'socket.io' },
  ws: { script: 'servers/ws.js', label: 'ws', short: 'ws', protocol: 'ws', pkg: 'ws' },
  uws: { script: 'servers/uws.js', label: 'uWebSockets.js', short: 'uWS.js', protocol: 'ws', pkg: '@trufflesuite/uws-js-unofficial' }
}
const SERVER_ALIASES = { ferrosocket: 'ferrosocket-core', core: 'ferrosocket-core', sio: 'ferrosocket-sio', 'socket.io': 'socketio', uwebsockets: 'uws' }

// One server process holds ~19.5k sockets here (open-file limit 20000).
const MAX_PER_SERVER = 19000

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Wall clock (CLOCK_REALTIME) in µs, comparable with loadgen's first_us/last_us. */
function nowUs () {
  return Math.round((performance.timeOrigin + performance.now()) * 1000)
}

function resolveServerName (name) {
  const n = SERVER_ALIASES[name] || name
  if (!SERVERS[n]) throw new Error(`unknown server '${name}' (known: ${Object.keys(SERVERS).join(', ')})`)
  return n
}

function readVmRss (pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+) kB/.exec(text)
  if (!m) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1]) * 1024
}

/** Sample VmRSS until two consecutive samples differ by at most `tolerance`. */
async function settleRss (pid, settle) {
  const t0 = Date.now()
  let prev = readVmRss(pid)
  for (;;) {
    await sleep(settle.intervalMs)
    const cur = readVmRss(pid)
    const settled = Math.abs(cur - prev) <= settle.tolerance * prev
    if (settled || Date.now() - t0 >= settle.maxMs) {
      return { rss: cur, settled, secs: (Date.now() - t0) / 1000 }
    }
    prev = cur
  }
}

/**
 * Full GC in the server every gcIntervalMs for at least gcMinMs, until two
 * consecutive post-GC RSS samples are within tolerance (at most maxMs).
 * One GC is not enough: V8 shrinks its young generation only on a GC after
 * it has seen a low allocation rate for a few seconds (ws: 6.2 KB/conn right
 * after the first GC, 3.6 KB/conn from the GC ~6 s later on).
 */
async function gcSettleRss (server, settle) {
  const t0 = Date.now()
  let prev = null
  let cycles = 0
  for (;;) {
    const reply = await server.command('gc', 'gc')
    cycles++
    await sleep(100)
    const rss = readVmRss(server.pid)
    const elapsed = Date.now() - t0
    const stable = prev !== null && Math.abs(rss - prev) <= settle.tolerance * prev
    if ((stable && elapsed >= settle.gcMinMs) || elapsed >= settle.maxMs) {
      return { rss, settled: stable, secs: elapsed / 1000, cycles, heapUsed: reply.heapUsed, heapTotal: reply.heapTotal, gcRan: reply.ran, open: reply.open }
    }
    prev = rss
    await sleep(settle.gcIntervalMs)
  }
}

// Below this RSS growth a per-connection figure is noise, not memory: the
// GC-settle loop takes two readings of a ~50 MB server within
// `settle.tolerance` (1-2%) as equal, so 0.5-1 MB apart, and --quick (300
// connections) has measured from -1.5 to +0.6 MB on servers that hold
// 0.5-2 KB per connection. The default N grow RSS by 5 MB and more.
const RSS_NOISE_FLOOR = 1048576

/**
 * Server RSS growth per connection, KB (1024 bytes). `kb` is null when the
 * growth is under the noise floor (max of RSS_NOISE_FLOOR and the settle
 * tolerance of the baseline); `noise` then keeps the raw figures for the JSON
 * and for saying why in the tables.
 */
function rssPerConn (before, after, connections, settle) {
  const growthBytes = after - before
  const floorBytes = Math.max(RSS_NOISE_FLOOR, settle.tolerance * before)
  const rawKB = growthBytes / connections / 1024
  if (growthBytes >= floorBytes) return { kb: rawKB, noise: null }
  return { kb: null, noise: { rawKB, growthBytes, floorBytes, connections } }
}

/** Child processes started by this run; all are ended by PID at the end. */
class Children {
  constructor () { this.live = new Map() }
  spawn (name, cmd, args, options) {
    const proc = spawn(cmd, args, options)
    if (proc.pid) {
      this.live.set(proc.pid, { name, proc })
      proc.on('exit', () => this.live.delete(proc.pid))
    }
    return proc
  }
  killAll () {
    for (const [pid] of this.live) {
      try { process.kill(pid, 'SIGKILL') } catch {}
    }
    this.live.clear()
  }
}

/** JSON lines from a child's stdout, awaited by predicate. */
function jsonLines (stream, name, onOther, onValue) {
  const queued = []
  const waiters = []
  let ended = false
  const rl = readline.createInterface({ input: stream })
  rl.on('line', (line) => {
    let v
    try { v = JSON.parse(line) } catch { if (onOther) onOther(line); return }
    if (onValue) onValue(v)
    const i = waiters.findIndex((w) => w.pred(v))
    if (i >= 0) {
      const [w] = waiters.splice(i, 1)
      clearTimeout(w.timer)
      w.resolve(v)
    } else {
      queued.push(v)
    }
  })
  rl.on('close', () => {
    ended = true
    for (const w of waiters.splice(0)) {
      clearTimeout(w.timer)
      w.reject(new Error(`${name} ended its output while we waited for ${w.what}`))
    }
  })
  return {
    wait (pred, ms, what) {
      const i = queued.findIndex(pred)
      if (i >= 0) return Promise.resolve(queued.splice(i, 1)[0])
      if (ended) return Promise.reject(new Error(`${name} ended its output before ${what}`))
      return new Promise((resolve, reject) => {
        const w = { pred, resolve, reject, what }
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1)
          reject(new Error(`timed out after ${ms} ms waiting for ${what} from ${name}`))
        }, ms)
        waiters.push(w)
      })
    }
  }
}

function tail (chunks, n = 2000) {
  const s = chunks.join('')
  return s.length > n ? '...' + s.slice(-n) : s
}

function waitExit (proc, ms) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    proc.once('exit', () => { clearTimeout(timer); resolve(true) })
  })
}

/** Error for a server/feature combination this build cannot run (reported, not failed). */
class Unsupported extends Error {
  constructor (message) {
    super(message)
    this.unsupported = true
  }
}

/**
 * Build the load generator if cargo is there (a no-op when up to date) and
 * read its modes from --help.
 */
function ensureLoadgen (log, { build = true } = {}) {
  const cargo = build ? spawnSync('cargo', ['--version'], { stdio: 'ignore' }) : { status: 1 }
  if (cargo.status === 0) {
    log('loadgen: cargo build --release (a no-op when up to date)')
    const r = spawnSync('cargo', ['build', '--release', '--quiet', '--manifest-path', LOADGEN_MANIFEST],
      { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
    if (r.status !== 0) {
      if (!fs.existsSync(LOADGEN_BIN)) throw new Error(`loadgen build failed:\n${(r.stderr || '').slice(-2000)}`)
      log(`warning: loadgen build failed; using the existing ${path.relative(process.cwd(), LOADGEN_BIN)}`)
    }
  } else if (!fs.existsSync(LOADGEN_BIN)) {
    throw new Error(`no cargo and no ${LOADGEN_BIN}: install Rust (https://rustup.rs) to build the load generator`)
  }
  const help = spawnSync(LOADGEN_BIN, ['--help'], { encoding: 'utf8' })
  const text = (help.stdout || '') + (help.stderr || '')
  const modes = new Set()
  const m = /Modes[^\n]*:\n([\s\S]*?)\n\n/.exec(text)
  if (m) for (const line of m[1].split('\n')) { const w = /^ {2}(\w+)\s/.exec(line); if (w) modes.add(w[1]) }
  const flags = new Set(text.match(/--[a-z][a-z-]*/g) || [])
  let version = null
  try { version = /^version\s*=\s*"([^"]+)"/m.exec(fs.readFileSync(LOADGEN_MANIFEST, 'utf8'))[1] } catch {}
  return { bin: LOADGEN_BIN, modes, flags, version }
}

/** Throwaway self-signed certificate (ECDSA P-256, 1 day) in a private temp dir. */
function makeCert () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrosocket-bench-'))
  const cert = path.join(dir, 'cert.pem')
  const key = path.join(dir, 'key.pem')
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert], { encoding: 'utf8' })
  if (r.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw new Error(`openssl could not make a test certificate: ${r.error ? r.error.message : r.stderr}`)
  }
  return { dir, cert, key, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

/**
 * Start one benchmark server in its own process (`node --expose-gc`).
 * Rejects with .fatal (and .unsupported for FERROSOCKET_UNSUPPORTED) when
 * the server refuses to run.
 */
async function startServer (name, children, { tls = null, verbose = false, args: extra = [] } = {}) {
  const def = SERVERS[name]
  const env = { ...process.env }
  delete env.UWS_USE_FALLBACK // would make the uWS package load its ws-based fallback
  const args = ['--expose-gc', path.join(BENCH_DIR, def.script), ...(def.args || []), ...extra]
  if (tls) args.push('--tls', tls.cert, tls.key)
  const proc = children.spawn(name, process.execPath, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] })
  const stderr = []
  proc.stdin.on('error', () => {}) // EPIPE if it died; reported through its exit/output
  proc.stderr.on('data', (d) => { stderr.push(String(d)); if (stderr.length > 200) stderr.splice(0, 100); if (verbose) process.stderr.write(`[${name}] ${d}`) })
  proc.on('error', (e) => stderr.push(`spawn error: ${e.message}`))
  const lines = jsonLines(proc.stdout, `server ${name}`)
  let hello
  try {
    hello = await lines.wait((v) => v.event === 'listening' || v.event === 'fatal', 20000, 'its listening line')
  } catch (err) {
    try { process.kill(proc.pid, 'SIGKILL') } catch {}
    throw new Error(`${name} did not start: ${err.message}\n${tail(stderr)}`)
  }
  if (hello.event === 'fatal') {
    await waitExit(proc, 2000)
    const e = hello.code === 'FERROSOCKET_UNSUPPORTED'
      ? new Unsupported(`${name}: ${hello.error}`)
      : new Error(`${name} refused to start: ${hello.error}`)
    e.fatal = true
    throw e
  }
  const command = async (cmd, event, ms = 30000) => {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}) before '${cmd}'\n${tail(stderr)}`)
    }
    proc.stdin.write(cmd + '\n')
    const v = await lines.wait((x) => x.event === event || x.event === 'error', ms, `'${cmd}' reply`)
    if (v.event === 'error') throw new Error(`${name}: ${v.error}`)
    return v
  }
  const stop = async () => {
    try { proc.stdin.write('exit\n'); proc.stdin.end() } catch {}
    if (!(await waitExit(proc, 5000))) {
      try { process.kill(proc.pid, 'SIGKILL') } catch {}
      await waitExit(proc, 2000)
    }
  }
  const url = () => {
    const scheme = tls ? 'wss' : 'ws'
    return def.protocol === 'sio'
      ? `${scheme}://127.0.0.1:${hello.port}/socket.io/?EIO=4&transport=websocket`
      : `${scheme}://127.0.0.1:${hello.port}/`
  }
  /** Poll until the server counts `n` open connections (or the deadline). */
  const waitOpen = async (n, ms = 15000) => {
    const deadline = Date.now() + ms
    let seen = await command('rss', 'rss')
    while (seen.open < n && Date.now() < deadline) {
      await sleep(100)
      seen = await command('rss', 'rss')
    }
    return seen
  }
  const cpu = async () => (await command('cpu', 'cpu')).total
  return { name, def, protocol: def.protocol, proc, pid: proc.pid, hello, command, stop, stderr, url, waitOpen, cpu }
}

/** A free TCP port on loopback (closed again: the caller binds it). */
function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/**
 * A redis-server of the run's own on a free loopback port, nothing saved;
 * resolves { url, stop } once it accepts connections.
 */
async function startRedis (children) {
  const port = await freePort()
  const proc = children.spawn('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out.slice(-500)}`)), 10000)
    proc.once('error', (err) => { clearTimeout(timer); reject(new Error(`redis-server could not run (install the redis-server package): ${err.message}`)) })
    proc.stdout.on('data', (d) => {
      out += d
      if (out.includes('Ready to accept connections')) { clearTimeout(timer); resolve() }
    })
  })
  const stop = async () => {
    try { process.kill(proc.pid, 'SIGKILL') } catch {}
    await waitExit(proc, 2000)
  }
  return { url: `redis://127.0.0.1:${port}`, port, stop }
}

/**
 * A load generator in `mode` against `server` (its URL and protocol, the
 * scenario's connect progress), waited on until every connection was
 * attempted. Throws, with the generator stopped, when none connected.
 * `flags` must hold `connections`; `label` names the progress line.
 */
async function connectFleet (ctx, server, mode, flags, { readyMs, label = 'connecting' } = {}) {
  const lg = startLoadgen(ctx.lg, mode, { url: server.url(), timeout: 10, ...deflate(ctx).loadgen, ...flags }, ctx.children, {
    protocol: server.protocol, verbose: ctx.verbose, onProgress: ctx.connectProgress(label, flags.connections)
  })
  const ready = await lg.ready(readyMs ?? flags.connections / 200 * 1000 + 60000)
  if (!ready.connected) {
    lg.kill()
    throw new Error(`loadgen connected nothing (${ready.failed} failed)\n${tail(lg.stderr)}`)
  }
  return { lg, ready }
}

/** The client's permessage-deflate offer (what browsers send). */
const DEFLATE_OFFER = 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits'

/**
 * A scenario with `compress: true` among its parameters runs its servers
 * with `--compress` (permessage-deflate on, servers/*) and its clients
 * offering it: the extra server arguments and load generator flags.
 */
function deflate (ctx) {
  return ctx.params.compress ? { server: ['--compress'], loadgen: { header: DEFLATE_OFFER } } : { server: [], loadgen: {} }
}

/**
 * Runs `fn(server, track)` against a fresh server process. Load generators
 * handed to `track` are killed if still running when `fn` ends, and the
 * server is stopped whatever happened.
 */
async function withServer (ctx, name, fn) {
  const server = await startServer(name, ctx.children, { verbose: ctx.verbose, args: deflate(ctx).server })
  const lgs = []
  try {
    return await fn(server, (lg) => { lgs.push(lg); return lg })
  } finally {
    for (const lg of lgs) lg.kill()
    await server.stop()
  }
}

/**
 * Run the load generator: `mode` plus flags. Progress lines (stderr) go to
 * onProgress. Returns handles to await the ready line and the final report.
 */
function startLoadgen (lg, mode, flags, children, { onProgress, verbose = false, protocol = 'ws' } = {}) {
  const args = [mode]
  for (const [k, v] of Object.entries(flags)) {
    if (v === undefined || v === null || v === false) continue
    args.push(`--${k}`)
    if (v !== true) args.push(String(v))
  }
  if (protocol !== 'ws') args.push('--protocol', protocol)
  args.push('--progress')
  const proc = children.spawn('loadgen', lg.bin, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  const stderr = []
  // Progress lines are about connecting: once the ready line is out, the
  // caller's own phases own the status line.
  let readySeen = false
  proc.stdin.on('error', () => {})
  const rl = readline.createInterface({ input: proc.stderr })
  rl.on('line', (line) => {
    stderr.push(line + '\n')
    if (stderr.length > 400) stderr.splice(0, 200)
    if (verbose) process.stderr.write(`[loadgen] ${line}\n`)
    if (onProgress && !readySeen) onProgress(line)
  })
  proc.on('error', (e) => stderr.push(`spawn error: ${e.message}\n`))
  const lines = jsonLines(proc.stdout, `loadgen ${mode}`, null, (v) => { if (v.event === 'ready') readySeen = true })
  const isReport = (v) => v.event === undefined && (v.mode !== undefined || v.error !== undefined)
  return {
    proc,
    pid: proc.pid,
    args,
    stderr,
    ready: (ms) => lines.wait((v) => v.event === 'ready', ms, 'its ready line').catch((err) => {
      throw new Error(`${err.message}\nloadgen ${args.join(' ')}\n${tail(stderr)}`)
    }),
    /** The report it prints at exit by itself (no stop asked). */
    report: async (ms) => {
      try {
        return await lines.wait(isReport, ms, 'its report')
      } catch (err) {
        throw new Error(`${err.message}\nloadgen ${args.join(' ')}\n${tail(stderr)}`)
      } finally {
        if (!(await waitExit(proc, 10000))) {
          try { process.kill(proc.pid, 'SIGKILL') } catch {}
        }
      }
    },
    /** Its report if it ends by itself within graceMs, else stop it and take the report. */
    reportOrStop: async (graceMs) => {
      try {
        const report = await lines.wait(isReport, graceMs, 'its report')
        if (!(await waitExit(proc, 10000))) {
          try { process.kill(proc.pid, 'SIGKILL') } catch {}
        }
        return report
      } catch {}
      try { proc.stdin.end() } catch {}
      try {
        return await lines.wait(isReport, 30000, 'its report')
      } catch (err) {
        throw new Error(`${err.message}\nloadgen ${args.join(' ')}\n${tail(stderr)}`)
      } finally {
        if (!(await waitExit(proc, 10000))) {
          try { process.kill(proc.pid, 'SIGKILL') } catch {}
        }
      }
    },
    /** Ask it to stop (stdin EOF), then take its report. */
    finish: async (ms = 30000) => {
      try { proc.stdin.end() } catch {}
      let report
      try {
        report = await lines.wait(isReport, ms, 'its report')
      } catch (err) {
        report = { error: err.message }
      }
      if (!(await waitExit(proc, 10000))) {
        try { process.kill(proc.pid, 'SIGKILL') } catch {}
        await waitExit(proc, 2000)
      }
      return report
    },
    /** SIGKILL, unless it already exited (its PID may be someone else's by now). */
    kill: () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      try { process.kill(proc.pid, 'SIGKILL') } catch {}
    }
  }
}

/** First number after `key=` or `"key":` in a progress line. */
function progressField (line, key) {
  const m = new RegExp(`\\b${key}"?\\s*[=:]\\s*(\\d+)`).exec(line)
  return m ? Number(m[1]) : null
}

function median (xs) {
  const s = xs.filter((x) => x != null && Number.isFinite(x)).sort((a, b) => a - b)
  if (!s.length) return null
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

function gitInfo () {
  const run = (args) => {
    const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' })
    return r.status === 0 ? r.stdout.trim() : null
  }
  const commit = run(['rev-parse', '--short', 'HEAD'])
  const dirty = run(['status', '--porcelain', '--', 'src', 'lib', 'index.js', 'Cargo.toml'])
  return commit ? { commit, dirty: !!dirty } : null
}

function pkgVersion (name) {
  try { return require(`${name}/package.json`).version } catch { return null }
}

function machineInfo () {
  const cpus = os.cpus()
  return {
    cpus: cpus.length,
    cpuModel: cpus[0] ? cpus[0].model.trim() : null,
    totalMemMiB: Math.round(os.totalmem() / 1048576),
    platform: `${process.platform}-${process.arch}`,
    kernel: os.release(),
    node: process.version,
    openFilesLimit: (() => { const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }); return r.status === 0 ? r.stdout.trim() : null })()
  }
}

/** The version of a server's package as installed (ferrosocket: this checkout's). */
function serverVersion (name) {
  const pkg = SERVERS[name].pkg
  return pkg ? pkgVersion(pkg) : require(path.join(ROOT, 'package.json')).version
}

function versions (lg) {
  return {
    ferrosocket: require(path.join(ROOT, 'package.json')).version,
    ferrosocketGit: gitInfo(),
    'socket.io': pkgVersion('socket.io'),
    ws: pkgVersion('ws'),
    'uWebSockets.js': pkgVersion('@trufflesuite/uws-js-unofficial'),
    loadgen: lg ? lg.version : null,
    node: process.version
  }
}

module.exports = {
  connectFleet,
  deflate,
  withServer,
  BENCH_DIR,
  ROOT,
  RESULTS_DIR,
  SERVERS,
  MAX_PER_SERVER,
  Children,
  Unsupported,
  sleep,
  nowUs,
  resolveServerName,
  readVmRss,
  settleRss,
  gcSettleRss,
  rssPerConn,
  jsonLines,
  tail,
  waitExit,
  ensureLoadgen,
  makeCert,
  startServer,
  startLoadgen,
  startRedis,
  freePort,
  progressField,
  median,
  machineInfo,
  serverVersion,
  versions
}
