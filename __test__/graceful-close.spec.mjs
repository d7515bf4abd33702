// Graceful shutdown (#13 item 7): app.close() and io.close() send what is
// already queued, then close; a message sent just before close arrives, a
// large one in full. The peer has the close-handshake deadline (1-2 s) to
// read it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { io as ioc } from 'socket.io-client'
import { uWS } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'

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
