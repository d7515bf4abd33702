'use strict'
// Control channel shared by the benchmark servers (one server per process).
//
// stdout: JSON lines. The first is {"event":"listening","port":...}.
// stdin:  one command per line, each answered with one JSON line:
//   gc    run a full GC a few times (needs `node --expose-gc`), reply with memory
//   rss   reply with memory and the server's own count of open connections
//   exit  close and exit (stdin EOF and SIGTERM/SIGINT do the same)
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

/**
 * Wire up the control channel.
 * @param {object} info  extra fields for the listening line (name, impl...)
 * @param {{open:number, opened:number, closed:number}} stats  live counters
 * @param {() => void} close  stop listening and drop connections
 */
function serve (info, stats, close) {
  let exiting = false
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
    const cmd = line.trim()
    if (cmd === 'gc') {
      const ran = await fullGc()
      send({ event: 'gc', ran, ...memory(stats) })
    } else if (cmd === 'rss') {
      send({ event: 'rss', ...memory(stats) })
    } else if (cmd === 'exit') {
      exit(0)
    } else if (cmd) {
      send({ event: 'error', error: `unknown command ${JSON.stringify(cmd)}` })
    }
  })
  rl.on('close', () => exit(0))
  process.on('SIGTERM', () => exit(0))
  process.on('SIGINT', () => exit(0))
}

function fail (message) {
  send({ event: 'fatal', error: message })
  process.stderr.write(`server: ${message}\n`)
  process.exit(1)
}

module.exports = { serve, send, fail, memory }
