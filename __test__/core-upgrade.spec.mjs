// The upgrade handler (accept with userData, reject, async, abort,
// subprotocol), the request accessors, ws routes, and plain HTTP routes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { startApp, acceptWith, text, EventLog } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'
import { rawRequest, upgradeRequest, httpRequest } from './helpers/raw-client.mjs'
import { ferroOnly, delay } from './helpers/env.mjs'

test('upgrade handler sees the request; userData fields are on ws.getUserData() in open, message and close', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({
    upgrade: (res, req, context) => {
      log.push('request', {
        url: req.getUrl(),
        query: req.getQuery(),
        method: req.getMethod(),
        custom: req.getHeader('x-custom-header'),
        missing: req.getHeader('x-not-sent'),
        key: req.getHeader('sec-websocket-key')
      })
      res.upgrade({ user: 'alice', room: 42, tags: ['a', 'b'] }, req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context)
    },
    open: (ws) => {
      const data = ws.getUserData()
      log.push('open', { user: data.user, room: data.room, tags: data.tags, same: ws.getUserData() === data })
      data.counter = 1
    },
    message: (ws) => {
      const data = ws.getUserData()
      data.counter++
      log.push('message', { user: data.user, counter: data.counter })
    },
    close: (ws) => {
      const data = ws.getUserData()
      log.push('close', { user: data.user, counter: data.counter })
    }
  }, { pattern: '/chat' })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/chat?room=42&x=%20y`, { headers: { 'X-Custom-Header': 'Some Value' } })
  const [request] = await log.wait('request')
  assert.equal(request.url, '/chat')
  assert.equal(request.query, 'room=42&x=%20y')
  assert.equal(request.method, 'get')
  assert.equal(request.custom, 'Some Value')
  assert.equal(request.missing, '')
  assert.equal(request.key.length, 24)
  const [open] = await log.wait('open')
  assert.equal(open.user, 'alice')
  assert.equal(open.room, 42)
  assert.deepEqual(open.tags, ['a', 'b'])
  assert.equal(open.same, true, 'getUserData() returns the same object every time')
  await client.send('one')
  const [message] = await log.wait('message')
  assert.deepEqual({ user: message.user, counter: message.counter }, { user: 'alice', counter: 2 })
  client.ws.close(1000)
  const [closed] = await log.wait('close')
  assert.deepEqual({ user: closed.user, counter: closed.counter }, { user: 'alice', counter: 2 })
})

test('upgrade handler sees the original client header value, not a lowercased one', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({
    upgrade: (res, req, context) => {
      log.push('request', { auth: req.getHeader('authorization') })
      acceptWith()(res, req, context)
    }
  })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/`, { headers: { Authorization: 'Bearer AbC' } })
  t.after(() => client.terminate())
  const [request] = await log.wait('request')
  assert.equal(request.auth, 'Bearer AbC')
})

test('ws.getRemoteAddressAsText() is an ArrayBuffer holding "127.0.0.1"', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({
    open: (ws) => {
      const address = ws.getRemoteAddressAsText()
      log.push('open', { isArrayBuffer: address instanceof ArrayBuffer, text: text(address) })
    }
  })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/`)
  t.after(() => client.terminate())
  const [open] = await log.wait('open')
  assert.equal(open.isArrayBuffer, true)
  assert.equal(open.text, '127.0.0.1')
})

test('without an upgrade handler every valid upgrade is accepted with empty userData', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({ open: (ws) => log.push('open', { keys: Object.keys(ws.getUserData() ?? {}) }) })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/anything`)
  t.after(() => client.terminate())
  const [open] = await log.wait('open')
  assert.deepEqual(open.keys, [])
})

test('upgrade rejected with writeStatus("401 Unauthorized").end("no"): client gets 401 and body, open never runs', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({
    upgrade: (res) => { res.writeStatus('401 Unauthorized').writeHeader('X-Reason', 'token').end('no') },
    open: log.on('open')
  })
  t.after(() => server.close())
  await assert.rejects(connect(`ws://127.0.0.1:${server.port}/`), (err) => err.statusCode === 401)
  const res = await httpRequest(server.port, {
    headers: { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' }
  })
  assert.equal(res.status, 401)
  assert.equal(res.headers['x-reason'], 'token')
  assert.equal(res.body, 'no')
  assert.equal(log.of('open').length, 0)
})

