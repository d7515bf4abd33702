// The raw Engine.IO server (EngineServer): sessions over long-polling and
// WebSocket, the upgrade between them, echo of text and binary, close
// reasons. The official Engine.IO v4 suite runs against the same class (see
// conformance/socketio/README.md).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { createRequire } from 'node:module'
import WebSocket from 'ws'

const require = createRequire(import.meta.url)
const { EngineServer } = require('..')

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))

async function start (t, opts = {}) {
  const httpServer = http.createServer()
  const engine = new EngineServer({ pingInterval: 300, pingTimeout: 200, ...opts })
  engine.attach(httpServer)
  const closes = []
  engine.on('connection', (socket) => {
    socket.on('message', (data) => socket.send(data))
    socket.on('close', (reason) => closes.push(reason))
  })
  httpServer.listen(0, '127.0.0.1')
  await once(httpServer, 'listening')
  t.after(() => engine.close())
  const base = `127.0.0.1:${httpServer.address().port}/engine.io/?EIO=4`
  return { engine, closes, base }
}

test('polling: open, echo of text and binary (base64), close packet ends the session', { timeout: 10000 }, async (t) => {
  const { engine, closes, base } = await start(t)
  const open = await (await fetch(`http://${base}&transport=polling`)).text()
  const { sid, upgrades } = JSON.parse(open.slice(1))
  assert.deepEqual(upgrades, ['websocket'])
  assert.equal(engine.clientsCount, 1)
  assert.equal(engine.clients.get(sid).transport.name, 'polling')
  const post = await fetch(`http://${base}&transport=polling&sid=${sid}`, { method: 'POST', body: '4hello\x1ebAQID' })
  assert.equal(await post.text(), 'ok')
  const echoed = await (await fetch(`http://${base}&transport=polling&sid=${sid}`)).text()
  assert.equal(echoed, '4hello\x1ebAQID')
  await fetch(`http://${base}&transport=polling&sid=${sid}`, { method: 'POST', body: '1' })
  await new Promise((resolve) => setTimeout(resolve, 100))
  assert.deepEqual(closes, ['transport close'])
  assert.equal(engine.clientsCount, 0)
})

test('websocket: echo, upgrade from polling moves the session, server close is "forced close"', { timeout: 10000 }, async (t) => {
  const { engine, closes, base } = await start(t)
  const open = await (await fetch(`http://${base}&transport=polling`)).text()
  const { sid } = JSON.parse(open.slice(1))
  const ws = new WebSocket(`ws://${base}&transport=websocket&sid=${sid}`)
  await once(ws, 'open')
  ws.send('2probe')
  assert.equal(String((await once(ws, 'message'))[0]), '3probe')
  ws.send('5')
  ws.send(Buffer.from([7, 8]))
  const [data, isBinary] = await once(ws, 'message')
  assert.equal(isBinary, true)
  assert.deepEqual([...data], [7, 8])
  assert.equal(engine.clients.get(sid).transport.name, 'websocket')
  const after = await fetch(`http://${base}&transport=polling&sid=${sid}`)
  assert.equal(after.status, 400)
  engine.clients.get(sid).close()
  const [code] = await once(ws, 'close')
  assert.ok(code === 1000 || code === 1005, String(code))
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.deepEqual(closes, ['forced close'])
})

test('a WebSocket session that never answers pings ends with "ping timeout"', { timeout: 10000 }, async (t) => {
  const { closes, base } = await start(t)
  const ws = new WebSocket(`ws://${base}&transport=websocket`)
  const [open] = await once(ws, 'message')
  assert.deepEqual(JSON.parse(String(open).slice(1)).upgrades, [])
  await once(ws, 'close')
  assert.deepEqual(closes, ['ping timeout'])
})
