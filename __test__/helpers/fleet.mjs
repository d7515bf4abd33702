// Shared by the Redis specs (classic and sharded protocols): what a mixed
// fleet must do whichever protocol carries it, checked between a
// ferrosocket node and a socket.io 4.8 node already counting each other.
import assert from 'node:assert/strict'
import { wsClient as client, connected } from './sio.mjs'

export const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits (up to 5 s) for `cond`; the assertion after it says what failed. */
export async function until (cond) {
  for (let i = 0; i < 250 && !(await cond()); i++) await sleep(20)
}

/**
 * fetchSockets (data, rooms, handshake), a RemoteSocket's emit, then
 * `more` (the protocol's own checks, given both sockets), socketsJoin/
 * socketsLeave, and disconnectSockets, each way.
 */
export async function requestsBothWays (t, ferro, sio, sioPort, more = async () => {}) {
  const a = client(t, ferro.port, { auth: { who: 'a' } })
  const sa = await connected(ferro, a)
  const b = client(t, sioPort)
  const sb = await connected(sio, b)
  sa.data.who = 'ferro-socket'
  sb.data.who = 'sio-socket'
  sa.join('red')

  const fromSio = await sio.fetchSockets()
  assert.deepEqual(fromSio.map((s) => s.id).sort(), [sa.id, sb.id].sort())
  const remoteA = fromSio.find((s) => s.id === sa.id)
  assert.deepEqual(remoteA.data, { who: 'ferro-socket' })
  assert.deepEqual([...remoteA.rooms].sort(), [sa.id, 'red'].sort())
  assert.deepEqual(remoteA.handshake.auth, { who: 'a' })
  assert.equal(remoteA.handshake.query.EIO, '4')

  const fromFerro = await ferro.in(sb.id).fetchSockets()
  assert.equal(fromFerro.length, 1)
  assert.deepEqual(fromFerro[0].data, { who: 'sio-socket' })
  // A RemoteSocket's methods act on the node that holds the socket.
  const gotOnB = once(b, 'direct')
  fromFerro[0].emit('direct', 'hello b')
  assert.deepEqual(await gotOnB, ['hello b'])
  await more({ sa, sb, remoteB: fromFerro[0] })

  ferro.socketsJoin('everyone')
  sio.in('red').socketsJoin('red-too')
  await until(() => sb.rooms.has('everyone') && sa.rooms.has('red-too'))
  assert.ok(sa.rooms.has('everyone') && sb.rooms.has('everyone'))
  assert.ok(sa.rooms.has('red-too') && !sb.rooms.has('red-too'))
  sio.socketsLeave('everyone')
  await until(() => !sa.rooms.has('everyone'))
  assert.ok(!sa.rooms.has('everyone') && !sb.rooms.has('everyone'))

  const gone = once(b, 'disconnect')
  ferro.in(sb.id).disconnectSockets(true)
  assert.equal((await gone)[0], 'io server disconnect')
  const goneA = once(a, 'disconnect')
  sio.disconnectSockets()
  assert.equal((await goneA)[0], 'io server disconnect')
}

/**
 * serverSideEmit with and without acks, and broadcasts with acks (binary
 * answers included) counted across both nodes, each way. Returns the two
 * clients for the protocol's own checks.
 */
export async function acksBothWays (t, ferro, sio, sioPort) {
  const a = client(t, ferro.port)
  await connected(ferro, a)
  const b = client(t, sioPort)
  await connected(sio, b)
  a.on('question', (n, cb) => cb(`a:${n}`))
  b.on('question', (n, cb) => cb(`b:${n}`))
  ferro.on('ping-nodes', (x, cb) => cb(`ferro:${x}`))
  sio.on('ping-nodes', (x, cb) => cb(`sio:${x}`))
  const heard = []
  ferro.on('note', (x) => heard.push(['ferro', x]))
  sio.on('note', (x) => heard.push(['sio', x]))

  assert.deepEqual(await ferro.serverSideEmitWithAck('ping-nodes', 1), ['sio:1'])
  assert.deepEqual(await sio.serverSideEmitWithAck('ping-nodes', 2), ['ferro:2'])
  ferro.serverSideEmit('note', 'from ferro')
  sio.serverSideEmit('note', 'from sio')
  await until(() => heard.length >= 2)
  assert.deepEqual(heard.sort(), [['ferro', 'from sio'], ['sio', 'from ferro']])

  assert.deepEqual((await ferro.timeout(2000).emitWithAck('question', 3)).sort(), ['a:3', 'b:3'])
  assert.deepEqual((await sio.timeout(2000).emitWithAck('question', 4)).sort(), ['a:4', 'b:4'])
  // A binary answer survives the trip back.
  a.on('bin', (cb) => cb(Buffer.from([9, 9])))
  b.on('bin', (cb) => cb(Buffer.from([8])))
  const bins = await ferro.timeout(2000).emitWithAck('bin')
  assert.deepEqual(bins.map((x) => [...x]).sort(), [[8], [9, 9]])
  return { a, b }
}
