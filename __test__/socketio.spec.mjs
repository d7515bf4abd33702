// The Socket.IO server with the real socket.io-client 4.8 over the WebSocket
// transport settings (default, websocket only, polling only).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { io as ioc } from 'socket.io-client'
import { runChild } from './helpers/child.mjs'
import { each, setup } from './helpers/sio.mjs'

const require = createRequire(import.meta.url)
const { Server } = require('..')

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))

each('connection: socket ids match, auth reaches handshake.auth', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const c = client('/', { auth: { token: 'abc' } })
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  assert.equal(socket.id, c.id)
  // socket.io's id shape (base64id: 15 random bytes, base64url), not the Engine.IO sid.
  assert.match(socket.id, /^[\w-]{20}$/)
  assert.notEqual(socket.id, c.io.engine.id)
  assert.deepEqual(socket.handshake.auth, { token: 'abc' })
  assert.ok(socket.connected && socket.rooms.has(socket.id))
  assert.equal(io.of('/').sockets.get(socket.id), socket)
  assert.equal(io.engine.clientsCount, 1)
})

each('events and acknowledgements in both directions', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  io.on('connection', (socket) => {
    socket.on('add', (a, b, ack) => ack(a + b))
    socket.emit('question', 'name?', (answer) => socket.emit('heard', answer))
  })
  const c = client()
  c.on('question', (q, ack) => ack(`answer to ${q}`))
  const [heard] = await once(c, 'heard')
  assert.equal(heard, 'answer to name?')
  assert.equal(await c.emitWithAck('add', 2, 3), 5)
})

each('timeout(ms).emit reports "operation has timed out" when no ack comes', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const c = client()
  c.on('ignored', () => {})
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  const [err] = await new Promise((resolve) => socket.timeout(100).emit('ignored', 1, (...a) => resolve(a)))
  assert.equal(err.message, 'operation has timed out')
})

each('middleware: next(err) gives the client connect_error with message and data', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  io.use((socket, next) => {
    if (socket.handshake.auth.token !== 'ok') return next(Object.assign(new Error('not authorized'), { data: { code: 401 } }))
    next()
  })
  const bad = client('/', { auth: { token: 'nope' } })
  const [err] = await once(bad, 'connect_error')
  assert.equal(err.message, 'not authorized')
  assert.deepEqual(err.data, { code: 401 })
  const good = client('/', { auth: { token: 'ok' } })
  await once(good, 'connect')
})

each('rooms: io.to, socket.to (skips the sender), except, socket.broadcast', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const sockets = {}
  io.on('connection', (s) => {
    const name = s.handshake.auth.name
    sockets[name] = s
    if (name !== 'c') s.join('red')
    if (name === 'b') s.join('muted')
  })
  const c = { a: client('/', { auth: { name: 'a' } }), b: client('/', { auth: { name: 'b' } }), c: client('/', { auth: { name: 'c' } }) }
  await Promise.all(Object.values(c).map((x) => once(x, 'connect')))
  const got = { a: [], b: [], c: [] }
  for (const n of ['a', 'b', 'c']) c[n].on('m', (v) => got[n].push(v))

  io.to('red').emit('m', 1) // a, b
  sockets.a.to('red').emit('m', 2) // b
  io.except('muted').emit('m', 3) // a, c
  sockets.c.broadcast.emit('m', 4) // a, b
  io.to('red').except('muted').emit('m', 5) // a
  await new Promise((r) => setTimeout(r, 300))
  assert.deepEqual(got, { a: [1, 3, 4, 5], b: [1, 2, 4], c: [3] })
  assert.deepEqual([...io.of('/').adapter.rooms.get('red')].sort(), [sockets.a.id, sockets.b.id].sort())
  // Own rooms and sids are views over the sockets, as socket.io shows them.
  const adapter = io.of('/').adapter
  assert.deepEqual([...adapter.rooms.get(sockets.c.id)], [sockets.c.id])
  assert.ok(adapter.rooms.has(sockets.a.id) && !adapter.rooms.has('nope'))
  assert.equal(adapter.rooms.size, 3 + 2) // three own rooms, red, muted
  assert.deepEqual(new Set(adapter.rooms.keys()), new Set([sockets.a.id, sockets.b.id, sockets.c.id, 'red', 'muted']))
  assert.equal(adapter.sids.get(sockets.b.id), sockets.b.rooms)
  assert.deepEqual([...adapter.sids.get(sockets.b.id)].sort(), [sockets.b.id, 'muted', 'red'].sort())
  sockets.a.leave('red')
  assert.ok(!sockets.a.rooms.has('red'))
})

