// Scale-out on Redis (#12): `createRedisAdapter`, whose connections and
// broadcasts live in Rust, in one fleet with a real socket.io 4.8 node on
// @socket.io/redis-adapter 8 (redis 4 clients) and with
// @socket.io/redis-emitter 5, over a real redis-server started here; the
// real socket.io-client on each node.
import { test, before, after } from 'node:test'
import { spawn } from 'node:child_process'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { io as ioc } from 'socket.io-client'
import { createClient } from 'redis'
import { createAdapter } from '@socket.io/redis-adapter'
import { Emitter } from '@socket.io/redis-emitter'
import { wsClient, connected } from './helpers/sio.mjs'
import { startRedis, startRedisOn, startRedisTls, freePort } from './helpers/redis.mjs'
import { once, sleep, until, requestsBothWays, acksBothWays } from './helpers/fleet.mjs'

const require = createRequire(import.meta.url)
const { Server, createRedisAdapter } = require('..')
const { Server: SocketIoServer } = require('socket.io')

// One redis-server for the file (the restart test starts its own), stopped
// after every test's clients have quit while it still answers.
let sharedUrl
const stopShared = []
before(async () => { sharedUrl = await startRedis({ after: (fn) => stopShared.push(fn) }) })
after(() => { for (const fn of stopShared) fn() })
const startShared = async () => sharedUrl
// Each test's own channels on the shared server (nodes of one test never
// count those of another).
const keyOf = (t) => 'socket.io-' + [...t.name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7).toString(36)


const client = wsClient

/** A ferrosocket node on `url`, connected to Redis. */
async function ferroNode (t, url, opts = {}, serverOpts = {}) {
  const io = new Server({ ...serverOpts, adapter: createRedisAdapter({ url, key: keyOf(t), requestsTimeout: 2000, ...opts }) })
  io.listen(0)
  t.after(() => io.close())
  if (io.of('/').adapter.state !== 'connected') await once(io.of('/').adapter, 'state')
  assert.equal(io.of('/').adapter.state, 'connected')
  return io
}

/** A socket.io 4.8 node with @socket.io/redis-adapter on `url`. */
async function socketIoNode (t, url) {
  const pub = createClient({ url })
  const sub = pub.duplicate()
  pub.on('error', () => {})
  sub.on('error', () => {})
  await Promise.all([pub.connect(), sub.connect()])
  const io = new SocketIoServer({ adapter: createAdapter(pub, sub, { key: keyOf(t), requestsTimeout: 2000 }) })
  io.listen(0)
  t.after(async () => {
    await new Promise((resolve) => io.close(() => resolve()))
    await Promise.allSettled([pub.quit(), sub.quit()])
  })
  return { io, port: io.httpServer.address().port }
}

/** Both nodes see each other (PUBSUB NUMSUB of the request channel). */
async function fleetOf (n, ...ios) {
  await until(async () => (await Promise.all(ios.map((io) => io.of('/').adapter.serverCount()))).every((c) => c === n))
  for (const io of ios) assert.equal(await io.of('/').adapter.serverCount(), n)
}

test('mixed fleet: broadcasts cross both ways with rooms, except, the sender left out, binary and Dates; local stays local', { timeout: 30000 }, async (t) => {
  const url = await startShared()
  const ferro = await ferroNode(t, url)
  const { io: sio, port: sioPort } = await socketIoNode(t, url)
  await fleetOf(2, ferro, sio)
  const a = client(t, ferro.port)
  const sa = await connected(ferro, a)
  const a2 = client(t, ferro.port)
  const sa2 = await connected(ferro, a2)
  const b = client(t, sioPort)
  const sb = await connected(sio, b)
  sa.join('red')
  sb.join(['red', 'blue'])
  const got = []
  for (const [name, c] of [['a', a], ['a2', a2], ['b', b]]) c.onAny((ev, ...args) => got.push([name, ev, ...args]))

  ferro.to('red').emit('red-from-ferro', 1, { bin: Buffer.from([1, 2, 3]) })
  sio.to('red').except('blue').emit('red-not-blue-from-sio', new Date(0))
  sa.broadcast.emit('not-sa', 'x')
  sb.to('red').emit('to-red-from-sb')
  ferro.local.emit('local-only')
  // Volatile: dropped for a socket whose transport is still writing (as
  // socket.io does), so sent once the burst above is out.
  await sleep(200)
  sio.volatile.emit('volatile-from-sio', 2)
  await until(() => got.length >= 11)
  await sleep(100)
  // Local deliveries and those through Redis interleave: compared by content.
  const seen = (who) => got.filter((g) => g[0] === who).map((g) => g.slice(1)).sort((x, y) => x[0].localeCompare(y[0]))
  const sorted = (list) => list.sort((x, y) => x[0].localeCompare(y[0]))
  assert.deepEqual(seen('a'), sorted([
    ['red-from-ferro', 1, { bin: Buffer.from([1, 2, 3]) }],
    ['red-not-blue-from-sio', '1970-01-01T00:00:00.000Z'],
    ['to-red-from-sb'],
    ['local-only'],
    ['volatile-from-sio', 2]
  ]))
  assert.deepEqual(seen('a2'), sorted([['not-sa', 'x'], ['local-only'], ['volatile-from-sio', 2]]))
  assert.deepEqual(seen('b'), sorted([['red-from-ferro', 1, { bin: Buffer.from([1, 2, 3]) }], ['not-sa', 'x'], ['volatile-from-sio', 2]]))
  void sa2
})

