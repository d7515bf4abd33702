'use strict'
// Runs one official protocol suite (copied and installed outside the repo,
// see README.md) against official-server.js and prints its pass count.
//
// Usage:
//   node run.js --suite socket.io|engine.io --dir /tmp/official-suites/socket.io-v5
//               [--impl ferrosocket|socket.io] [--port 3000]
// Last line: `<suite> suite (<impl>): N passed, N failed`; exit 1 on any failure.

const { spawn } = require('node:child_process')
const path = require('node:path')
const fs = require('node:fs')
const { parseArgs } = require('node:util')

const { values: args } = parseArgs({
  options: {
    suite: { type: 'string', default: 'socket.io' },
    dir: { type: 'string' },
    impl: { type: 'string', default: 'ferrosocket' },
    port: { type: 'string', default: '3000' }
  }
})

if (!args.dir) {
  console.error('run.js: --dir <path of the installed official suite> is required (see README.md)')
  process.exit(2)
}
const mocha = path.join(args.dir, 'node_modules', '.bin', 'mocha')
if (!fs.existsSync(mocha)) {
  console.error(`run.js: ${mocha} not found; run npm ci in ${args.dir} first`)
  process.exit(2)
}

const server = spawn(process.execPath, [
  path.join(__dirname, 'official-server.js'),
  '--impl', args.impl, '--suite', args.suite, '--port', args.port
], { stdio: ['ignore', 'pipe', 'inherit'] })

// Mocha's per-case timeout (2 s) bounds each case; this bounds a server
// that never says it is listening.
const startTimer = setTimeout(() => {
  console.error('run.js: the server did not start within 10 s')
  server.kill('SIGKILL')
  process.exit(2)
}, 10000)

server.on('exit', (code) => {
  if (!started) {
    clearTimeout(startTimer)
    process.exit(code || 2)
  }
})

let started = false
server.stdout.setEncoding('utf8')
server.stdout.on('data', (text) => {
  if (started || !text.includes('listening')) return
  started = true
  clearTimeout(startTimer)
  process.stdout.write(text)
  runSuite()
})

function runSuite () {
  const child = spawn(mocha, ['--reporter', 'spec', 'test-suite.js'], { cwd: args.dir, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d) => { out += d; process.stdout.write(d) })
  child.on('exit', () => {
    server.kill('SIGTERM')
    const passed = Number(/(\d+) passing/.exec(out)?.[1] ?? 0)
    const failed = Number(/(\d+) failing/.exec(out)?.[1] ?? 0)
    console.log(`${args.suite} suite (${args.impl}): ${passed} passed, ${failed} failed`)
    process.exitCode = failed === 0 && passed > 0 ? 0 : 1
  })
}