each('namespaces: own connection handler; an unknown one is refused', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const seen = []
  io.of('/admin').on('connection', (s) => seen.push(s.nsp.name))
  const admin = client('/admin')
  await once(admin, 'connect')
  assert.deepEqual(seen, ['/admin'])
  const nowhere = client('/nowhere')
  const [err] = await once(nowhere, 'connect_error')
  assert.equal(err.message, 'Invalid namespace')
})

each('disconnect reasons: client leaves, server disconnects', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const reasons = []
  io.on('connection', (s) => s.on('disconnect', (r) => reasons.push([s.handshake.auth.n, r])))
  const one = client('/', { auth: { n: 1 } })
  await once(one, 'connect')
  one.disconnect()
  const two = client('/', { auth: { n: 2 } })
  await once(two, 'connect')
  const socket2 = io.of('/').sockets.get(two.id)
  socket2.disconnect()
  const [clientReason] = await once(two, 'disconnect')
  assert.equal(clientReason, 'io server disconnect')
  // Both are reported (bounded wait: a loaded machine may take longer than a moment).
  for (let i = 0; i < 100 && reasons.length < 2; i++) await new Promise((r) => setTimeout(r, 50))
  assert.deepEqual(reasons, [[1, 'client namespace disconnect'], [2, 'server namespace disconnect']])
})

each('heartbeats: a live client stays connected across many ping intervals', { timeout: 10000 }, async (t) => {
  const { client } = setup(t, { pingInterval: 100, pingTimeout: 100 })
  const c = client()
  await once(c, 'connect')
  let disconnected = false
  c.on('disconnect', () => { disconnected = true })
  await new Promise((r) => setTimeout(r, 1000))
  assert.equal(disconnected, false)
  assert.ok(c.connected)
})

test('reserved names throw on emit; a client emitting "error" does not crash the server', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const c = client()
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  assert.throws(() => socket.emit('disconnect'), /reserved/)
  assert.throws(() => io.emit('connect'), /reserved/)
  c.emit('error', 'boom')
  c.emit('ping?')
  await new Promise((resolve) => socket.on('ping?', resolve))
  assert.ok(socket.connected)
})

for (const [mode, transports, n] of [['websocket', ['websocket'], 2000], ['default', undefined, 300]]) {
  test(`a broadcast reaches every one of ${n} clients in a room [${mode}]`, { timeout: 60000 }, async (t) => {
    // Slow heartbeats: hundreds of in-process clients doing the polling
    // handshake miss 300 ms pings on 2 cores (socket.io 4.8 as well).
    t.transports = transports
    const { io, client } = setup(t, { pingInterval: 10000, pingTimeout: 10000 })
    io.on('connection', (s) => s.join('all'))
    const cs = Array.from({ length: n }, () => client())
    await Promise.all(cs.map((c) => once(c, 'connect')))
    const received = Promise.all(cs.map((c) => once(c, 'tick')))
    io.to('all').emit('tick', { n: 1 })
    const all = await received
    assert.equal(all.length, n)
    assert.ok(all.every(([v]) => v.n === 1))
    assert.equal(io.of('/').adapter.rooms.get('all').size, n)
  })
}

test('the process exits by itself after io.close()', { timeout: 20000 }, async () => {
  const r = await runChild(`
    const { Server } = require(require('node:path').join(${JSON.stringify(process.cwd())}))
    const io = new Server()
    io.listen(0)
    io.on('connection', () => {})
    setTimeout(() => { io.close(); console.log('closed') }, 100)
  `, 15000)
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /closed/)
})