test('mixed fleet: fetchSockets, RemoteSocket, socketsJoin/Leave, disconnectSockets and allRooms across nodes, both ways', { timeout: 30000 }, async (t) => {
  const url = await startShared()
  const ferro = await ferroNode(t, url)
  const { io: sio, port: sioPort } = await socketIoNode(t, url)
  await fleetOf(2, ferro, sio)
  await requestsBothWays(t, ferro, sio, sioPort, async ({ sa, sb, remoteB }) => {
    remoteB.join('joined-remotely')
    await until(() => sb.rooms.has('joined-remotely'))
    assert.ok(sb.rooms.has('joined-remotely'))
    // The classic protocol asks every node for these.
    assert.ok((await ferro.of('/').adapter.allRooms()).has('joined-remotely'))
    assert.deepEqual((await ferro.allSockets()), new Set([sa.id, sb.id]))
  })
})

test('mixed fleet: serverSideEmit with and without acks, and broadcasts with acks counted across nodes, both ways', { timeout: 30000 }, async (t) => {
  const url = await startShared()
  const ferro = await ferroNode(t, url)
  const { io: sio, port: sioPort } = await socketIoNode(t, url)
  await fleetOf(2, ferro, sio)
  await acksBothWays(t, ferro, sio, sioPort)
  // A client that never answers: socket.io's error, with the answers that came.
  const c = client(t, ferro.port)
  await connected(ferro, c)
  const err = await ferro.timeout(300).emitWithAck('question', 5).catch((e) => e)
  assert.equal(err.message, 'operation has timed out')
  assert.deepEqual(err.responses.sort(), ['a:5', 'b:5'])
})

test('@socket.io/redis-emitter reaches ferrosocket\'s clients: rooms, binary, joins and serverSideEmit', { timeout: 30000 }, async (t) => {
  const url = await startShared()
  const ferro = await ferroNode(t, url)
  const a = client(t, ferro.port)
  const sa = await connected(ferro, a)
  const b = client(t, ferro.port)
  await connected(ferro, b)
  sa.join('news')
  const redis = createClient({ url })
  await redis.connect()
  t.after(() => redis.quit())
  const emitter = new Emitter(redis, { key: keyOf(t) })
  const got = []
  for (const [name, c] of [['a', a], ['b', b]]) c.onAny((ev, ...args) => got.push([name, ev, ...args]))
  emitter.to('news').emit('headline', { bin: Buffer.from([7]) }, new Date(1000))
  emitter.except('news').emit('not-news')
  await until(() => got.length >= 2)
  assert.deepEqual(got, [['a', 'headline', { bin: Buffer.from([7]) }, '1970-01-01T00:00:01.000Z'], ['b', 'not-news']])
  emitter.socketsJoin('all-of-them')
  await until(() => sa.rooms.has('all-of-them'))
  assert.ok(sa.rooms.has('all-of-them'))
  const heard = once(ferro, 'from-emitter')
  emitter.serverSideEmit('from-emitter', 42)
  assert.deepEqual(await heard, [42])
})

