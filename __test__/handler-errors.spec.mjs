// "No handler takes the server down": every kind of user callback, in the
// Socket.IO API, the raw Engine.IO server and the core (uWS.js) API, once
// throwing and once returning a rejected promise. Each must become exactly
// one FERROSOCKET_HANDLER_ERROR warning whose `cause` is the thrown error,
// and the same connection and a second one must still be served afterwards.
// Servers run in this process: a throw that escapes is an uncaughtException
// and a rejection that escapes an unhandledRejection, and node:test fails
// the test for either.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { io as ioc } from 'socket.io-client'
import { uWS, startApp, acceptWith, text } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'
import { rawConnect, httpRequest } from './helpers/raw-client.mjs'
import { sendUntilDropped, stall } from './helpers/backpressure.mjs'
import { ferroOnly, delay, waitFor, withTimeout } from './helpers/env.mjs'

const require = createRequire(import.meta.url)
const { Server, EngineServer } = require('..')

const MODES = ['sync', 'async']
const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))

/** The user's failure: a synchronous throw, or a promise rejected a little later. */
function boom (mode, err) {
  if (mode === 'sync') throw err
  return delay(5).then(() => { throw err })
}

/** A test per mode of one callback kind. */
function kind (name, fn, { modes = MODES, skip = false, timeout = 15000 } = {}) {
  for (const mode of modes) {
    test(`${name} [${mode}]`, { timeout, skip }, (t) => fn(t, mode, new Error(`${name} failed (${mode})`)))
  }
}

/**
 * Records the FERROSOCKET_HANDLER_ERROR warnings raised during one test.
 * `exactly(cause)` waits for the warning and then for a quiet spell, so a
 * second report of the same error would be seen.
 */
function watchWarnings (t) {
  const seen = []
  const onWarning = (w) => { if (w.code === 'FERROSOCKET_HANDLER_ERROR') seen.push(w) }
  process.on('warning', onWarning)
  t.after(() => process.off('warning', onWarning))
  return {
    seen,
    async exactly (cause) {
      await waitFor(() => seen.length > 0, 3000, 'the FERROSOCKET_HANDLER_ERROR warning')
      await delay(100)
      assert.equal(seen.length, 1, `one warning, got: ${seen.map((w) => w.cause?.message).join(' | ')}`)
      const [w] = seen
      assert.ok(w instanceof Error)
      assert.equal(w.name, 'FerrosocketHandlerError')
      assert.equal(w.code, 'FERROSOCKET_HANDLER_ERROR')
      assert.equal(w.cause, cause, 'cause is the error the handler threw')
    },
    async none () {
      await delay(100)
      assert.deepEqual(seen.map((w) => w.cause?.message), [])
    }
  }
}

// ---- Socket.IO ---------------------------------------------------------

/** A Server on port 0; `client(nsp, opts)` connects a socket.io-client. */
function sio (t, opts = {}) {
  const io = new Server({ pingInterval: 1000, pingTimeout: 1000, ...opts })
  io.listen(0)
  const clients = []
  const url = `http://127.0.0.1:${io.port}`
  const client = (nsp = '/', options = {}) => {
    const c = ioc(url + nsp, { transports: ['websocket'], reconnection: false, forceNew: true, ...options })
    clients.push(c)
    return c
  }
  t.after(() => {
    for (const c of clients) c.close()
    io.close()
  })
  return { io, client, url }
}

/** Sockets of `nsp` answer 'echo' with what they were sent. */
function echo (nsp) {
  nsp.on('connection', (s) => s.on('echo', (v, ack) => ack(v)))
}

async function connected (c) {
  if (!c.connected) await withTimeout(once(c, 'connect'), 3000, 'connect')
  return c
}

/** Each client still gets its echo round trip. */
async function served (...clients) {
  for (const c of clients) {
    await connected(c)
    const v = Math.random()
    assert.equal(await c.timeout(2000).emitWithAck('echo', v), v)
  }
}

kind('socket.on event listener', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { io, client } = sio(t)
  echo(io)
  io.on('connection', (s) => s.on('boom', () => boom(mode, err)))
  const a = await connected(client())
  a.emit('boom')
  await w.exactly(err)
  await served(a, client())
})