test('async upgrade: res.upgrade after an await (headers copied first) works', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({
    upgrade: async (res, req, context) => {
      const key = req.getHeader('sec-websocket-key')
      const protocol = req.getHeader('sec-websocket-protocol')
      const extensions = req.getHeader('sec-websocket-extensions')
      const token = req.getQuery()
      let aborted = false
      res.onAborted(() => { aborted = true })
      await delay(100) // e.g. a database lookup
      if (aborted) return
      res.cork(() => res.upgrade({ token }, key, protocol, extensions, context))
    },
    open: (ws) => log.push('open', { token: ws.getUserData().token }),
    message: (ws, message) => { ws.send(message) }
  })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/?t=secret`)
  t.after(() => client.terminate())
  const [open] = await log.wait('open')
  assert.equal(open.token, 't=secret')
  await client.send('after async upgrade')
  assert.equal(await client.nextText(), 'after async upgrade')
})

test('async upgrade: onAborted runs when the client leaves first; open never runs; server keeps serving', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({
    upgrade: async (res, req, context) => {
      const key = req.getHeader('sec-websocket-key')
      const url = req.getUrl()
      let aborted = false
      res.onAborted(() => { aborted = true; log.push('aborted', { url }) })
      log.push('upgrade', { url })
      await delay(url === '/slow' ? 500 : 0)
      if (aborted) return
      res.cork(() => res.upgrade({ url }, key, '', '', context))
    },
    open: (ws) => log.push('open', { url: ws.getUserData().url }),
    message: (ws, message) => { ws.send(message) }
  })
  t.after(() => server.close())
  const socket = net.connect({ host: '127.0.0.1', port: server.port })
  socket.on('error', () => {})
  t.after(() => socket.destroy())
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write(upgradeRequest({ path: '/slow' }))
  await log.wait('upgrade')
  socket.destroy() // leave while the handler is still awaiting
  const [aborted] = await log.wait('aborted')
  assert.equal(aborted.url, '/slow')
  await delay(700) // past the handler's await
  assert.equal(log.of('open').length, 0)
  const client = await connect(`ws://127.0.0.1:${server.port}/fast`)
  t.after(() => client.terminate())
  await client.send('still serving')
  assert.equal(await client.nextText(), 'still serving')
})

test('subprotocol chosen in upgrade is sent back; none offered -> no Sec-WebSocket-Protocol header', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({
    upgrade: (res, req, context) => {
      const offered = req.getHeader('sec-websocket-protocol')
      log.push('offered', { offered })
      const choice = offered.split(',').map((s) => s.trim()).find((p) => p === 'chat.v2') ?? ''
      res.upgrade({}, req.getHeader('sec-websocket-key'), choice, req.getHeader('sec-websocket-extensions'), context)
    }
  })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/`, {}, ['chat.v1', 'chat.v2'])
  t.after(() => client.terminate())
  assert.equal(client.ws.protocol, 'chat.v2')
  const [offered] = await log.wait('offered')
  assert.equal(offered.offered, 'chat.v1,chat.v2') // as the ws client writes it
  const res = await rawRequest(server.port, upgradeRequest())
  t.after(() => res.socket.destroy())
  assert.equal(res.status, 101)
  assert.equal(res.headers['sec-websocket-protocol'], undefined)
})

test('two ws routes with different patterns use their own behaviors', { timeout: 10000 }, async (t) => {
  const server = await startApp(null, {
    setup: (app) => {
      app.ws('/upper', { message: (ws, message) => { ws.send(text(message).toUpperCase()) } })
      app.ws('/lower', { message: (ws, message) => { ws.send(text(message).toLowerCase()) } })
    }
  })
  t.after(() => server.close())
  const upper = await connect(`ws://127.0.0.1:${server.port}/upper`)
  t.after(() => upper.terminate())
  const lower = await connect(`ws://127.0.0.1:${server.port}/lower`)
  t.after(() => lower.terminate())
  await upper.send('MiXeD')
  await lower.send('MiXeD')
  assert.equal(await upper.nextText(), 'MIXED')
  assert.equal(await lower.nextText(), 'mixed')
})