test('two ferrosocket nodes: broadcasts and requests between them; a namespace made later joins the fleet', { timeout: 30000 }, async (t) => {
  const url = await startShared()
  const one = await ferroNode(t, url)
  const two = await ferroNode(t, url)
  await fleetOf(2, one, two)
  const a = client(t, one.port)
  const sa = await connected(one, a)
  const b = client(t, two.port)
  await connected(two, b)
  const fromOne = once(b, 'hi')
  one.emit('hi', 'from one')
  assert.deepEqual(await fromOne, ['from one'])
  assert.deepEqual((await two.fetchSockets()).length, 2)
  // A namespace made after the link is up subscribes too.
  const ca = ioc(`http://127.0.0.1:${one.port}/chat`, { transports: ['websocket'], reconnection: false, forceNew: true })
  t.after(() => ca.close())
  one.of('/chat')
  const cb = ioc(`http://127.0.0.1:${two.port}/chat`, { transports: ['websocket'], reconnection: false, forceNew: true })
  t.after(() => cb.close())
  two.of('/chat')
  await Promise.all([once(ca, 'connect'), once(cb, 'connect')])
  await until(async () => (await one.of('/chat').adapter.serverCount()) === 2)
  const chat = once(ca, 'msg')
  two.of('/chat').emit('msg', 'in chat')
  assert.deepEqual(await chat, ['in chat'])
  void sa
})

test('dynamic namespaces cross nodes: a parent\'s broadcast reaches its children\'s sockets on the other node', { timeout: 30000 }, async (t) => {
  const url = await startShared()
  const one = await ferroNode(t, url)
  const two = await ferroNode(t, url)
  // One parent per node (each io.of(regex) call makes a new parent, as in socket.io).
  const [parent] = [one, two].map((io) => io.of(/^\/dyn-\d+$/))
  await fleetOf(2, one, two)
  const a = ioc(`http://127.0.0.1:${one.port}/dyn-1`, { transports: ['websocket'], reconnection: false, forceNew: true })
  const b = ioc(`http://127.0.0.1:${two.port}/dyn-1`, { transports: ['websocket'], reconnection: false, forceNew: true })
  t.after(() => { a.close(); b.close() })
  await Promise.all([once(a, 'connect'), once(b, 'connect')])
  await until(async () => (await two.of('/dyn-1').adapter.serverCount()) === 2)
  const got = Promise.all([once(a, 'from-parent'), once(b, 'from-parent')])
  parent.emit('from-parent', 7)
  assert.deepEqual(await got, [[7], [7]])
  assert.equal((await one.of('/dyn-1').fetchSockets()).length, 2)
})

test('Redis restarts: the state is reported, local delivery goes on, cross-node calls fail fast, and the link resubscribes by itself', { timeout: 60000 }, async (t) => {
  const port = await freePort()
  let redis = await startRedisOn(t, port)
  const one = await ferroNode(t, redis.url)
  const two = await ferroNode(t, redis.url)
  await fleetOf(2, one, two)
  const a = client(t, one.port)
  const sa = await connected(one, a)
  const a2 = client(t, one.port)
  await connected(one, a2)
  const b = client(t, two.port)
  await connected(two, b)
  const states = []
  one.of('/').adapter.on('state', (s) => states.push(s))

  await redis.stop()
  await until(() => one.of('/').adapter.state === 'disconnected')
  assert.equal(one.of('/').adapter.state, 'disconnected')
  // Local delivery continues; what cannot cross is dropped and counted.
  const local = once(a2, 'during')
  sa.broadcast.emit('during', 'outage')
  assert.deepEqual(await local, ['outage'])
  assert.ok(one.of('/').adapter.stats.droppedPublishes >= 1)
  const started = Date.now()
  await assert.rejects(one.fetchSockets(), (e) => e.message === 'timeout reached while waiting for fetchSockets response' &&
    e.code === 'FERROSOCKET_REDIS_DOWN' && /Redis is disconnected/.test(e.cause.message))
  const acked = await one.timeout(5000).emitWithAck('anyone').catch((e) => e)
  assert.equal(acked.code, 'FERROSOCKET_REDIS_DOWN')
  assert.ok(Date.now() - started < 1000, 'fails fast, not after requestsTimeout')

  redis = await startRedisOn(t, port)
  await until(() => one.of('/').adapter.state === 'connected' && two.of('/').adapter.state === 'connected')
  assert.deepEqual(states.slice(0, 2), ['disconnected', 'connected'])
  await fleetOf(2, one, two)
  const after = once(b, 'after')
  one.emit('after', 'restart')
  assert.deepEqual(await after, ['restart'])
})