each('binary arguments anywhere in the args, both directions, in acks and broadcasts', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  io.on('connection', (socket) => {
    socket.join('bin')
    socket.on('upload', (meta, ack) => {
      ack({ name: meta.name, size: meta.file.length, echo: meta.file, first: meta.parts[0] })
    })
  })
  const c = client()
  await once(c, 'connect')
  const file = Buffer.from([1, 2, 3, 250])
  const res = await c.emitWithAck('upload', { name: 'f', file, parts: [new Uint8Array([9, 8])] })
  assert.equal(res.name, 'f')
  assert.equal(res.size, 4)
  assert.deepEqual([...res.echo], [1, 2, 3, 250])
  assert.deepEqual([...res.first], [9, 8])
  const got = once(c, 'blob')
  io.to('bin').emit('blob', 'label', { data: Buffer.from('xyz'), when: new Date(0) })
  const [label, payload] = await got
  assert.equal(label, 'label')
  assert.equal(Buffer.from(payload.data).toString(), 'xyz')
  assert.equal(payload.when, '1970-01-01T00:00:00.000Z')
})

test('socket.use packet middleware, onAnyOutgoing, and the CommonJS factory form', { timeout: 10000 }, async (t) => {
  const factory = require('..')
  const io = factory({ pingInterval: 300, pingTimeout: 200 })
  assert.ok(io instanceof Server)
  io.listen(0)
  const outgoing = []
  const errors = []
  io.on('connection', (socket) => {
    socket.onAnyOutgoing((ev, ...args) => outgoing.push([ev, ...args]))
    socket.use(([event], next) => (event === 'forbidden' ? next(new Error('blocked')) : next()))
    socket.on('error', (err) => { errors.push(err.message); socket.emit('refused') })
    socket.on('allowed', () => socket.emit('ok', 1))
    socket.on('forbidden', () => socket.emit('should-not-happen'))
  })
  const c = ioc(`http://127.0.0.1:${io.port}`, { transports: ['websocket'], reconnection: false, forceNew: true })
  t.after(() => { c.close(); io.close() })
  await once(c, 'connect')
  c.emit('forbidden')
  await once(c, 'refused')
  c.emit('allowed')
  await once(c, 'ok')
  assert.deepEqual(errors, ['blocked'])
  assert.deepEqual(outgoing, [['refused'], ['ok', 1]])
})

test('dynamic namespaces: RegExp and function parents create children with their handlers', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const seen = []
  const byRegex = io.of(/^\/room-\d+$/)
  byRegex.use((socket, next) => { socket.data.checked = true; next() })
  byRegex.on('connection', (s) => seen.push([s.nsp.name, s.data.checked]))
  io.of((name, auth, next) => next(null, name === '/by-fn' && auth.ok === true)).on('connection', (s) => seen.push([s.nsp.name]))
  const a = client('/room-42')
  await once(a, 'connect')
  const b = client('/by-fn', { auth: { ok: true } })
  await once(b, 'connect')
  // The function parent refuses other names (and existing children are
  // joined directly afterwards, as in socket.io).
  const c = client('/by-fn-2', { auth: { ok: true } })
  const [err] = await once(c, 'connect_error')
  assert.equal(err.message, 'Invalid namespace')
  const d = client('/room-x')
  assert.equal((await once(d, 'connect_error'))[0].message, 'Invalid namespace')
  assert.deepEqual(seen, [['/room-42', true], ['/by-fn']])
  assert.ok(io._nsps.has('/room-42'))
})

each('broadcast acks: every recipient answers, or the timeout reports the responses so far', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  io.on('connection', (s) => s.join(s.handshake.auth.room))
  const a = client('/', { auth: { room: 'r' } })
  const b = client('/', { auth: { room: 'r' } })
  const mute = client('/', { auth: { room: 'm' } })
  await Promise.all([a, b, mute].map((c) => once(c, 'connect')))
  a.on('q', (n, ack) => ack(n + 1))
  b.on('q', (n, ack) => ack(n + 2))
  mute.on('q', () => {})
  const answers = await io.to('r').timeout(2000).emitWithAck('q', 10)
  assert.deepEqual(answers.sort(), [11, 12])
  const [err, partial] = await new Promise((resolve) => io.timeout(300).emit('q', 1, (...r) => resolve(r)))
  assert.equal(err.message, 'operation has timed out')
  assert.deepEqual(partial.sort(), [2, 3])
  // Sender excluded: socket.broadcast with acks reaches the other two only.
  const sa = io.of('/').sockets.get(a.id)
  const fromA = await sa.broadcast.timeout(300).emitWithAck('q', 0).catch((e) => e)
  assert.equal(fromA.message, 'operation has timed out')
  assert.deepEqual(await io.to('nobody').timeout(100).emitWithAck('q', 0), [])
})