kind('connection listener (later listeners still run)', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { io, client } = sio(t)
  let thrown = false
  io.on('connection', () => {
    if (thrown) return
    thrown = true
    return boom(mode, err)
  })
  echo(io) // registered after the failing listener
  const a = client()
  await served(a)
  await w.exactly(err)
  await served(a, client())
})

for (const event of ['disconnecting', 'disconnect']) {
  kind(`${event} listener`, async (t, mode, err) => {
    const w = watchWarnings(t)
    const { io, client } = sio(t)
    echo(io)
    const b = io.of('/b')
    echo(b)
    let thrown = false
    b.on('connection', (s) => s.on(event, () => {
      if (thrown) return
      thrown = true
      return boom(mode, err)
    }))
    const main = await connected(client())
    const sub = await connected(main.io.socket('/b'))
    sub.disconnect() // leaves '/b' only: the connection carries on
    await w.exactly(err)
    await served(main)
    sub.connect()
    await served(sub, client())
  })
}

for (const where of ['io.use', 'nsp.use']) {
  kind(`${where} middleware: the client is refused with connect_error`, async (t, mode, err) => {
    const w = watchWarnings(t)
    const { io, client } = sio(t)
    const name = where === 'io.use' ? '/' : '/guarded'
    const nsp = io.of(name)
    echo(nsp)
    nsp.use((socket, next) => (socket.handshake.auth.bad ? boom(mode, err) : next()))
    const a = client(name, { auth: { bad: true } })
    const [refusal] = await withTimeout(once(a, 'connect_error'), 3000, 'connect_error')
    assert.equal(refusal.message, 'Internal server error', 'the thrown message does not reach the client')
    await w.exactly(err)
    a.auth = {}
    a.connect()
    await served(a, client(name))
  })
}

kind('io.use middleware that calls next() and then fails: the connection stands', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { io, client } = sio(t)
  echo(io)
  let thrown = false
  io.use((socket, next) => {
    next()
    if (thrown) return
    thrown = true
    return boom(mode, err)
  })
  const a = client()
  await served(a)
  await w.exactly(err)
  await served(a, client())
})

kind('socket.use packet middleware: the packet is dropped, no "error" event', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { io, client } = sio(t)
  const heard = []
  io.on('connection', (s) => {
    s.use(([event], next) => (event === 'boom' ? boom(mode, err) : next()))
    s.on('error', (e) => heard.push(['error', e]))
    s.on('boom', () => heard.push(['boom']))
  })
  echo(io)
  const a = await connected(client())
  a.emit('boom')
  await w.exactly(err)
  await served(a, client())
  assert.deepEqual(heard, [])
})

kind('ack callback of socket.emit(ev, cb)', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { io, client } = sio(t)
  echo(io)
  io.on('connection', (s) => s.on('ask', () => s.emit('question', () => boom(mode, err))))
  const a = await connected(client())
  a.on('question', (ack) => ack('answer'))
  a.emit('ask')
  await w.exactly(err)
  await served(a, client())
})

for (const answered of [true, false]) {
  const how = answered ? 'answered' : 'timed out'
  kind(`ack callback of socket.timeout().emit, ${how}`, async (t, mode, err) => {
    const w = watchWarnings(t)
    const { io, client } = sio(t)
    echo(io)
    const got = []
    io.on('connection', (s) => s.on('ask', () => s.timeout(200).emit('question', (e, res) => {
      got.push(e ? e.message : res)
      return boom(mode, err)
    })))
    const a = await connected(client())
    if (answered) a.on('question', (ack) => ack('answer'))
    a.emit('ask')
    await w.exactly(err)
    assert.deepEqual(got, [answered ? 'answer' : 'operation has timed out'])
    await served(a, client())
  })

  kind(`ack callback of a broadcast (io.timeout().emit), ${how}`, async (t, mode, err) => {
    const w = watchWarnings(t)
    const { io, client } = sio(t)
    echo(io)
    const a = await connected(client())
    const b = await connected(client())
    for (const c of [a, b]) c.on('question', (ack) => { if (answered) ack('answer') })
    const got = []
    io.timeout(300).emit('question', (e, responses) => {
      got.push([e ? e.message : null, responses])
      return boom(mode, err)
    })
    await w.exactly(err)
    assert.deepEqual(got, [answered ? [null, ['answer', 'answer']] : ['operation has timed out', []]])
    await served(a, b, client())
  })
}