test('two processes share one port (reusePort) with Redis between them: clients land on both, a broadcast from one reaches all', { timeout: 30000 }, async (t) => {
  const url = await startShared()
  const key = keyOf(t)
  const port = await freePort()
  const node = (who) => `
    const { Server, createRedisAdapter } = require(${JSON.stringify(require.resolve('..'))})
    const io = new Server(${port}, { reusePort: true, adapter: createRedisAdapter({ url: ${JSON.stringify(url)}, key: ${JSON.stringify(key)} }) })
    io.on('connection', (s) => s.on('whoami', (cb) => cb(${JSON.stringify(who)})))
    io.of('/').adapter.on('state', (s) => { if (s === 'connected') console.log('ready') })
    process.stdin.on('end', () => { io.close(); process.exit(0) })
    process.stdin.resume()`
  // The other process, and this one: both on `port`.
  const child = spawn(process.execPath, ['-e', node('child')], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.after(() => child.stdin.end())
  await new Promise((resolve) => child.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve() }))
  const here = new Server(port, { reusePort: true, adapter: createRedisAdapter({ url, key }) })
  t.after(() => here.close())
  here.on('connection', (s) => s.on('whoami', (cb) => cb('parent')))
  if (here.of('/').adapter.state !== 'connected') await once(here.of('/').adapter, 'state')
  await fleetOf(2, here)
  const clients = []
  for (let i = 0; i < 30; i++) {
    const c = client(t, port)
    await once(c, 'connect')
    clients.push(c)
  }
  const who = await Promise.all(clients.map((c) => c.emitWithAck('whoami')))
  assert.deepEqual([...new Set(who)].sort(), ['child', 'parent'], 'connections are spread over both processes')
  const all = Promise.all(clients.map((c) => once(c, 'all')))
  here.emit('all', 'from the parent')
  assert.deepEqual((await all).map(([m]) => m), Array(30).fill('from the parent'))
})

test('a node started while Redis is down connects when it comes, and its subscriptions hold', { timeout: 40000 }, async (t) => {
  const port = await freePort()
  const url = `redis://127.0.0.1:${port}`
  const io = new Server({ adapter: createRedisAdapter({ url, key: keyOf(t) }) })
  io.listen(0)
  t.after(() => io.close())
  await sleep(500)
  assert.notEqual(io.of('/').adapter.state, 'connected')
  await startRedisOn(t, port)
  await until(() => io.of('/').adapter.state === 'connected')
  assert.equal(io.of('/').adapter.state, 'connected')
  const other = await ferroNode(t, url)
  await fleetOf(2, io, other)
  const c = client(t, io.port)
  await connected(io, c)
  const got = once(c, 'late')
  other.emit('late', 'but here')
  assert.deepEqual(await got, ['but here'])
})

test('io.close() then listen again: the namespaces\' adapters link through the new handle', { timeout: 30000 }, async (t) => {
  const url = await startShared()
  const one = await ferroNode(t, url)
  const two = await ferroNode(t, url)
  await fleetOf(2, one, two)
  await one.close()
  assert.equal(one.of('/').adapter.state, 'closed')
  one.listen(0)
  await until(() => one.of('/').adapter.state === 'connected')
  await fleetOf(2, one, two)
  const c = client(t, one.port)
  await connected(one, c)
  const got = once(c, 'again')
  two.emit('again', 1)
  assert.deepEqual(await got, [1])
})

test('own cross-node operations are not applied twice; an emptied child namespace leaves Redis (cleanupEmptyChildNamespaces)', { timeout: 30000 }, async (t) => {
  const url = await startShared()
  const key = keyOf(t)
  const one = new Server({ cleanupEmptyChildNamespaces: true, adapter: createRedisAdapter({ url, key }) })
  one.listen(0)
  t.after(() => one.close())
  const two = await ferroNode(t, url)
  const parent = one.of(/^\/room-\d+$/)
  if (one.of('/').adapter.state !== 'connected') await once(one.of('/').adapter, 'state')
  await fleetOf(2, one, two)
  const a = client(t, one.port)
  const sa = await connected(one, a)
  // Joined through the operator, then left locally before the request's
  // echo comes back from Redis: stays left (the echo is not applied again).
  one.socketsJoin('brief')
  sa.leave('brief')
  await sleep(300)
  assert.ok(!sa.rooms.has('brief'))
  // A child namespace subscribes while it lives, and stops with it.
  const child = ioc(`http://127.0.0.1:${one.port}/room-1`, { transports: ['websocket'], reconnection: false, forceNew: true })
  await once(child, 'connect')
  const redis = createClient({ url })
  await redis.connect()
  t.after(() => redis.quit())
  const subscribers = async () => Number(Object.values(await redis.pubSubNumSub(`${key}-request#/room-1#`))[0])
  await until(async () => (await subscribers()) === 1)
  assert.equal(await subscribers(), 1)
  child.close()
  await until(async () => (await subscribers()) === 0)
  assert.equal(await subscribers(), 0)
  void parent
})

