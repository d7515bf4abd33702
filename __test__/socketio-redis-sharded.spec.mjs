// Scale-out on Redis, the sharded protocol (#12): `createRedisAdapter({
// sharded })` in one fleet with a real socket.io 4.8 node on
// @socket.io/redis-adapter 8's `createShardedAdapter` (redis 4 cluster
// clients), over a real 3-node Redis cluster (sharded pub/sub, Redis 7)
// started here on loopback; the real socket.io-client on each node.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { createCluster, createClient } from 'redis'
import { createShardedAdapter } from '@socket.io/redis-adapter'
import { wsClient as client, connected } from './helpers/sio.mjs'
import { startRedisCluster, startRedis, startRedisOn, freePort } from './helpers/redis.mjs'
import { once, sleep, until, requestsBothWays, acksBothWays } from './helpers/fleet.mjs'

const require = createRequire(import.meta.url)
const { Server, createRedisAdapter } = require('..')
const { Server: SocketIoServer } = require('socket.io')

// One cluster for the file, stopped after every test's clients have quit.
let cluster
const stopCluster = []
before(async () => { cluster = await startRedisCluster({ after: (fn) => stopCluster.push(fn) }) })
after(() => { for (const fn of stopCluster.reverse()) fn() })
// Each test's own channels (nodes of one test never count those of another).
const prefixOf = (t) => 'sharded-' + [...t.name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7).toString(36)


/** A ferrosocket node on the cluster, connected. */
async function ferroNode (t, subscriptionMode = 'dynamic', url = cluster.url) {
  const io = new Server({ adapter: createRedisAdapter({ url, channelPrefix: prefixOf(t), requestsTimeout: 2000, sharded: { subscriptionMode } }) })
  io.listen(0)
  t.after(() => io.close())
  if (io.of('/').adapter.state !== 'connected') await once(io.of('/').adapter, 'state')
  assert.equal(io.of('/').adapter.state, 'connected')
  return io
}

/** A socket.io 4.8 node with createShardedAdapter on redis 4 cluster clients. */
async function socketIoNode (t, subscriptionMode = 'dynamic') {
  const pub = createCluster({ rootNodes: cluster.ports.map((p) => ({ url: `redis://127.0.0.1:${p}` })) })
  const sub = pub.duplicate()
  pub.on('error', () => {})
  sub.on('error', () => {})
  await Promise.all([pub.connect(), sub.connect()])
  const io = new SocketIoServer({ adapter: createShardedAdapter(pub, sub, { channelPrefix: prefixOf(t), subscriptionMode }) })
  io.listen(0)
  t.after(async () => {
    await new Promise((resolve) => io.close(() => resolve()))
    await Promise.allSettled([pub.quit(), sub.quit()])
  })
  return { io, port: io.httpServer.address().port }
}

/** Every node counts `n` servers (PUBSUB SHARDNUMSUB of the namespace's channel). */
async function fleetOf (n, ...ios) {
  await until(async () => (await Promise.all(ios.map((io) => io.of('/').adapter.serverCount()))).every((c) => c === n))
  for (const io of ios) assert.equal(await io.of('/').adapter.serverCount(), n)
}

test('sharded mixed fleet on a cluster: broadcasts cross both ways with rooms, except, the sender left out, binary and Dates', { timeout: 30000 }, async (t) => {
  const ferro = await ferroNode(t)
  const { io: sio, port: sioPort } = await socketIoNode(t)
  await fleetOf(2, ferro, sio)
  const a = client(t, ferro.port)
  const sa = await connected(ferro, a)
  const a2 = client(t, ferro.port)
  await connected(ferro, a2)
  const b = client(t, sioPort)
  const sb = await connected(sio, b)
  sa.join('red')
  sb.join(['red', 'blue'])
  // The room channels are subscribed before anything is sent to them.
  await sleep(200)
  const got = []
  for (const [name, c] of [['a', a], ['a2', a2], ['b', b]]) c.onAny((ev, ...args) => got.push([name, ev, ...args]))

  ferro.to('red').emit('red-from-ferro', 1, { bin: Buffer.from([1, 2, 3]) })
  sio.to('red').emit('red-from-sio', new Date(0))
  sio.to('red').except('blue').emit('red-not-blue-from-sio')
  ferro.except('red').emit('not-red-from-ferro', 'x')
  sa.broadcast.emit('not-sa', 'y')
  sb.to('red').emit('to-red-from-sb', { bin: Buffer.from([4]) })
  ferro.local.emit('local-only')
  await until(() => got.length >= 11)
  await sleep(100)
  const seen = (who) => got.filter((g) => g[0] === who).map((g) => g.slice(1)).sort((x, y) => x[0].localeCompare(y[0]))
  const sorted = (list) => list.sort((x, y) => x[0].localeCompare(y[0]))
  assert.deepEqual(seen('a'), sorted([
    ['red-from-ferro', 1, { bin: Buffer.from([1, 2, 3]) }],
    ['red-from-sio', '1970-01-01T00:00:00.000Z'],
    ['red-not-blue-from-sio'],
    ['to-red-from-sb', { bin: Buffer.from([4]) }],
    ['local-only']
  ]))
  assert.deepEqual(seen('a2'), sorted([['not-red-from-ferro', 'x'], ['not-sa', 'y'], ['local-only']]))
  assert.deepEqual(seen('b'), sorted([['red-from-ferro', 1, { bin: Buffer.from([1, 2, 3]) }], ['not-sa', 'y'], ['red-from-sio', '1970-01-01T00:00:00.000Z']]))
})