kind('ack function handed to an event handler: answers once, then the handler fails', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { io, client } = sio(t)
  echo(io)
  io.on('connection', (s) => s.on('ask', (v, ack) => {
    ack(v)
    ack('a second answer is ignored')
    return boom(mode, err)
  }))
  const a = await connected(client())
  assert.equal(await a.timeout(2000).emitWithAck('ask', 'first'), 'first')
  await w.exactly(err)
  await served(a, client())
})

kind('ack function called after the client left: a no-op, nothing to report', async (t) => {
  const w = watchWarnings(t)
  const { io, client } = sio(t)
  echo(io)
  let acked = false
  io.on('connection', (s) => s.on('slow', async (ack) => {
    await once(s, 'disconnect')
    ack('late')
    acked = true
  }))
  const a = await connected(client())
  a.emit('slow', () => {})
  await delay(50)
  a.disconnect()
  await waitFor(() => acked, 3000, 'the late ack')
  await w.none()
  await served(client())
}, { modes: ['async'] })

kind('onAny listener', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { io, client } = sio(t)
  echo(io)
  io.on('connection', (s) => s.onAny((event) => { if (event === 'boom') return boom(mode, err) }))
  const a = await connected(client())
  a.emit('boom')
  await w.exactly(err)
  await served(a, client())
})

kind('onAnyOutgoing listener: the packet still goes out', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { io, client } = sio(t)
  echo(io)
  io.on('connection', (s) => {
    s.onAnyOutgoing((event) => { if (event === 'news') return boom(mode, err) })
    s.on('ask', () => s.emit('news', 1))
  })
  const a = await connected(client())
  const news = once(a, 'news')
  a.emit('ask')
  assert.deepEqual(await withTimeout(news, 3000, 'news'), [1])
  await w.exactly(err)
  await served(a, client())
})

kind('serverSideEmit ack callback', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { io, client } = sio(t)
  echo(io)
  const a = await connected(client())
  io.serverSideEmit('hello', (e, responses) => {
    assert.deepEqual([e, responses], [null, []])
    return boom(mode, err)
  })
  await w.exactly(err)
  await served(a, client())
})

kind('io.engine "initial_headers" and "headers" listeners', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { io, client } = sio(t)
  echo(io)
  let thrown = 0
  const fail = () => { if (thrown++ === 0) return boom(mode, err) }
  io.engine.on('initial_headers', fail)
  io.engine.on('headers', fail)
  const a = client('/', { transports: ['polling'] })
  await served(a)
  await w.exactly(err)
  await served(a, client('/', { transports: ['polling'] }))
})

kind('io.engine "connection_error" listener', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { io, client, url } = sio(t)
  echo(io)
  io.engine.on('connection_error', () => boom(mode, err))
  const a = await connected(client())
  const res = await fetch(`${url}/socket.io/?EIO=4&transport=carrier-pigeon`)
  assert.equal(res.status, 400)
  await w.exactly(err)
  await served(a, client())
})

kind('dynamic namespace function: no match', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { io, client } = sio(t)
  echo(io)
  const parent = io.of((name, auth, next) => (name === '/dyn-bad' ? boom(mode, err) : next(null, true)))
  echo(parent)
  const main = await connected(client())
  const bad = main.io.socket('/dyn-bad')
  const [refusal] = await withTimeout(once(bad, 'connect_error'), 3000, 'connect_error')
  assert.equal(refusal.message, 'Invalid namespace')
  await w.exactly(err)
  await served(main, client('/dyn-ok'))
})

kind('allowRequest: the request is refused', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { io, client } = sio(t, {
    allowRequest: (req, cb) => (req.url.includes('bad=1') ? boom(mode, err) : cb(null, true))
  })
  echo(io)
  const a = await connected(client())
  const bad = client('/', { query: { bad: 1 } })
  await withTimeout(once(bad, 'connect_error'), 3000, 'connect_error')
  await w.exactly(err)
  await served(a, client())
})