test('this-node operators: fetchSockets, socketsJoin/Leave, disconnectSockets; disconnecting sees the rooms; once/off; volatile, local, compress deliver', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const seenRooms = []
  io.on('connection', (s) => {
    s.join(s.handshake.auth.team)
    s.on('disconnecting', () => seenRooms.push([...s.rooms].filter((r) => r !== s.id).sort()))
  })
  const cs = ['a', 'a', 'b'].map((team) => client('/', { auth: { team } }))
  await Promise.all(cs.map((c) => once(c, 'connect')))
  assert.deepEqual((await io.in('a').fetchSockets()).map((s) => s.id).sort(), [cs[0].id, cs[1].id].sort())
  io.in('b').socketsJoin('late')
  assert.deepEqual((await io.in('late').fetchSockets()).map((s) => s.id), [cs[2].id])
  const got = []
  cs[2].on('m', (v) => got.push(v))
  // One at a time: a volatile packet goes only to a transport that can take
  // it now (the one before must have gone out), as in socket.io.
  const next = (fn) => new Promise((resolve) => { cs[2].once('m', resolve); fn() })
  await next(() => io.to('late').emit('m', 1))
  await next(() => io.volatile.to('late').emit('m', 2))
  await next(() => io.local.to('late').emit('m', 3))
  await next(() => io.compress(false).to('late').emit('m', 4))
  assert.deepEqual(got, [1, 2, 3, 4])
  io.in('late').socketsLeave('late')
  io.to('late').emit('m', 5)
  // once/off on a server-side socket.
  const [s0] = await io.in(cs[0].id).fetchSockets()
  const heard = []
  const off = (v) => heard.push(['off', v])
  s0.once('x', (v) => heard.push(['once', v]))
  s0.on('x', off)
  s0.off('x', off)
  cs[0].emit('x', 1)
  cs[0].emit('x', 2)
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.deepEqual(got, [1, 2, 3, 4])
  assert.deepEqual(heard, [['once', 1]])
  const reasons = Promise.all(cs.slice(0, 2).map((c) => once(c, 'disconnect')))
  io.in('a').disconnectSockets()
  assert.deepEqual((await reasons).map(([r]) => r), ['io server disconnect', 'io server disconnect'])
  assert.deepEqual(seenRooms, [['a'], ['a']])
  assert.equal(io.of('/').sockets.size, 1)
})

test('socket.io API details: timeout() without an ack, socketsLeave with an array, send() chains, io.off/listeners', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const listener = () => {}
  assert.equal(io.on('connection', listener), io)
  assert.ok(io.listeners('connection').includes(listener))
  // The listener lives on the main namespace, where connections are emitted.
  assert.ok(io.of('/').listeners('connection').includes(listener))
  io.off('connection', listener)
  assert.ok(!io.listeners('connection').includes(listener))

  const c = client()
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  // As socket.io: with no ack the timeout does not apply and every argument is sent.
  const plain = once(c, 'plain')
  socket.timeout(1000).emit('plain', 1, 2)
  assert.deepEqual(await plain, [1, 2])

  socket.join(['a', 'b', 'c'])
  io.socketsLeave(['a', 'b'])
  assert.deepEqual([...socket.rooms].sort(), [socket.id, 'c'].sort())

  const msgs = []
  c.on('message', (m) => msgs.push(m))
  const all = new Promise((resolve) => c.on('message', () => msgs.length === 3 && resolve()))
  assert.equal(socket.send('one'), socket)
  assert.equal(io.send('two'), io)
  assert.equal(io.of('/').send('three'), io.of('/'))
  await all
  assert.deepEqual(msgs, ['one', 'two', 'three'])
})