test('sharded dynamic mode: a broadcast to one room reaches only the nodes holding it (room channels follow the rooms)', { timeout: 30000 }, async (t) => {
  const one = await ferroNode(t)
  const two = await ferroNode(t)
  const three = await ferroNode(t)
  await fleetOf(3, one, two, three)
  const a = client(t, one.port)
  await connected(one, a)
  const b = client(t, two.port)
  const sb = await connected(two, b)
  // Left and joined again at once: the subscription changes reach Redis
  // in order, so the room's channel ends subscribed.
  sb.join('quiet-room')
  sb.leave('quiet-room')
  sb.join('quiet-room')
  await sleep(200)
  const before = three.of('/').adapter.stats.received
  const published = one.of('/').adapter.stats.published
  const got = once(b, 'hush')
  for (let i = 0; i < 20; i++) one.to('quiet-room').emit('hush', i)
  assert.deepEqual(await got, [0])
  await sleep(200)
  // Published by one, and the third node, which holds no member of the
  // room, received none of it.
  assert.equal(one.of('/').adapter.stats.published, published + 20)
  assert.equal(three.of('/').adapter.stats.received, before)
  // Once the room is empty on two, its channel is dropped there too.
  sb.leave('quiet-room')
  await sleep(200)
  const twoBefore = two.of('/').adapter.stats.received
  one.to('quiet-room').emit('hush', 'again')
  await sleep(300)
  assert.equal(two.of('/').adapter.stats.received, twoBefore)
  // A broadcast to everyone still reaches every node.
  const all = once(b, 'all')
  one.emit('all', 1)
  assert.deepEqual(await all, [1])
})

test('sharded mixed fleet: fetchSockets, RemoteSocket, socketsJoin/Leave and disconnectSockets across nodes, both ways', { timeout: 30000 }, async (t) => {
  const ferro = await ferroNode(t)
  const { io: sio, port: sioPort } = await socketIoNode(t)
  await fleetOf(2, ferro, sio)
  await requestsBothWays(t, ferro, sio, sioPort, async ({ sa, sb }) => {
    // As socket.io's ClusterAdapter: these answer for this node only.
    assert.deepEqual((await ferro.allSockets()), new Set([sa.id]))
    assert.ok(!(await ferro.of('/').adapter.allRooms()).has(sb.id))
  })
})

test('sharded mixed fleet: serverSideEmit with and without acks, broadcasts with acks counted across nodes, both ways', { timeout: 30000 }, async (t) => {
  const ferro = await ferroNode(t)
  const { io: sio, port: sioPort } = await socketIoNode(t)
  await fleetOf(2, ferro, sio)
  await acksBothWays(t, ferro, sio, sioPort)
  // A node that does not answer: ClusterAdapter's message.
  sio.removeAllListeners('ping-nodes')
  sio.on('ping-nodes', () => {})
  const err = await ferro.serverSideEmitWithAck('ping-nodes', 5).catch((e) => e)
  assert.equal(err.message, 'timeout reached: only 0 responses received out of 1')
})

test('sharded dynamic-private mode: a message to one socket id crosses on that socket\'s own channel', { timeout: 30000 }, async (t) => {
  const ferro = await ferroNode(t, 'dynamic-private')
  const { io: sio, port: sioPort } = await socketIoNode(t, 'dynamic-private')
  await fleetOf(2, ferro, sio)
  const a = client(t, ferro.port)
  const sa = await connected(ferro, a)
  const b = client(t, sioPort)
  const sb = await connected(sio, b)
  await sleep(200)
  // Each node subscribes its own sockets' channels (SHARDNUMSUB 1 each).
  const redis = createCluster({ rootNodes: cluster.ports.map((p) => ({ url: `redis://127.0.0.1:${p}` })) })
  await redis.connect()
  const subscribers = async (id) => {
    const channel = `${prefixOf(t)}#/#${id}#`
    let total = 0
    for (const m of redis.masters) total += Number((await (await redis.nodeClient(m)).sendCommand(['PUBSUB', 'SHARDNUMSUB', channel]))[1])
    return total
  }
  assert.deepEqual([await subscribers(sa.id), await subscribers(sb.id)], [1, 1])
  await redis.quit()
  const toB = once(b, 'dm')
  ferro.to(sb.id).emit('dm', 'to b')
  assert.deepEqual(await toB, ['to b'])
  const toA = once(a, 'dm')
  sio.to(sa.id).emit('dm', 'to a')
  assert.deepEqual(await toA, ['to a'])
})

