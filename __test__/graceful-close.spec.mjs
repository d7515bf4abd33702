// Graceful shutdown (#13 item 7): app.close() and io.close() send what is
// already queued, then close; a message sent just before close arrives, a
// large one in full. A peer still reading what was queued before the close
// frame gets the time it needs (up to 30 s); one that stops reading, the
// close-handshake deadline (1-2 s).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { io as ioc } from 'socket.io-client'
import { uWS } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'
import net from 'node:net'
import { upgradeRequest } from './helpers/raw-client.mjs'

const require = createRequire(import.meta.url)
const { Server } = require('..')

test('app.close() right after sends: 8 MiB and a last message arrive, then close 1001', { timeout: 15000 }, async (t) => {
  let app
  const port = await new Promise((resolve) => {
    app = uWS.App().ws('/*', {
      maxBackpressure: 64 << 20,
      message: (ws) => {
        ws.send(Buffer.alloc(8 << 20, 1), true)
        ws.send('last')
        app.close()
      }
    })
    app.listen('127.0.0.1', 0, (ls) => resolve(uWS.us_socket_local_port(ls)))
  })
  t.after(() => app.close())
  const c = await connect(`ws://127.0.0.1:${port}/`)
  await c.send('go')
  const { code } = await c.closed
  assert.deepEqual(c.messages.map((m) => [m.isBinary, m.data.length]), [[true, 8 << 20], [false, 4]])
  assert.equal(code, 1001)
})

test('io.close() right after emits: a 4 MiB event and a broadcast arrive before the disconnect', { timeout: 15000 }, async (t) => {
  const io = new Server(0)
  t.after(() => io.close())
  await new Promise((resolve) => setTimeout(resolve, 50))
  const c = ioc(`http://127.0.0.1:${io.httpServer.address().port}`, { transports: ['websocket'], reconnection: false, forceNew: true })
  t.after(() => c.close())
  const got = []
  c.onAny((ev, data) => got.push([ev, data.length]))
  io.on('connection', (s) => {
    s.emit('big', 'x'.repeat(4 << 20))
    io.emit('bye', 'b')
    io.close()
  })
  const [reason] = await new Promise((resolve) => c.on('disconnect', (...a) => resolve(a)))
  assert.deepEqual(got, [['big', 4 << 20], ['bye', 1]])
  assert.equal(reason, 'transport close')
})

test('ws.end() after 12 MiB to a peer reading ~3 MiB/s: everything arrives, then the close frame', { timeout: 30000 }, async (t) => {
  const SIZE = 12 << 20
  let app
  const port = await new Promise((resolve) => {
    app = uWS.App().ws('/*', {
      maxBackpressure: 64 << 20,
      message: (ws) => { ws.send(Buffer.alloc(SIZE, 1), true); ws.end(1000, 'bye') }
    })
    app.listen('127.0.0.1', 0, (ls) => resolve(uWS.us_socket_local_port(ls)))
  })
  t.after(() => app.close())
  const chunks = []
  let total = 0
  await new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(upgradeRequest({ path: '/' })))
    c.setRecvBufferSize?.(64 * 1024)
    let upgraded = false
    c.on('error', () => {})
    c.on('data', (d) => {
      if (!upgraded) {
        upgraded = true
        c.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x67, 0x6f])) // "go", masked
        return
      }
      chunks.push(d)
      total += d.length
      // A live peer on a slow link: about 3 MiB/s.
      c.pause()
      setTimeout(() => c.resume(), d.length / 3000)
    })
    c.on('close', resolve)
  })
  const all = Buffer.concat(chunks, total)
  const close = Buffer.from([0x88, 0x05, 0x03, 0xe8, ...Buffer.from('bye')])
  assert.equal(total, 10 + SIZE + close.length, `received ${total} bytes`)
  assert.deepEqual(all.subarray(-close.length), close)
})
