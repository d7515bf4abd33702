// The package's entry points: ESM named and default imports, the CommonJS
// factory form, and RemoteSocket (exported for `import { RemoteSocket }` and
// the socket.io API that returns it).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { io as ioc } from 'socket.io-client'
import ferrosocket, * as esm from 'ferrosocket'

const require = createRequire(import.meta.url)
const cjs = require('ferrosocket')

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))

test('ESM named exports are exactly the CommonJS exports, the same objects', () => {
  const named = Object.keys(esm).filter((k) => k !== 'default').sort()
  assert.deepEqual(named, Object.keys(cjs).sort())
  for (const k of named) assert.equal(esm[k], cjs[k], k)
  assert.equal(ferrosocket, cjs)
})

test('the default export and require() are the socket.io factory: ferrosocket(port) is a Server', { timeout: 10000 }, async (t) => {
  const io = ferrosocket(0, { pingInterval: 300, pingTimeout: 200 })
  t.after(() => io.close())
  assert.ok(io instanceof esm.Server)
  assert.ok(io.httpServer.listening)
  const c = ioc(`http://127.0.0.1:${io.httpServer.address().port}`, { reconnection: false, forceNew: true })
  t.after(() => c.close())
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  assert.equal(socket.id, c.id)
})

test('RemoteSocket built from a socket\'s details emits, acks, joins and disconnects it', { timeout: 10000 }, async (t) => {
  const { Server, RemoteSocket } = esm
  const io = new Server({ pingInterval: 300, pingTimeout: 200 })
  io.listen(0)
  t.after(() => io.close())
  const c = ioc(`http://127.0.0.1:${io.port}`, { reconnection: false, forceNew: true, transports: ['websocket'] })
  t.after(() => c.close())
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  socket.data.user = 'ada'

  const remote = new RemoteSocket(io.of('/').adapter,
    { id: socket.id, handshake: socket.handshake, rooms: [...socket.rooms], data: socket.data })
  assert.equal(remote.id, socket.id)
  assert.deepEqual([...remote.rooms], [socket.id])
  assert.equal(remote.data.user, 'ada')

  const got = once(c, 'hello')
  remote.emit('hello', 1, 'two')
  assert.deepEqual(await got, [1, 'two'])

  // One socket's ack: the response itself, not an array of them.
  c.on('ask', (q, ack) => ack(q * 2))
  const [err, answer] = await new Promise((resolve) => remote.timeout(2000).emit('ask', 21, (...a) => resolve(a)))
  assert.equal(err, null)
  assert.equal(answer, 42)

  remote.join('lobby')
  assert.ok(socket.rooms.has('lobby'))
  remote.leave('lobby')
  assert.ok(!socket.rooms.has('lobby'))

  const gone = once(c, 'disconnect')
  assert.equal(remote.disconnect(), remote)
  assert.equal((await gone)[0], 'io server disconnect')
})