test('sharded static mode on a single Redis 7: two ferrosocket nodes, broadcasts and requests', { timeout: 30000 }, async (t) => {
  const url = await startRedis(t)
  const one = await ferroNode(t, 'static', url)
  const two = await ferroNode(t, 'static', url)
  await fleetOf(2, one, two)
  const a = client(t, one.port)
  await connected(one, a)
  const b = client(t, two.port)
  const sb = await connected(two, b)
  sb.join('r')
  const got = once(b, 'hi')
  one.to('r').emit('hi', 'static')
  assert.deepEqual(await got, ['static'])
  assert.equal((await one.fetchSockets()).length, 2)
  // Static mode has no room channels: only the two per namespace.
  // Quit here: this test's redis-server is stopped before later hooks run.
  const redis = createClient({ url })
  await redis.connect()
  const channels = (await redis.sendCommand(['PUBSUB', 'SHARDCHANNELS', `${prefixOf(t)}#*`])).sort()
  await redis.quit()
  assert.equal(channels.length, 3, `the namespace channel and one response channel per node: ${channels}`)
})

test('sharded, Redis restarts: the link subscribes again to the namespace\'s and the rooms\' channels by itself', { timeout: 60000 }, async (t) => {
  const port = await freePort()
  let redis = await startRedisOn(t, port)
  const one = await ferroNode(t, 'dynamic', redis.url)
  const two = await ferroNode(t, 'dynamic', redis.url)
  await fleetOf(2, one, two)
  const b = client(t, two.port)
  const sb = await connected(two, b)
  sb.join('kept')
  await redis.stop()
  await until(() => one.of('/').adapter.state === 'disconnected' && two.of('/').adapter.state === 'disconnected')
  redis = await startRedisOn(t, port)
  await until(() => one.of('/').adapter.state === 'connected' && two.of('/').adapter.state === 'connected')
  await fleetOf(2, one, two)
  await sleep(200)
  const got = once(b, 'back')
  one.to('kept').emit('back', 'on the room channel')
  assert.deepEqual(await got, ['on the room channel'])
})

test('the classic protocol on a Redis cluster: nodes are counted over every primary, broadcasts and requests cross', { timeout: 30000 }, async (t) => {
  const node = async () => {
    const io = new Server({ adapter: createRedisAdapter({ url: cluster.url, key: prefixOf(t), requestsTimeout: 2000 }) })
    io.listen(0)
    t.after(() => io.close())
    if (io.of('/').adapter.state !== 'connected') await once(io.of('/').adapter, 'state')
    return io
  }
  const one = await node()
  const two = await node()
  // Each node's subscriber sits on some primary; PUBSUB NUMSUB counts only
  // a node's own clients, so the count is right only if summed.
  await fleetOf(2, one, two)
  const b = client(t, two.port)
  const sb = await connected(two, b)
  sb.join('r')
  const got = once(b, 'hi')
  one.to('r').emit('hi', 'classic on a cluster')
  assert.deepEqual(await got, ['classic on a cluster'])
  assert.deepEqual((await one.fetchSockets()).map((s) => s.id), [sb.id])
})

test('createRedisAdapter({ sharded }) refuses wrong options at construction', () => {
  assert.throws(() => createRedisAdapter({ sharded: { subscriptionMode: 'lazy' } }), /"sharded.subscriptionMode" must be one of dynamic, static, dynamic-private/)
  assert.throws(() => createRedisAdapter({ sharded: 'yes' }), /"sharded" must be false, true or \{ subscriptionMode \}/)
  assert.throws(() => createRedisAdapter({ sharded: { mode: 'static' } }), /unknown "sharded" option "mode"/)
  assert.throws(() => createRedisAdapter({ key: 'a', channelPrefix: 'b' }), /name the same prefix/)
  assert.throws(() => createRedisAdapter({ url: 'redis-cluster://h:1?x=1' }), /names other nodes only/)
  assert.doesNotThrow(() => createRedisAdapter({ url: cluster.url, sharded: true }))
})