test('TLS to Redis (rediss://, client certificates required): a ferrosocket node and a socket.io node over TLS, broadcasts both ways; an untrusted server is reported, never connected', { timeout: 30000 }, async (t) => {
  const redis = await startRedisTls(t)
  const { ca, cert, key } = redis
  const ferro = await ferroNode(t, redis.url, { tls: { ca, cert, key } })
  const pub = createClient({ url: redis.url, socket: { tls: true, ca, cert, key } })
  const sub = pub.duplicate()
  pub.on('error', () => {})
  sub.on('error', () => {})
  await Promise.all([pub.connect(), sub.connect()])
  const sio = new SocketIoServer({ adapter: createAdapter(pub, sub, { key: keyOf(t) }) })
  sio.listen(0)
  // Closed at the end of the test, not in a hook: this test's redis-server
  // is stopped first (hooks run in the order they were added).
  await fleetOf(2, ferro, sio)
  const a = client(t, ferro.port)
  await connected(ferro, a)
  const b = client(t, sio.httpServer.address().port)
  await connected(sio, b)
  const toB = once(b, 'over-tls')
  ferro.emit('over-tls', 'from ferro')
  assert.deepEqual(await toB, ['from ferro'])
  const toA = once(a, 'over-tls')
  sio.emit('over-tls', 'from sio')
  assert.deepEqual(await toA, ['from sio'])
  await new Promise((resolve) => sio.close(() => resolve()))
  await Promise.all([pub.quit(), sub.quit()])

  // The system's CAs do not know this server's: never connected, and why is said.
  const untrusting = new Server({ adapter: createRedisAdapter({ url: redis.url, key: keyOf(t) }) })
  untrusting.listen(0)
  t.after(() => untrusting.close())
  const [state, error] = await once(untrusting.of('/').adapter, 'state')
  assert.notEqual(state, 'connected')
  assert.match(String(error), /UnknownIssuer/)
  await sleep(300)
  assert.notEqual(untrusting.of('/').adapter.state, 'connected')
  // rejectUnauthorized: false (as Node's) takes the server's certificate as it is.
  const trusting = await ferroNode(t, redis.url, { tls: { rejectUnauthorized: false, cert, key } })
  assert.equal(trusting.of('/').adapter.state, 'connected')
})

test('a recovered session does not end the Redis adapter: a cross-node request in flight still gets its answer', { timeout: 30000 }, async (t) => {
  const url = await startShared()
  const one = await ferroNode(t, url, {}, { connectionStateRecovery: {} })
  const two = await ferroNode(t, url)
  await fleetOf(2, one, two)
  two.on('slow', (cb) => setTimeout(() => cb('answered'), 300))
  const c = client(t, one.port, { reconnection: false })
  const socket = await connected(one, c)
  // An event first: the client needs an offset to come back with.
  const first = once(c, 'before')
  one.local.emit('before')
  await first
  const gone = once(socket, 'disconnect')
  c.io.engine.close()
  await gone
  const pending = one.serverSideEmitWithAck('slow')
  // The session kept for the dropped client is restored (and forgotten)
  // while the request waits.
  c.connect()
  const [again] = await once(one, 'connection')
  assert.equal(again.recovered, true)
  assert.deepEqual(await pending, ['answered'])
  assert.equal(one.of('/').adapter.state, 'connected')
})

test('createRedisAdapter refuses wrong options at construction, in the user\'s terms', () => {
  assert.throws(() => createRedisAdapter({ url: 'http://x' }), /"url" must be a redis:\/\/ URL/)
  assert.throws(() => createRedisAdapter({ requestsTimeout: -1 }), /"requestsTimeout" must be a positive number/)
  assert.throws(() => createRedisAdapter({ keyy: 'x' }), /unknown option "keyy"/)
  assert.throws(() => createRedisAdapter('redis://x'), /takes an object/)
  assert.throws(() => createRedisAdapter({ url: 'redis://x', tls: { ca: 'x' } }), /"tls" must be given only with a rediss:\/\/ URL/)
  assert.throws(() => createRedisAdapter({ url: 'rediss://x', tls: { cert: 'x' } }), /cert and key together/)
  assert.throws(() => createRedisAdapter({ url: 'rediss://x', tls: { ca: 5 } }), /"tls"\.ca must be PEM text/)
  assert.throws(() => createRedisAdapter({ url: 'rediss://x', tls: { passphrase: 'x' } }), /one of ca, cert, key/)
  assert.throws(() => createRedisAdapter({ url: 'redis://x/mydb' }), /database number/)
  assert.throws(() => createRedisAdapter({ url: 'redis://x:70000' }), /redis:\/\/ URL/)
})
