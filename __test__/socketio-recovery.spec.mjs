// Connection state recovery (`connectionStateRecovery`) with the real
// socket.io-client 4.8: a client that lost its connection comes back with
// its id, rooms, data and the packets it missed, as with socket.io.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { each, setup as baseSetup } from './helpers/sio.mjs'

const require = createRequire(import.meta.url)
const { Server } = require('..')

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const RECOVERY = { connectionStateRecovery: {} }
const OPTS = { timeout: 15000 }

/** `setup` with recovery on unless `opts` says otherwise. */
const setup = (t, opts = RECOVERY) => baseSetup(t, opts)

/** Every event the client receives, as [name, ...args]. */
function record (c) {
  const got = []
  c.onAny((...args) => got.push(args))
  return got
}

/** The client's connection drops (the server sees "transport close"). */
async function drop (c, socket) {
  const gone = once(socket, 'disconnect')
  c.io.engine.close()
  const [reason] = await gone
  return reason
}

async function until (cond, what) {
  for (let i = 0; i < 200 && !cond(); i++) await sleep(10)
  assert.ok(cond(), what)
}

each('a dropped client gets its id, rooms, data and the packets it missed, in order', OPTS, async (t) => {
  const { io, client } = setup(t)
  const c = client()
  const got = record(c)
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  assert.equal(socket.recovered, false)
  assert.equal(c.recovered, false)
  socket.join(['room1', 'room2'])
  socket.data.user = 'ada'
  io.emit('before')
  await until(() => got.length === 1, 'the first broadcast')
  // socket.io appends the offset to every stored event; the client keeps it.
  assert.equal(got[0][0], 'before')
  assert.equal(typeof got[0][1], 'string')
  const id = socket.id

  assert.equal(await drop(c, socket), 'transport close')
  io.emit('all', 1)
  io.to('room1').emit('room', 2)
  io.to('elsewhere').emit('not-mine', 3)
  io.except('room2').emit('not-mine-either', 4)
  socket.emit('direct', 5)
  io.emit('binary', Buffer.from([1, 2, 3]))

  c.connect()
  const [[again]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  assert.equal(again.id, id)
  assert.equal(c.id, id)
  assert.equal(again.recovered, true)
  assert.equal(c.recovered, true)
  assert.ok(again.rooms.has(id) && again.rooms.has('room1') && again.rooms.has('room2'))
  assert.deepEqual(again.data, { user: 'ada' })
  await until(() => got.length === 5, 'the missed packets')
  assert.deepEqual(got.slice(1).map((e) => e[0]), ['all', 'room', 'direct', 'binary'])
  assert.deepEqual(got[1].slice(0, 2), ['all', 1])
  assert.deepEqual(got[4][1], Buffer.from([1, 2, 3]))
  // And it is in its rooms again, under its old id.
  io.to('room2').emit('after')
  io.to(id).emit('after-direct')
  await until(() => got.length === 7, 'packets after recovery')
  assert.deepEqual(got.slice(5).map((e) => e[0]), ['after', 'after-direct'])
  assert.equal(io.of('/').sockets.get(id), again)
})

each('recovery skips the middleware by default and runs it with skipMiddlewares: false', OPTS, async (t) => {
  for (const skipMiddlewares of [undefined, false]) {
    const { io, client } = setup(t, { connectionStateRecovery: { skipMiddlewares } })
    let runs = 0
    io.use((s, next) => {
      runs++
      next()
    })
    const c = client()
    const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
    io.emit('x')
    await once(c, 'x')
    await drop(c, socket)
    c.connect()
    const [[again]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
    assert.equal(again.recovered, true)
    assert.equal(runs, skipMiddlewares === false ? 2 : 1)
  }
})

each('a socket that left on purpose, or was told to, is not kept', OPTS, async (t) => {
  const { io, client } = setup(t)
  const c = client()
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  io.emit('x')
  await once(c, 'x')
  // The client leaves ("client namespace disconnect").
  let gone = once(socket, 'disconnect')
  c.disconnect()
  assert.equal((await gone)[0], 'client namespace disconnect')
  c.connect()
  let [[next]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  assert.notEqual(next.id, socket.id)
  assert.equal(next.recovered, false)
  assert.equal(c.recovered, false)
  io.emit('y')
  await once(c, 'y')
  // The server sends it away ("server namespace disconnect").
  gone = once(c, 'disconnect')
  next.disconnect()
  await gone
  c.connect()
  const previous = next.id;
  [[next]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  assert.notEqual(next.id, previous)
  assert.equal(next.recovered, false)
})

each('volatile packets and packets with an ack are not stored', OPTS, async (t) => {
  const { io, client } = setup(t)
  const c = client()
  const got = record(c)
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  io.emit('x')
  await until(() => got.length === 1, 'first')
  await drop(c, socket)
  io.volatile.emit('volatile')
  io.timeout(50).emit('with-ack', () => {})
  socket.emit('direct-with-ack', () => {})
  io.emit('kept')
  c.connect()
  await once(c, 'connect')
  assert.equal(c.recovered, true)
  await until(() => got.length === 2, 'the stored one')
  await sleep(100)
  assert.deepEqual(got.map((e) => e[0]), ['x', 'kept'])
})

each('an unknown session, an expired one, or one whose offset was dropped starts afresh', OPTS, async (t) => {
  // Expired: maxDisconnectionDuration passed before the client came back.
  {
    const { io, client } = setup(t, { connectionStateRecovery: { maxDisconnectionDuration: 100 } })
    const c = client()
    const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
    io.emit('x')
    await once(c, 'x')
    await drop(c, socket)
    await sleep(300)
    c.connect()
    const [[again]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
    assert.notEqual(again.id, socket.id)
    assert.equal(again.recovered, false)
    assert.equal(c.recovered, false)
  }
  // Dropped: the log holds fewer bytes than the broadcasts since the offset.
  {
    const { io, client } = setup(t, { connectionStateRecovery: { maxStoredBytes: 1 } })
    const c = client()
    const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
    io.emit('x')
    await once(c, 'x')
    await drop(c, socket)
    io.emit('y')
    c.connect()
    const [[again]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
    assert.equal(again.recovered, false)
  }
  // Unknown: a client that never emitted anything has no offset to give.
  {
    const { io, client } = setup(t)
    const c = client()
    const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
    await drop(c, socket)
    c.connect()
    const [[again]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
    assert.equal(again.recovered, false, 'as socket.io: no packet received, no offset')
  }
})

test('off by default: no pid, no offset appended, nothing recovered', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t, {})
  const c = client()
  const got = record(c)
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  assert.equal(socket.pid, undefined)
  io.emit('x', 1)
  socket.emit('y', 2)
  await until(() => got.length === 2, 'two events')
  assert.deepEqual(got, [['x', 1], ['y', 2]])
  await drop(c, socket)
  c.connect()
  const [[again]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  assert.notEqual(again.id, socket.id)
  assert.equal(again.recovered, false)
})

test('connectionStateRecovery is checked at construction', () => {
  assert.throws(() => new Server({ connectionStateRecovery: 'yes' }), { name: 'TypeError', message: /"connectionStateRecovery" must be an object/ })
  assert.throws(() => new Server({ connectionStateRecovery: { maxDisconnectionDuration: -1 } }),
    { name: 'RangeError', message: /"connectionStateRecovery.maxDisconnectionDuration"/ })
  assert.throws(() => new Server({ connectionStateRecovery: { skipMiddlewares: 'no' } }),
    { name: 'TypeError', message: /"connectionStateRecovery.skipMiddlewares" must be true or false/ })
})
