// Regression tests from the review of the core: ways a client or a handler
// could crash the process, hang it at exit, or inject into responses.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runChild } from './helpers/child.mjs'
import { ferroOnly } from './helpers/env.mjs'

const ONLY = ferroOnly('ferrosocket-only: uWS.js lets handler errors escape as uncaught exceptions')

// Each case runs in a child: a crash there must show as a failed test, not
// take the test runner down.
const server = (routes) => `
  process.on('warning', (w) => { if (w.code === 'FERROSOCKET_HANDLER_ERROR') console.log('warning') })
  const http = require('node:http')
  const app = uWS.App()${routes}
  const get = (port, path, headers = {}) => new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port, path, headers }, (r) => {
      let body = ''
      r.on('data', (d) => { body += d })
      r.on('end', () => resolve({ status: r.statusCode, headers: r.headers, body }))
    }).on('error', (e) => resolve({ error: e.message })).setTimeout(3000, function () { this.destroy(new Error('timeout')) })
  })
`

test('async route and upgrade handlers that reject answer 500 and the process lives on', { timeout: 20000, skip: ONLY }, async () => {
  const r = await runChild(server(`
    .ws('/ws', { upgrade: async () => { throw new Error('auth backend down') } })
    .get('/async', async () => { throw new Error('async route threw') })
    .get('/data', (res) => {
      res.onData(() => { throw new Error('onData threw') })
      setTimeout(() => res.end('still answering'), 50)
    })
  `) + `
    app.listen('127.0.0.1', 0, async (ls) => {
      const port = uWS.us_socket_local_port(ls)
      for (const path of ['/async', '/data']) console.log(path, JSON.stringify(await get(port, path)))
      const upgrade = { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' }
      console.log('/ws', JSON.stringify(await get(port, '/ws', upgrade)))
      app.close()
    })
  `, 15000)
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /\/async \{"status":500/)
  assert.match(r.stdout, /\/ws \{"status":500/)
  assert.match(r.stdout, /\/data \{"status":200.*"body":"still answering"/)
  assert.ok(r.stdout.split('\n').filter((l) => l === 'warning').length >= 3, r.stdout)
})

test('a status line carrying CR/LF cannot inject headers', { timeout: 20000, skip: ONLY }, async () => {
  const r = await runChild(server(`
    .get('/x', (res) => res.writeStatus('200 OK\\r\\nSet-Cookie: injected=1').end('hi'))
  `) + `
    app.listen('127.0.0.1', 0, async (ls) => {
      console.log(JSON.stringify(await get(uWS.us_socket_local_port(ls), '/x')))
      app.close()
    })
  `, 15000)
  assert.equal(r.code, 0, r.stderr)
  const res = JSON.parse(r.stdout.trim().split('\n').pop())
  assert.equal(res.headers['set-cookie'], undefined)
  assert.equal(res.status, 500)
})

test('maxPayloadLength beyond any sane size is capped instead of aborting on a bare header', { timeout: 20000, skip: ferroOnly('ferrosocket-only: uWS.js limits differ') }, async () => {
  const r = await runChild(`
    const net = require('node:net')
    const app = uWS.App().ws('/*', { maxPayloadLength: Number.MAX_SAFE_INTEGER, close: (ws, code) => console.log('close', code) })
    app.listen('127.0.0.1', 0, (ls) => {
      const s = net.connect(uWS.us_socket_local_port(ls), '127.0.0.1', () => {
        s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n')
        // 64-bit length 2^52, masked, no payload.
        s.write(Buffer.from([0x82, 0xff, 0, 0x10, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]))
        setTimeout(() => { console.log('alive'); s.destroy(); app.close() }, 500)
      })
      s.on('error', () => {})
    })
  `, 15000)
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /alive/)
})

test('close() while an upgrade request is still queued for JS: the process still exits', { timeout: 20000 }, async () => {
  const r = await runChild(`
    const net = require('node:net')
    const app = uWS.App().ws('/*', {
      upgrade: (res, req, ctx) => res.upgrade({}, req.getHeader('sec-websocket-key'), '', '', ctx)
    })
    app.listen('127.0.0.1', 0, (ls) => {
      const port = uWS.us_socket_local_port(ls)
      const s = net.connect(port, '127.0.0.1', () => {
        s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n')
        // Keep the JS thread busy so the upgrade event queues up, then close.
        const until = Date.now() + 300
        while (Date.now() < until) {}
        app.close()
        s.destroy()
        console.log('closed')
      })
      s.on('error', () => {})
    })
  `, 15000)
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /closed/)
})