test('socket.use: onAny sees events first (as socket.io), and an event whose async middleware outlives the socket is dropped', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const seenByAny = []
  const delivered = []
  let release
  const held = new Promise((resolve) => { release = resolve })
  io.on('connection', (socket) => {
    socket.onAny((event) => seenByAny.push(event))
    socket.use(([event], next) => {
      if (event === 'refused') return next(new Error('no'))
      if (event === 'slow') return held.then(() => next())
      next()
    })
    socket.on('error', () => {})
    for (const ev of ['refused', 'slow', 'fast']) socket.on(ev, () => delivered.push(ev))
  })
  const c = client()
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  c.emit('refused')
  c.emit('fast')
  c.emit('slow')
  await new Promise((resolve) => socket.on('fast', resolve))
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.deepEqual(seenByAny, ['refused', 'fast', 'slow'])
  socket.disconnect()
  release()
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.deepEqual(delivered, ['fast'])
})

test('operators select the sockets broadcasts reach: rooms, except, socket-id rooms, the sender skipped, per namespace', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const sockets = {}
  io.on('connection', (s) => { sockets[s.handshake.auth.name] = s })
  io.of('/other').on('connection', () => {})
  const clients = {}
  for (const name of ['a', 'b', 'c']) {
    clients[name] = client('/', { auth: { name } })
    await once(clients[name], 'connect')
  }
  const { a, b, c } = sockets
  a.join('r1')
  b.join(['r1', 'r2'])
  c.join('r2')
  // In connection order, as socket.io returns them.
  assert.deepEqual((await io.fetchSockets()).map((s) => s.handshake.auth.name), ['a', 'b', 'c'])
  const ids = async (op) => (await op.fetchSockets()).map((s) => s.handshake.auth.name).sort()
  assert.deepEqual(await ids(io.in('r1')), ['a', 'b'])
  assert.deepEqual(await ids(io.in(['r1', 'r2'])), ['a', 'b', 'c'])
  assert.deepEqual(await ids(io.except('r2')), ['a'])
  assert.deepEqual(await ids(io.in('r1').except('r2')), ['a'])
  assert.deepEqual(await ids(io.in(c.id)), ['c'])
  assert.deepEqual(await ids(io.in('r2').except(b.id)), ['c'])
  assert.deepEqual(await ids(io.of('/other').in(a.id)), [])
  // The sender is skipped, as its broadcast would skip it.
  assert.deepEqual(await ids(a.to('r1')), ['b'])
  io.in('r2').socketsJoin('r3')
  assert.deepEqual(await ids(io.in('r3')), ['b', 'c'])
  io.except('r1').disconnectSockets()
  await once(clients.c, 'disconnect')
  assert.deepEqual(await ids(io.of('/')), ['a', 'b'])
})

test('operators in disconnecting handlers still find the socket in its rooms (client leave, server disconnect, closed connection), and not in disconnect', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const seen = []
  io.on('connection', (s) => {
    s.join('team')
    const name = s.handshake.auth.name
    s.on('disconnecting', async () => {
      // Synchronously, as socket.io: the adapter still lists the socket.
      const inTeam = io.in('team').fetchSockets()
      const own = io.in(s.id).fetchSockets()
      seen.push([name, 'disconnecting', (await inTeam).some((x) => x.id === s.id), (await own).length])
    })
    s.on('disconnect', async () => {
      const inTeam = io.in('team').fetchSockets()
      seen.push([name, 'disconnect', (await inTeam).some((x) => x.id === s.id)])
    })
  })
  const cs = ['leaves', 'kicked', 'closes'].map((name) => client('/', { auth: { name } }))
  await Promise.all(cs.map((c) => once(c, 'connect')))
  const gone = (name) => new Promise((resolve) => {
    const check = () => (seen.some(([n, what]) => n === name && what === 'disconnect') ? resolve() : setTimeout(check, 10))
    check()
  })
  cs[0].disconnect()
  await gone('leaves')
  for (const s of await io.in('team').fetchSockets()) if (s.handshake.auth.name === 'kicked') s.disconnect()
  await gone('kicked')
  cs[2].io.engine.close()
  await gone('closes')
  await new Promise((resolve) => setTimeout(resolve, 50))
  for (const name of ['leaves', 'kicked', 'closes']) {
    const mine = seen.filter(([n]) => n === name).sort((x, y) => x[1].localeCompare(y[1]))
    assert.deepEqual(mine, [[name, 'disconnect', false], [name, 'disconnecting', true, 1]])
  }
  assert.deepEqual(await io.in('team').fetchSockets(), [])
})