for (const form of ['origin function', 'options delegate']) {
  kind(`cors ${form}: no CORS headers, an upgrade from that Origin is refused`, async (t, mode, err) => {
    const w = watchWarnings(t)
    const BAD = 'http://bad.example'
    const check = (origin, cb) => (origin === BAD ? boom(mode, err) : cb(null, true))
    const cors = form === 'origin function'
      ? { origin: check }
      : (req, cb) => check(req.headers.origin, (e, ok) => cb(e, { origin: ok }))
    const { io, client } = sio(t, { cors })
    echo(io)
    const a = await connected(client())
    // Long-polling: the handshake is served, without CORS headers.
    const polled = await httpRequest(io.port, { path: '/socket.io/?EIO=4&transport=polling', headers: { Origin: BAD } })
    assert.equal(polled.status, 200)
    assert.equal(polled.headers['access-control-allow-origin'], undefined)
    await w.exactly(err)
    // WebSocket from that Origin: the function fails again, reported once
    // more, and the upgrade is refused.
    const w2 = watchWarnings(t)
    const bad = client('/', { extraHeaders: { Origin: BAD } })
    await withTimeout(once(bad, 'connect_error'), 3000, 'connect_error')
    await w2.exactly(err)
    await served(a, client('/', { extraHeaders: { Origin: 'http://good.example' } }))
  })
}

// ---- EngineServer ---------------------------------------------------------

/** An EngineServer on port 0 whose sockets echo; `client()` opens a WebSocket session. */
async function eio (t, first) {
  const engine = new EngineServer({ pingInterval: 1000, pingTimeout: 1000 })
  if (first) first(engine)
  engine.on('connection', (socket) => socket.on('message', (data) => {
    if (String(data).startsWith('echo')) socket.send(data)
  }))
  const clients = []
  await new Promise((resolve) => engine.listen(0, undefined, resolve))
  const port = engine.httpServer.address().port
  t.after(() => {
    for (const c of clients) c.terminate()
    engine.close()
  })
  const client = async () => {
    const c = await connect(`ws://127.0.0.1:${port}/engine.io/?EIO=4&transport=websocket`)
    clients.push(c)
    const open = await c.nextText()
    assert.equal(open[0], '0')
    c.sid = JSON.parse(open.slice(1)).sid
    return c
  }
  return { engine, client, port }
}

async function eioServed (...clients) {
  for (const c of clients) {
    const v = `4echo ${Math.random()}`
    await c.send(v)
    let got
    do got = await c.nextText(); while (got === '2') // heartbeat pings
    assert.equal(got, v)
  }
}

kind('EngineServer "connection" listener (later listeners still run)', async (t, mode, err) => {
  const w = watchWarnings(t)
  let thrown = false
  const { client } = await eio(t, (engine) => engine.on('connection', () => {
    if (thrown) return
    thrown = true
    return boom(mode, err)
  }))
  const a = await client()
  await w.exactly(err)
  await eioServed(a, await client())
})

kind('EngineServer socket "message" listener', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { client } = await eio(t, (engine) => engine.on('connection', (socket) => socket.on('message', (data) => {
    if (data === 'boom') return boom(mode, err)
  })))
  const a = await client()
  await a.send('4boom')
  await w.exactly(err)
  await eioServed(a, await client())
})

kind('EngineServer socket "close" listener', async (t, mode, err) => {
  const w = watchWarnings(t)
  let thrown = false
  const { client } = await eio(t, (engine) => engine.on('connection', (socket) => socket.on('close', () => {
    if (thrown) return
    thrown = true
    return boom(mode, err)
  })))
  const a = await client()
  const b = await client()
  await a.send('1') // Engine.IO close packet
  await w.exactly(err)
  await eioServed(b, await client())
})

kind('EngineServer "headers" listener', async (t, mode, err) => {
  const w = watchWarnings(t)
  let thrown = false
  const { client, port } = await eio(t, (engine) => engine.on('headers', () => {
    if (thrown) return
    thrown = true
    return boom(mode, err)
  }))
  const a = await client()
  const res = await fetch(`http://127.0.0.1:${port}/engine.io/?EIO=4&transport=polling`)
  assert.equal(res.status, 200)
  await w.exactly(err)
  await eioServed(a, await client())
})

kind('EngineServer "connection_error" listener', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { client, port } = await eio(t, (engine) => engine.on('connection_error', () => boom(mode, err)))
  const a = await client()
  const res = await fetch(`http://127.0.0.1:${port}/engine.io/?EIO=4&transport=carrier-pigeon`)
  assert.equal(res.status, 400)
  await w.exactly(err)
  await eioServed(a, await client())
})

