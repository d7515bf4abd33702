// Custom adapters (`adapter` option, `io.adapter(X)`): socket.io-adapter
// compatible classes, unchanged. socket.io-adapter's own Adapter, and
// @socket.io/redis-adapter with `redis` clients against a real
// redis-server, in one fleet with a real socket.io 4.8 server.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { createClient } from 'redis'
import { createAdapter } from '@socket.io/redis-adapter'
import { wsClient, connected } from './helpers/sio.mjs'
import { startRedis } from './helpers/redis.mjs'

const require = createRequire(import.meta.url)
const { Server } = require('..')
const { Server: SocketIoServer } = require('socket.io')
const { Adapter } = require('socket.io-adapter')

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const client = wsClient

test('socket.io-adapter\'s Adapter: rooms, broadcasts, acks and operators through it', { timeout: 15000 }, async (t) => {
  const io = new Server({ adapter: Adapter })
  io.listen(0)
  t.after(() => io.close())
  assert.ok(io.of('/').adapter instanceof Adapter)
  assert.equal(io.adapter(), Adapter)
  // One at a time: 'connection' then belongs to the client just made.
  const a = client(t, io.port)
  const sa = await connected(io, a)
  const b = client(t, io.port)
  const sb = await connected(io, b)
  const c = client(t, io.port)
  const sc = await connected(io, c)
  sa.join('red')
  sb.join(['red', 'blue'])
  // The adapter holds the rooms, own rooms included.
  assert.deepEqual([...io.of('/').adapter.rooms.get('red')].sort(), [sa.id, sb.id].sort())
  assert.ok(io.of('/').adapter.sids.get(sc.id).has(sc.id))

  const got = []
  for (const [name, cl] of [['a', a], ['b', b], ['c', c]]) cl.onAny((ev, ...args) => got.push([name, ev, ...args]))
  const outgoing = []
  sa.onAnyOutgoing((ev) => outgoing.push(ev))
  io.to('red').except('blue').emit('only-a', 1)
  sa.broadcast.emit('not-a', Buffer.from([1, 2]))
  io.emit('all')
  await sleep(200)
  const names = (who) => got.filter((g) => g[0] === who).map((g) => g[1])
  assert.deepEqual(names('a'), ['only-a', 'all'])
  assert.deepEqual(names('b'), ['not-a', 'all'])
  assert.deepEqual(names('c'), ['not-a', 'all'])
  assert.deepEqual(got.find((g) => g[0] === 'b' && g[1] === 'not-a')[2], Buffer.from([1, 2]))
  assert.deepEqual(outgoing, ['only-a', 'all'], 'onAnyOutgoing sees broadcasts')

  // Acks through broadcastWithAck: every client's answer, or the timeout.
  for (const cl of [a, b, c]) cl.on('q', (n, ack) => ack(n * 2))
  assert.deepEqual((await io.timeout(2000).emitWithAck('q', 21)), [42, 42, 42])
  assert.deepEqual(await io.to('blue').timeout(2000).emitWithAck('q', 1), [2])

  // Operators: fetchSockets returns this node's sockets themselves.
  const red = await io.in('red').fetchSockets()
  assert.deepEqual(red.map((s) => s.id).sort(), [sa.id, sb.id].sort())
  assert.ok(red.includes(sa))
  io.in('blue').socketsJoin('green')
  assert.ok(sb.rooms.has('green') && !sa.rooms.has('green'))
  io.socketsLeave('red')
  assert.ok(!sa.rooms.has('red') && !sb.rooms.has('red'))
  assert.equal(io.of('/').adapter.rooms.get('red'), undefined)
  assert.deepEqual([...await io.allSockets()].sort(), [sa.id, sb.id, sc.id].sort())

  // A socket that goes leaves the adapter.
  const gone = once(sc, 'disconnect')
  io.in(sc.id).disconnectSockets()
  await gone
  assert.equal(io.of('/').adapter.sids.has(sc.id), false)
  assert.equal(io.of('/').adapter.rooms.has(sc.id), false)
})