test('rooms joined in middleware are reached once the socket connects; a refused socket\'s are not', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  io.use((socket, next) => {
    socket.join('early')
    if (socket.handshake.auth.refuse) return next(new Error('refused'))
    // Not reached before the CONNECT is accepted, as in socket.io.
    io.in('early').fetchSockets().then((list) => {
      assert.ok(!list.some((s) => s.id === socket.id))
      next()
    })
  })
  const refused = client('/', { auth: { refuse: true } })
  await once(refused, 'connect_error')
  const ok = client('/')
  await once(ok, 'connect')
  assert.deepEqual((await io.in('early').fetchSockets()).map((s) => s.id), [ok.id])
  const got = once(ok, 'hi')
  io.to('early').emit('hi', 1)
  assert.deepEqual(await got, [1])
  assert.deepEqual([...io.of('/').adapter.rooms.get('early')], [ok.id])
})

test('socket.io API surface: socket.volatile/compress/local, onAnyOutgoing sees broadcasts, of(name, fn), new_namespace, dynamic parents broadcast to children, allSockets, write, path/serveClient/connectTimeout, err.responses, join after disconnect', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const created = []
  io.on('new_namespace', (nsp) => created.push(nsp.name))
  const viaFn = []
  io.of('/fn', (s) => viaFn.push(s.id))
  const parent = io.of(/^\/dyn-\d+$/, (s) => s.join('dyn-room'))
  assert.equal(io.path(), '/socket.io')
  assert.equal(io.serveClient(), true)
  assert.equal(io.connectTimeout(), 45000)
  assert.equal(io.connectTimeout(1000), io)
  assert.equal(io.connectTimeout(), 1000)

  const [[main]] = await Promise.all([once(io, 'connection'), once(client(), 'connect')])
  const fnClient = client('/fn')
  await once(fnClient, 'connect')
  assert.deepEqual(viaFn, [fnClient.id])
  const d1 = client('/dyn-1')
  const d2 = client('/dyn-2')
  await Promise.all([once(d1, 'connect'), once(d2, 'connect')])
  assert.deepEqual(created.sort(), ['/dyn-1', '/dyn-2', '/fn'])
  assert.equal(io.of('/dyn-1'), [...parent.children].find((c) => c.name === '/dyn-1'))
  // A broadcast on the parent reaches every child, rooms included.
  const both = Promise.all([once(d1, 'all'), once(d2, 'all'), once(d1, 'room'), once(d2, 'room')])
  parent.emit('all', 1)
  parent.to('dyn-room').emit('room', 2)
  assert.deepEqual(await both, [[1], [1], [2], [2]])

  // socket-level modifiers exist and deliver; onAnyOutgoing sees broadcasts.
  const outgoing = []
  main.onAnyOutgoing((...args) => outgoing.push(args))
  const mc = [...io.of('/').sockets.values()].length
  assert.equal(mc, 1)
  assert.equal(main.volatile, main)
  assert.equal(main.compress(false), main)
  assert.equal(main.local, main)
  io.emit('b', 1)
  io.to('nobody').emit('b', 2)
  main.emit('own', 3)
  assert.deepEqual(outgoing, [['b', 1], ['own', 3]])
  assert.deepEqual([...(await io.allSockets())], [main.id])
  assert.equal(io.write('hello'), io)

  // emitWithAck that times out: the answers that came are in err.responses.
  const err = await io.timeout(200).emitWithAck('never').catch((e) => e)
  assert.equal(err.message, 'operation has timed out')
  assert.deepEqual(err.responses, [])

  // A socket that left joins nothing more (socket.io's _cleanup).
  main.disconnect()
  main.join('late')
  assert.equal(io.of('/').adapter.rooms.get('late'), undefined)
})

test('io.listen(port) again after io.close(): a reconnecting client is served by the new listener', { timeout: 10000 }, async (t) => {
  const io = new Server()
  io.on('connection', (s) => s.on('ev', (v, ack) => ack(v)))
  io.listen(0)
  const port = io.port
  const c = ioc(`http://127.0.0.1:${port}`, { reconnectionDelay: 100, forceNew: true })
  t.after(() => c.close())
  await once(c, 'connect')
  await io.close()
  io.listen(port)
  t.after(() => io.close())
  await once(c, 'connect')
  assert.equal(await c.timeout(2000).emitWithAck('ev', 'payload'), 'payload')
})