// ---- HTTP routes ---------------------------------------------------------

async function httpServer (t) {
  const server = await startApp(null, {
    setup: (app) => {
      app.get('/hello', (res, req) => {
        res.writeStatus('201 Created').writeHeader('X-Route', 'hello').writeHeader('Content-Type', 'text/plain')
          .end(`hi ${req.getQuery()}`)
      })
      app.get('/files/*', (res, req) => { res.end(`file ${req.getUrl()}`) })
      app.get('/files/exact', (res) => { res.end('exact file') })
      app.any('/any', (res, req) => { res.end(`any ${req.getMethod()}`) })
      app.get('/async', (res) => {
        let aborted = false
        res.onAborted(() => { aborted = true })
        setTimeout(() => { if (!aborted) res.cork(() => res.end('later')) }, 50)
      })
    }
  })
  t.after(() => server.close())
  return server
}

test('app.get: status line, headers and body from writeStatus/writeHeader/end', { timeout: 10000 }, async (t) => {
  const { port } = await httpServer(t)
  const res = await httpRequest(port, { path: '/hello?name=bob' })
  assert.equal(res.status, 201)
  assert.equal(res.headers['x-route'], 'hello')
  assert.equal(res.headers['content-type'], 'text/plain')
  assert.equal(res.body, 'hi name=bob')
})

test('wildcard /* route matches deeper paths; an exact route wins over the wildcard', { timeout: 10000 }, async (t) => {
  const { port } = await httpServer(t)
  assert.equal((await httpRequest(port, { path: '/files/a/b.txt' })).body, 'file /files/a/b.txt')
  assert.equal((await httpRequest(port, { path: '/files/exact' })).body, 'exact file')
})

test('app.any matches every method; getMethod() is lowercase', { timeout: 10000 }, async (t) => {
  const { port } = await httpServer(t)
  for (const method of ['GET', 'POST', 'DELETE', 'PUT', 'PATCH']) {
    const res = await httpRequest(port, { method, path: '/any', body: method === 'GET' || method === 'DELETE' ? undefined : '' })
    assert.equal(res.status, 200)
    assert.equal(res.body, `any ${method.toLowerCase()}`)
  }
})

test('response ended later (after onAborted was attached) is delivered', { timeout: 10000 }, async (t) => {
  const { port } = await httpServer(t)
  const res = await httpRequest(port, { path: '/async' })
  assert.equal(res.status, 200)
  assert.equal(res.body, 'later')
})

test('plain GET on a path matched by both app.ws and app.get reaches the HTTP handler', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({ open: log.on('open') }, {
    setup: (app) => app.get('/*', (res, req) => { res.end(`page ${req.getUrl()}`) })
  })
  t.after(() => server.close())
  const res = await httpRequest(server.port, { path: '/index.html' })
  assert.equal(res.status, 200)
  assert.equal(res.body, 'page /index.html')
  const client = await connect(`ws://127.0.0.1:${server.port}/index.html`)
  t.after(() => client.terminate())
  await log.wait('open')
})

test('unmatched route and wrong method get no successful response', { timeout: 10000 }, async (t) => {
  const { port } = await httpServer(t)
  for (const [method, path] of [['GET', '/nope'], ['POST', '/hello']]) {
    const outcome = await httpRequest(port, { method, path, body: method === 'POST' ? '' : undefined })
      .then((res) => res.status, () => 'closed')
    assert.ok(outcome === 'closed' || outcome === 404, `${method} ${path} -> ${outcome}`)
  }
})

test('unmatched route answers 404 (ferrosocket-only: uWS.js closes the connection without a response)',
  { timeout: 10000, skip: ferroOnly('uWS.js closes unrouted requests') }, async (t) => {
    const { port } = await httpServer(t)
    const res = await httpRequest(port, { path: '/nope' })
    assert.equal(res.status, 404)
  })