kind('EngineServer socket.send callback', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { client } = await eio(t, (engine) => engine.on('connection', (socket) => socket.on('message', (data) => {
    if (data === 'ask') socket.send('answer', () => boom(mode, err))
  })))
  const a = await client()
  await a.send('4ask')
  assert.equal(await a.nextText(), '4answer')
  await w.exactly(err)
  await eioServed(a, await client())
})

// ---- core API (uWS.js) ----------------------------------------------------

const CORE = ferroOnly('uWS.js lets a throwing handler become an uncaught exception')

/** An app whose ws route echoes; `behavior` overrides or adds handlers. */
async function core (t, behavior = {}, setup) {
  const server = await startApp({ message: (ws, m, isBinary) => { ws.send(m, isBinary) }, ...behavior }, { setup })
  t.after(() => server.close())
  const clients = []
  t.after(() => { for (const c of clients) c.terminate() })
  const client = async (path = '/') => {
    const c = await connect(`ws://127.0.0.1:${server.port}${path}`)
    clients.push(c)
    return c
  }
  return { server, client }
}

async function coreServed (...clients) {
  for (const c of clients) {
    const v = `echo ${Math.random()}`
    await c.send(v)
    assert.equal(await c.nextText(), v)
  }
}

kind('ws upgrade handler: 500, and the next upgrade is served', async (t, mode, err) => {
  const w = watchWarnings(t)
  let thrown = false
  const accept = acceptWith()
  const { client } = await core(t, {
    upgrade: (res, req, context) => {
      if (!thrown) {
        thrown = true
        return boom(mode, err)
      }
      accept(res, req, context)
    }
  })
  await assert.rejects(client(), (e) => e.statusCode === 500)
  await w.exactly(err)
  await coreServed(await client(), await client())
}, { skip: CORE })

kind('ws open handler', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { client } = await core(t, {
    upgrade: acceptWith((req) => ({ url: req.getUrl() })),
    open: (ws) => { if (ws.getUserData().url === '/boom') return boom(mode, err) }
  })
  const a = await client('/boom')
  await w.exactly(err)
  await coreServed(a, await client())
}, { skip: CORE })

kind('ws message handler', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { client } = await core(t, {
    message: (ws, m, isBinary) => (text(m) === 'boom' ? boom(mode, err) : ws.send(m, isBinary))
  })
  const a = await client()
  await a.send('boom')
  await w.exactly(err)
  await coreServed(a, await client())
}, { skip: CORE })

kind('ws close handler', async (t, mode, err) => {
  const w = watchWarnings(t)
  let thrown = false
  const { client } = await core(t, {
    close: () => {
      if (thrown) return
      thrown = true
      return boom(mode, err)
    }
  })
  const a = await client()
  const b = await client()
  a.ws.close(1000)
  await a.closed
  await w.exactly(err)
  await coreServed(b, await client())
}, { skip: CORE })

kind('ws ping handler', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { client } = await core(t, { ping: () => boom(mode, err) })
  const a = await client()
  a.ws.ping('p')
  await w.exactly(err)
  await coreServed(a, await client())
}, { skip: CORE })

kind('ws pong handler', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { client } = await core(t, { pong: () => boom(mode, err) })
  const a = await client()
  a.ws.pong('p') // unsolicited
  await w.exactly(err)
  await coreServed(a, await client())
}, { skip: CORE })

/** A ws route plus a raw client that has stopped reading; resolves its server-side ws. */
async function stalled (t, behavior) {
  let opened
  const open = new Promise((resolve) => { opened = resolve })
  const { server, client } = await core(t, { open: (ws) => opened(ws), ...behavior })
  const raw = await rawConnect(server.port)
  t.after(() => raw.destroy())
  raw.socket.pause()
  return { ws: await open, raw, client }
}

/** After the raw client reads again: the server-side ws still sends to it. */
async function rawServed (ws, raw) {
  raw.socket.resume()
  await waitFor(() => ws.getBufferedAmount() === 0, 10000, 'the buffer to empty')
  assert.equal(ws.send('still here'), 1)
  for (;;) {
    const frame = await raw.nextDataFrame(5000)
    assert.ok(frame, 'connection still open')
    if (frame.payload.toString() === 'still here') break
  }
}

