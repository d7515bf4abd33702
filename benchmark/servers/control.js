'use strict'
// Control channel shared by the benchmark servers (one server per process).
//
// argv:   [--tls CERT KEY]  serve TLS (wss:// / https) with these PEM files
//         [--port P]        listen on P (shared with other processes where the
//                           server can: the cluster scenario); default 0
//         [--scale-out URL] link to the other servers through Redis at URL
// stdout: JSON lines. The first is {"event":"listening","port":...}, or
//         {"event":"fatal","error":...,"code"?:...} when the server cannot run
//         (code FERROSOCKET_UNSUPPORTED: a feature this build does not have).
// stdin:  one command per line, each answered with one JSON line:
//   gc                     run a full GC a few times (needs `node --expose-gc`), reply with memory
//   rss                    reply with memory and the server's own count of open connections
//   cpu                    cumulative process CPU time (all threads), µs
//   broadcast COUNT BYTES  send COUNT messages {"seq":K,"pad":"..."} (BYTES of JSON
//                          each) to every connected client as fast as the API
//                          allows; reply with the wall time and process CPU used
//                          by the sending loop (delivery may finish later:
//                          measure it with `cpu` afterwards)
//   exit                   close and exit (stdin EOF and SIGTERM/SIGINT do the same)
// seq counts up across broadcast commands from 0, per process.
const fs = require('node:fs')
const readline = require('node:readline')

function vmRssBytes () {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))
    if (m) return Number(m[1]) * 1024
  } catch {}
  return process.memoryUsage.rss()
}

function memory (stats) {
  const mu = process.memoryUsage()
  return {
    rss: vmRssBytes(),
    heapUsed: mu.heapUsed,
    heapTotal: mu.heapTotal,
    external: mu.external,
    arrayBuffers: mu.arrayBuffers,
    open: stats.open,
    opened: stats.opened,
    closed: stats.closed
  }
}

function cpu () {
  // getrusage(RUSAGE_SELF): every thread of the process, so the Rust
  // workers of ferrosocket and uWS's own loop are included.
  const u = process.cpuUsage()
  return { user: u.user, system: u.system, total: u.user + u.system }
}

/** Wall clock (CLOCK_REALTIME) in µs, comparable with loadgen's first_us/last_us. */
function nowUs () {
  return Math.round((performance.timeOrigin + performance.now()) * 1000)
}