each('volatile: dropped right after another packet, delivered when the transport is free, regular packets unaffected', { timeout: 10000 }, async (t) => {
  // No heartbeat meanwhile: a ping being answered makes polling unwritable too.
  const { io, client } = setup(t, { pingInterval: 5000, pingTimeout: 5000 })
  const c = client()
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  const got = []
  c.on('ev', (v) => got.push(v))
  socket.emit('ev', 1)
  socket.volatile.emit('ev', 2)
  socket.volatile.emit('ev', 3)
  socket.emit('ev', 4)
  await new Promise((resolve) => setTimeout(resolve, 300))
  socket.volatile.emit('ev', 5)
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.deepEqual(got, [1, 4, 5])
})

test('socket.conn is the Engine.IO session: id, transport, protocol, upgrade and close events; client.conn and client.request', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const c = client('/', { query: { key1: 1 } })
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  const conn = socket.conn
  assert.equal(socket.client.conn, conn)
  assert.equal(conn.id, c.io.engine.id)
  assert.equal(conn.protocol, 4)
  assert.equal(conn.readyState, 'open')
  assert.equal(socket.request.headers.host, `127.0.0.1:${io.port}`)
  assert.equal(socket.client.request._query.key1, '1')
  if (c.io.engine.transport.name === 'polling') {
    const [transport] = await once(conn, 'upgrade')
    assert.equal(transport.name, 'websocket')
    assert.equal(conn.transport.name, 'websocket')
  }
  const closed = once(conn, 'close')
  const order = []
  socket.on('disconnect', () => order.push('disconnect'))
  conn.on('close', () => order.push('close'))
  conn.close()
  const [reason] = await closed
  assert.equal(typeof reason, 'string')
  assert.deepEqual(order, ['disconnect', 'close'])
  assert.equal(conn.readyState, 'closed')
})

test('socket.leaveAll leaves every room, its own included; socket.acks holds the acks awaited', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const c = client()
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  socket.join(['a', 'b'])
  c.on('q', () => {}) // never answers
  socket.emit('q', () => {})
  assert.equal(socket.acks.size, 1)
  socket.leaveAll()
  assert.deepEqual([...socket.rooms], [])
  assert.deepEqual(await io.in(socket.id).fetchSockets(), [])
  assert.deepEqual(await io.in('a').fetchSockets(), [])
  assert.equal(io.of('/').adapter.rooms.get('a'), undefined)
})

test('socket.conn packetCreate and packet events report the Socket.IO packets sent to and received from the client, compress flag included', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const c = client('/chat')
  const connected = new Promise((resolve) => io.of('/chat').on('connection', resolve))
  await once(c, 'connect')
  const s = await connected
  const created = []
  const received = []
  s.conn.on('packetCreate', (p) => created.push(p))
  s.conn.on('packet', (p) => received.push(p))
  s.emit('woot', 'hi')
  s.compress(false).emit('woot', 2)
  io.of('/chat').compress(false).emit('all', 3)
  io.of('/chat').to('nobody').emit('none', 4)
  await once(c, 'all')
  c.emit('up', 1)
  await once(s, 'up')
  assert.deepEqual(created, [
    { type: 'message', data: '2/chat,["woot","hi"]', options: { compress: true } },
    { type: 'message', data: '2/chat,["woot",2]', options: { compress: false } },
    {
      type: 'message',
      data: '2/chat,["all",3]',
      // A broadcast carries its frame, as socket.io's adapter sets it.
      options: { compress: false, wsPreEncodedFrame: [Buffer.from([0x81, 17]), Buffer.from('42/chat,["all",3]')] }
    }
  ])
  assert.deepEqual(received, [{ type: 'message', data: '2/chat,["up",1]' }])
})

test('a packet the parser refuses: each socket of the client gets an error event with socket.io-parser\'s message, then the connection closes', { timeout: 10000 }, async (t) => {
  const { io } = setup(t)
  const WebSocket = require('ws')
  const ws = new WebSocket(`ws://127.0.0.1:${io.port}/socket.io/?EIO=4&transport=websocket`)
  t.after(() => ws.terminate())
  await once(ws, 'message')
  const [[socket]] = await Promise.all([once(io, 'connection'), (async () => ws.send('40'))()])
  const errored = once(socket, 'error')
  const gone = once(socket, 'disconnect')
  ws.send('45woooot') // an Engine.IO message carrying Socket.IO's "5woooot"
  const [err] = await errored
  assert.match(err.message, /Illegal attachments/)
  await gone
})

