// No silent shortfall (#13 item 3): a Socket.IO client that stops reading
// is disconnected with "transport error" once more than `maxBackpressure`
// bytes wait for it, on WebSocket and on long-polling, instead of being
// kept "connected" while what it should receive is dropped; it then knows,
// and reconnects. With the real socket.io-client.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { io as ioc } from 'socket.io-client'
import { connected } from './helpers/sio.mjs'
import { httpRequest } from './helpers/raw-client.mjs'

const require = createRequire(import.meta.url)
const { Server } = require('..')
const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))

test('WebSocket: a client that stops reading is disconnected with "transport error" past maxBackpressure, and reconnects', { timeout: 30000 }, async (t) => {
  const io = new Server({ maxBackpressure: 256 * 1024 })
  io.listen(0)
  t.after(() => io.close())
  const c = ioc(`http://127.0.0.1:${io.port}`, { transports: ['websocket'], forceNew: true, reconnectionDelay: 100 })
  t.after(() => c.close())
  const socket = await connected(io, c)
  // The client's TCP socket stops reading: the kernel buffers fill, then
  // the server's queue.
  c.io.engine.transport.ws._socket.pause()
  const reason = once(socket, 'disconnect')
  const chunk = 'x'.repeat(16 * 1024)
  let sent = 0
  const pump = setInterval(() => {
    for (let i = 0; i < 64 && socket.connected; i++, sent++) socket.emit('data', chunk)
    if (!socket.connected) clearInterval(pump)
  }, 5)
  t.after(() => clearInterval(pump))
  assert.deepEqual(await reason, ['transport error'])
  t.diagnostic(`disconnected after ${sent} messages of 16 KiB (${(sent * 16 / 1024).toFixed(1)} MiB sent)`)
  // Reading again, the client learns it was disconnected and reconnects.
  const clientReason = once(c, 'disconnect')
  const again = once(io, 'connection')
  c.io.engine.transport.ws._socket.resume()
  const [why] = await clientReason
  assert.ok(['transport close', 'transport error'].includes(why), why)
  const [back] = await again
  assert.notEqual(back.id, socket.id)
})

test('long-polling: a client that stops polling is disconnected with "transport error" past maxBackpressure', { timeout: 30000 }, async (t) => {
  const io = new Server({ maxBackpressure: 64 * 1024, pingInterval: 300, pingTimeout: 5000 })
  io.listen(0)
  t.after(() => io.close())
  const port = io.port
  const open = await httpRequest(port, { path: '/socket.io/?EIO=4&transport=polling' })
  const sid = JSON.parse(open.body.toString().slice(1)).sid
  const path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`
  const connection = once(io, 'connection')
  await httpRequest(port, { method: 'POST', path, body: '40', headers: { 'content-type': 'text/plain;charset=UTF-8' } })
  const [socket] = await connection
  await httpRequest(port, { path })
  // Never polled again: what is emitted waits in the session's queue.
  const reason = once(socket, 'disconnect')
  for (let i = 0; i < 100; i++) socket.emit('data', 'y'.repeat(1024))
  assert.deepEqual(await reason, ['transport error'])
})

test('a client that closes its WebSocket with 1009 itself is "transport close", as engine.io reports any close from the client', { timeout: 10000 }, async (t) => {
  const { WebSocket } = await import('ws')
  const io = new Server()
  io.listen(0)
  t.after(() => io.close())
  await new Promise((resolve) => setTimeout(resolve, 50))
  const reason = new Promise((resolve) => io.on('connection', (s) => s.on('disconnect', resolve)))
  const ws = new WebSocket(`ws://127.0.0.1:${io.port}/socket.io/?EIO=4&transport=websocket`)
  t.after(() => ws.terminate())
  ws.on('message', (m) => {
    if (String(m).startsWith('40')) ws.close(1009, 'too big for me')
  })
  await new Promise((resolve) => ws.once('open', resolve))
  ws.send('40')
  assert.equal(await reason, 'transport close')
})