function send (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

async function fullGc () {
  if (typeof global.gc !== 'function') return false
  // Several passes with turns of the event loop in between, so weak
  // callbacks and finalizers queued by one pass are collected by the next.
  for (let i = 0; i < 4; i++) {
    global.gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return true
}

/** `--tls CERT KEY`, `--attached`, `--port P`, `--scale-out URL`, `--compress` from argv. */
function parseServerArgs (argv = process.argv.slice(2)) {
  // --attached: the Socket.IO API on an http.Server the app listens with.
  const attached = argv.includes('--attached')
  const value = (flag) => {
    const i = argv.indexOf(flag)
    return i < 0 ? undefined : argv[i + 1]
  }
  const port = Number(value('--port') ?? 0)
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail('--port needs a port number')
  const scaleOut = value('--scale-out') ?? null
  // --compress: permessage-deflate on (each server's own way to ask for it).
  const compress = argv.includes('--compress')
  const i = argv.indexOf('--tls')
  if (i < 0) return { tls: null, attached, port, scaleOut, compress }
  const cert = argv[i + 1]
  const key = argv[i + 2]
  if (!cert || !key) fail('--tls needs CERT and KEY file paths')
  return { tls: { cert, key }, attached, port, scaleOut, compress }
}

/**
 * A message object whose JSON is `bytes` long (or as short as possible):
 * {"seq":K,"pad":"xxxx"}.
 */
function makeMessage (seq, bytes) {
  const bare = `{"seq":${seq},"pad":""}`.length
  return { seq, pad: padText(seq, Math.max(0, bytes - bare)) }
}

// Words drawn by a small deterministic generator: text that compresses
// about as well as chat or ticker JSON does (a run of one letter would
// make compression free for every server).
const WORDS = ['price', 'bid', 'ask', 'volume', 'user', 'room', 'message', 'hello', 'world', 'update', 'tick', 'alpha',
  'beta', 'gamma', 'delta', 'status', 'online', 'away', 'typing', 'seen', 'order', 'trade', 'filled', 'open']
function padText (seq, n) {
  let x = (seq * 2654435761) >>> 0
  let out = ''
  while (out.length < n) {
    x = (x * 1103515245 + 12345) >>> 0
    out += WORDS[x % WORDS.length] + ((x >>> 8) % 1000) + ' '
  }
  return out.slice(0, n)
}

/**
 * Wire up the control channel.
 * @param {object} info  extra fields for the listening line (name, impl, tls...)
 * @param {{open:number, opened:number, closed:number}} stats  live counters
 * @param {() => void} close  stop listening and drop connections
 * @param {{broadcast?: (msgs: object[]) => number}} [hooks]
 *   broadcast: send each message object to every client, in order, and
 *   return the number of clients it went to.
 */
function serve (info, stats, close, hooks = {}) {
  let exiting = false
  let seq = 0
  const exit = (code) => {
    if (exiting) return
    exiting = true
    try { close() } catch {}
    // Do not wait for sockets to drain: the harness wants the process gone.
    setImmediate(() => process.exit(code))
  }
  send({ event: 'listening', pid: process.pid, node: process.version, ...info })
  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', async (line) => {
    const [cmd, ...args] = line.trim().split(/\s+/)
    if (cmd === 'gc') {
      const ran = await fullGc()
      send({ event: 'gc', ran, ...memory(stats) })
    } else if (cmd === 'rss') {
      send({ event: 'rss', ...memory(stats) })
    } else if (cmd === 'cpu') {
      send({ event: 'cpu', ...cpu() })
    } else if (cmd === 'broadcast') {
      const count = Number(args[0])
      const bytes = Number(args[1] || 64)
      if (!hooks.broadcast) return send({ event: 'error', error: 'this server has no broadcast' })
      if (!(count > 0) || !(bytes >= 0)) return send({ event: 'error', error: 'usage: broadcast COUNT BYTES' })
      // Objects are built before the clock starts: the loop measures the
      // server library (encode + fan-out), not the harness.
      const msgs = []
      for (let i = 0; i < count; i++) msgs.push(makeMessage(seq + i, bytes))
      const firstSeq = seq
      seq += count
      const startedUs = nowUs()
      const c0 = process.cpuUsage()
      const t0 = process.hrtime.bigint()
      let clients
      try {
        clients = hooks.broadcast(msgs)
      } catch (err) {
        return send({ event: 'error', error: `broadcast failed: ${err.stack || err}` })
      }
      const ns = Number(process.hrtime.bigint() - t0)
      const c = process.cpuUsage(c0)
      send({
        event: 'broadcast',
        count,
        bytes: JSON.stringify(msgs[0]).length,
        clients,
        firstSeq,
        lastSeq: seq - 1,
        startedUs,
        ms: ns / 1e6,
        cpuUs: c.user + c.system,
        cpuUserUs: c.user,
        cpuSystemUs: c.system
      })
    } else if (cmd === 'exit') {
      exit(0)
    } else if (cmd) {
      send({ event: 'error', error: `unknown command ${JSON.stringify(line.trim())}` })
    }
  })
  rl.on('close', () => exit(0))
  process.on('SIGTERM', () => exit(0))
  process.on('SIGINT', () => exit(0))
}

function fail (message, code) {
  send({ event: 'fatal', error: message, ...(code ? { code } : {}) })
  process.stderr.write(`server: ${message}\n`)
  process.exit(1)
}

module.exports = { serve, send, fail, memory, cpu, parseServerArgs, makeMessage }