test('a socket in the middleware is in _preConnectSockets, not in sockets, and not connected (socket.io\'s fields)', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const seen = []
  io.use((socket, next) => {
    seen.push([socket.connected, io.of('/').sockets.size, io.of('/')._preConnectSockets.get(socket.id) === socket])
    next()
  })
  const c = client()
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  assert.deepEqual(seen, [[false, 0, true]])
  assert.equal(io.of('/')._preConnectSockets.size, 0)
  assert.ok(socket.connected && io.of('/').sockets.get(socket.id) === socket)
})

test('an event that came in the same read as its socket\'s DISCONNECT is not dispatched (socket.io dispatches a tick later)', { timeout: 10000 }, async (t) => {
  const io = new Server()
  io.listen(0)
  t.after(() => io.close())
  const base = `http://127.0.0.1:${io.port}/socket.io/?EIO=4&transport=polling`
  const open = await (await fetch(base)).text()
  const sid = JSON.parse(open.slice(1)).sid
  const post = (body) => fetch(`${base}&sid=${sid}`, { method: 'POST', body }).then((r) => r.text())
  const seen = []
  io.on('connection', (socket) => {
    socket.onAny((ev) => seen.push(`any:${ev}`))
    socket.on('test', (n) => seen.push(`test:${n}`))
    socket.on('disconnect', (reason) => seen.push(reason))
  })
  await post('40')
  assert.match(await (await fetch(`${base}&sid=${sid}`)).text(), /^40\{"sid"/)
  await post('42["test",1]')
  await new Promise((resolve) => setTimeout(resolve, 100))
  // One body, one read: the event, then the namespace DISCONNECT.
  await post('42["test",2]\x1e41')
  await new Promise((resolve) => setTimeout(resolve, 200))
  // onAny sees it at once (as socket.io's onevent); the listener never does.
  assert.deepEqual(seen, ['any:test', 'test:1', 'any:test', 'client namespace disconnect'])
})

test('packetCreate of a broadcast carries the WebSocket frame (wsPreEncodedFrame) that the client receives', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const c = client('/', { transports: ['websocket'] })
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  assert.equal(socket.conn.protocol, 4)
  const created = once(socket.conn, 'packetCreate')
  const got = once(c, 'woot')
  io.compress(false).emit('woot', 'x'.repeat(200))
  const [[packet]] = await Promise.all([created, got])
  const [head, payload] = packet.options.wsPreEncodedFrame
  // FIN + text, 16-bit length, then "4" + the Socket.IO packet.
  assert.deepEqual([...head], [0x81, 126, payload.length >> 8, payload.length & 0xff])
  assert.equal(payload.toString(), '4' + packet.data)
  assert.equal(packet.options.compress, false)
})

test('the adapter emits socket.io\'s room events: create-room, join-room, leave-room, delete-room (own rooms included)', { timeout: 10000 }, async (t) => {
  const { io, client } = setup(t)
  const events = []
  const adapter = io.of('/').adapter
  for (const ev of ['create-room', 'join-room', 'leave-room', 'delete-room']) adapter.on(ev, (...args) => events.push([ev, ...args]))
  const c = client()
  const [[socket]] = await Promise.all([once(io, 'connection'), once(c, 'connect')])
  const id = socket.id
  assert.deepEqual(events.splice(0), [['create-room', id], ['join-room', id, id]])
  socket.join('red')
  socket.join('red')
  socket.leave('red')
  socket.leave('red')
  assert.deepEqual(events.splice(0), [['create-room', 'red'], ['join-room', 'red', id], ['leave-room', 'red', id], ['delete-room', 'red']])
  socket.join('blue')
  events.length = 0
  const gone = once(socket, 'disconnect')
  c.close()
  await gone
  const pairs = (list) => list.map((e) => e.slice(0, 2).join(' ')).sort()
  assert.deepEqual(pairs(events), pairs([['delete-room', 'blue'], ['delete-room', id], ['leave-room', 'blue'], ['leave-room', id]]))
})