kind('ws drain handler', async (t, mode, err) => {
  const w = watchWarnings(t)
  let thrown = false
  const { ws, raw, client } = await stalled(t, {
    maxBackpressure: 64 * 1024 * 1024,
    drain: () => {
      if (thrown) return
      thrown = true
      return boom(mode, err)
    }
  })
  stall(ws)
  assert.equal(ws.send(Buffer.alloc(1024), true), 0, 'queued behind backpressure')
  raw.socket.resume()
  await w.exactly(err)
  await rawServed(ws, raw)
  await coreServed(await client())
}, { skip: CORE })

kind('ws dropped handler', async (t, mode, err) => {
  const w = watchWarnings(t)
  let thrown = false
  const { ws, raw, client } = await stalled(t, {
    maxBackpressure: 128 * 1024,
    dropped: () => {
      if (thrown) return
      thrown = true
      return boom(mode, err)
    }
  })
  const results = sendUntilDropped(ws, { chunkSize: 16 * 1024 })
  assert.equal(results.at(-1).status, 2)
  await w.exactly(err)
  await rawServed(ws, raw)
  await coreServed(await client())
}, { skip: ferroOnly('uWS.js v20.30 has no dropped handler') })

// The listen callback runs inside the caller's listen() (as in uWS.js): a
// sync throw reaches the caller (so `if (!ls) throw` stops a program); only
// a rejection, which has no caller left, becomes the warning.
kind('listen callback: a throw reaches the caller of listen(), a rejection is a warning', async (t, mode, err) => {
  const w = watchWarnings(t)
  const app = uWS.App().ws('/*', { message: (ws, m, isBinary) => { ws.send(m, isBinary) } })
  t.after(() => app.close())
  let port
  const listen = () => app.listen('127.0.0.1', 0, (ls) => {
    port = uWS.us_socket_local_port(ls)
    return boom(mode, err)
  })
  if (mode === 'sync') {
    assert.throws(listen, (e) => e === err)
    await w.none()
  } else {
    listen()
    await w.exactly(err)
  }
  const a = await connect(`ws://127.0.0.1:${port}/`)
  const b = await connect(`ws://127.0.0.1:${port}/`)
  t.after(() => { a.terminate(); b.terminate() })
  await coreServed(a, b)
}, { skip: CORE })

kind('HTTP route handler: 500, and the next request is served', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { server, client } = await core(t, {}, (app) => app
    .get('/boom', () => boom(mode, err))
    .get('/ok', (res) => { res.end('fine') }))
  const failed = await httpRequest(server.port, { path: '/boom' })
  assert.equal(failed.status, 500)
  await w.exactly(err)
  const ok = await httpRequest(server.port, { path: '/ok' })
  assert.deepEqual([ok.status, ok.body], [200, 'fine'])
  await coreServed(await client())
}, { skip: CORE })

kind('HTTP onAborted handler', async (t, mode, err) => {
  const w = watchWarnings(t)
  let held
  const { server, client } = await core(t, {}, (app) => app
    .get('/hold', (res) => { held = res.onAborted(() => boom(mode, err)) })
    .get('/ok', (res) => { res.end('fine') }))
  const req = httpRequest(server.port, { path: '/hold', timeout: 200 }).catch(() => {})
  await waitFor(() => held, 3000, 'the held request')
  await req // the client gives up: the request is aborted
  await w.exactly(err)
  const ok = await httpRequest(server.port, { path: '/ok' })
  assert.equal(ok.status, 200)
  await coreServed(await client())
}, { skip: CORE })

kind('HTTP onData handler', async (t, mode, err) => {
  const w = watchWarnings(t)
  const { server, client } = await core(t, {}, (app) => app
    .post('/data', (res) => {
      res.onAborted(() => {})
      res.onData((chunk, last) => {
        if (last) setTimeout(() => res.end('read'), 20)
        return boom(mode, err)
      })
    }))
  const r = await httpRequest(server.port, { method: 'POST', path: '/data', body: 'x' })
  assert.deepEqual([r.status, r.body], [200, 'read'])
  await w.exactly(err)
  await coreServed(await client())
}, { skip: CORE })