test('io.adapter(X) replaces the adapter of namespaces made before', { timeout: 10000 }, async (t) => {
  const io = new Server()
  io.listen(0)
  t.after(() => io.close())
  const chat = io.of('/chat')
  class Counting extends Adapter {
    broadcast (packet, opts) {
      Counting.calls++
      super.broadcast(packet, opts)
    }
  }
  Counting.calls = 0
  io.adapter(Counting)
  assert.ok(chat.adapter instanceof Counting)
  assert.ok(io.of('/').adapter instanceof Counting)
  const c = client(t, io.port)
  await connected(io, c)
  const hello = once(c, 'hello')
  io.emit('hello', 'x')
  assert.deepEqual(await hello, ['x'])
  assert.equal(Counting.calls, 1)
  assert.throws(() => io.adapter('redis'), { name: 'TypeError', message: /"adapter" must be a function/ })
})

test('@socket.io/redis-adapter: ferrosocket and socket.io 4.8 serve one fleet over a real Redis', { timeout: 30000 }, async (t) => {
  const url = await startRedis(t)
  const redisPair = async () => {
    const pub = createClient({ url })
    const sub = pub.duplicate()
    // Closing at the end is not an error worth a warning.
    for (const r of [pub, sub]) r.on('error', () => {})
    await Promise.all([pub.connect(), sub.connect()])
    // disconnect(), not quit(): redis-server may already be gone (hooks run in order).
    t.after(() => Promise.allSettled([pub.disconnect(), sub.disconnect()]))
    return createAdapter(pub, sub, { requestsTimeout: 3000 })
  }
  const ours = new Server({ adapter: await redisPair() })
  ours.listen(0)
  const theirs = new SocketIoServer()
  theirs.adapter(await redisPair())
  theirs.listen(0)
  t.after(() => {
    ours.close()
    theirs.close()
  })
  const theirsPort = theirs.httpServer.address().port
  const a = client(t, ours.port)
  const sa = await connected(ours, a)
  const b = client(t, theirsPort)
  const sb = await connected(theirs, b)
  sa.join('room')
  sb.join('room')
  // Both servers subscribed: each counts the other.
  assert.equal(await ours.of('/').adapter.serverCount(), 2)

  // Broadcasts cross in both directions, to rooms and to all.
  let both = Promise.all([once(a, 'hello'), once(b, 'hello')])
  ours.to('room').emit('hello', 'from ferrosocket')
  assert.deepEqual(await both, [['from ferrosocket'], ['from ferrosocket']])
  both = Promise.all([once(a, 'hi'), once(b, 'hi')])
  theirs.emit('hi', Buffer.from([7]))
  const [[ha], [hb]] = await both
  assert.deepEqual([Buffer.from(ha), Buffer.from(hb)], [Buffer.from([7]), Buffer.from([7])])

  // Acks from clients of both nodes.
  a.on('q', (ack) => ack('a'))
  b.on('q', (ack) => ack('b'))
  assert.deepEqual((await ours.timeout(3000).emitWithAck('q')).sort(), ['a', 'b'])

  // fetchSockets: this node's socket itself, the other's as a RemoteSocket.
  const sockets = await ours.in('room').fetchSockets()
  assert.deepEqual(sockets.map((s) => s.id).sort(), [sa.id, sb.id].sort())
  const remote = sockets.find((s) => s.id === sb.id)
  assert.ok(remote.rooms.has('room'))
  assert.equal(remote.handshake.auth && typeof remote.handshake.auth, 'object')
  const direct = once(b, 'direct')
  remote.emit('direct', 1)
  assert.deepEqual(await direct, [1])

  // serverSideEmit with acks, both ways.
  theirs.on('ping', (n, ack) => ack(n + 1))
  ours.on('ping', (n, ack) => ack(n + 2))
  assert.deepEqual(await ours.serverSideEmitWithAck('ping', 1), [2])
  assert.deepEqual(await theirs.serverSideEmitWithAck('ping', 1), [3])

  // Operators from the other node reach our sockets.
  await theirs.in(sa.id).socketsJoin('joined-remotely')
  await sleep(200)
  assert.ok(sa.rooms.has('joined-remotely'))
  const gone = once(sa, 'disconnect')
  theirs.in('joined-remotely').disconnectSockets()
  assert.deepEqual(await gone, ['server namespace disconnect'])
})
