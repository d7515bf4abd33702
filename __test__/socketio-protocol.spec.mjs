// Engine.IO v4 / Socket.IO v5 wire conformance, written from the protocol
// specs (../shared/docs/PROTOCOL.md; socketio/socket.io docs/engine.io-protocol
// and docs/socket.io-protocol): raw HTTP long-polling with fetch and raw
// WebSocket messages with `ws`, against `new Server(httpServer, opts)`.
//
// FERRO_IMPL=socket.io runs the same file against socket.io 4.8 (a
// devDependency); that is how these tests are themselves checked:
//   FERRO_IMPL=socket.io node --test __test__/socketio-protocol.spec.mjs
//
// Where socket.io's behaviour is the spec, the tests hold ferrosocket to it
// (drop-in replacement); where the protocol allows a choice, they accept the
// range (and say so). The official suites are run separately, not vendored:
// conformance/socketio/README.md.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { createRequire } from 'node:module'
import WebSocket from 'ws'
import { httpRequest } from './helpers/raw-client.mjs'
import { delay, withTimeout, waitFor } from './helpers/env.mjs'

const require = createRequire(import.meta.url)
const REFERENCE = process.env.FERRO_IMPL === 'socket.io'
const { Server } = REFERENCE ? require('socket.io') : require('../index.js')

// Heartbeat of the official suites: short, so timeouts show within a test.
const PING_INTERVAL = 300
const PING_TIMEOUT = 200
const SEP = '\x1e'
const T = { timeout: 8000 }

// ---------------------------------------------------------------------------
// Servers

// Server-side observations a test can await: push(type, value), wait(type).
class Recorder {
  constructor () {
    this.items = []
    this.waiters = new Set()
  }

  push (type, value) {
    this.items.push({ type, value })
    for (const w of [...this.waiters]) w()
  }

  of (type) {
    return this.items.filter((i) => i.type === type).map((i) => i.value)
  }

  wait (type, { count = 1, timeout = 3000 } = {}) {
    return withTimeout(new Promise((resolve) => {
      const check = () => {
        const found = this.of(type)
        if (found.length >= count) {
          this.waiters.delete(check)
          resolve(found)
        }
      }
      this.waiters.add(check)
      check()
    }), timeout, `${count} server-side '${type}'`)
  }
}

// The handlers the official Socket.IO suite expects ('message' echoed as
// 'message-back', 'message-with-ack' acknowledged with its own arguments) plus
// a record of what reached the server.
function installHandlers (io, rec) {
  const onConnection = (socket) => {
    const nsp = socket.nsp.name
    rec.push('connection', { nsp, id: socket.id, auth: socket.handshake.auth, socket })
    socket.on('disconnect', (reason) => rec.push('disconnect', { nsp, id: socket.id, reason }))
    socket.on('message', (...args) => {
      rec.push('message', { nsp, args })
      socket.emit('message-back', ...args)
    })
    socket.on('message-with-ack', (...args) => {
      const ack = args.pop()
      rec.push('message-with-ack', { nsp, args })
      ack(...args)
    })
    socket.on('error', (err) => rec.push('error', { nsp, message: err?.message ?? String(err) }))
  }
  io.on('connection', onConnection)
  io.of('/custom').on('connection', onConnection)
  const guarded = io.of('/guarded')
  guarded.use((socket, next) => {
    if (socket.handshake.auth.token === 'ok') return next()
    next(Object.assign(new Error('not authorized'), { data: { code: 401 } }))
  })
  guarded.on('connection', onConnection)
}

// Starts `new Server(httpServer, opts)` on 127.0.0.1, port 0, with the
// official suites' heartbeat. Returns { io, httpServer, port, base, wsBase,
// ws, rec, close }. `setup(httpServer)` runs before the Server is attached
// (to add the app's own request handler).
async function start (t, opts = {}, { handlers = true, setup } = {}) {
  const httpServer = http.createServer()
  if (setup) setup(httpServer)
  const options = { pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT, ...opts }
  const io = new Server(httpServer, options)
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
  const { port } = httpServer.address()
  const rec = new Recorder()
  if (handlers) installHandlers(io, rec)
  // engine.io keeps a polling transport closed with no GET pending alive for
  // 30 s (its closeTimeout, not an option), holding the test process open
  // that long after the last test; no test depends on that wait.
  if (REFERENCE) io.engine.on('connection', (socket) => { socket.transport.closeTimeout = 500 })
  const path = (options.path ?? '/socket.io').replace(/\/$/, '')
  const peers = []
  let closed = false
  const env = {
    io,
    httpServer,
    port,
    rec,
    base: `http://127.0.0.1:${port}${path}/`,
    wsBase: `ws://127.0.0.1:${port}${path}/`,
    // Opens a raw WebSocket (see WsPeer.open) closed at teardown.
    ws: async (query = '', o = {}) => {
      const peer = await WsPeer.open(`${env.wsBase}?EIO=4&transport=websocket${query}`, o)
      peers.push(peer)
      return peer
    },
    close () {
      if (closed) return
      closed = true
      for (const p of peers) p.terminate()
      try {
        io.close()
      } finally {
        // Even when close() throws: a listening server would keep the test
        // process alive.
        httpServer.closeAllConnections()
        if (httpServer.listening) httpServer.close()
      }
    }
  }
  t.after(() => env.close())
  return env
}

// ---------------------------------------------------------------------------
// Raw clients

// Engine.IO over WebSocket, one packet per message. Text arrives as a string,
// binary as a Buffer. Server pings ("2") are answered with "3" and skipped
// (pings: 'answer'), skipped unanswered ('ignore'), or delivered ('keep').
class WsPeer {
  constructor (ws, { pings = 'answer' } = {}) {
    this.ws = ws
    this.pings = pings
    this.queue = []
    this.pingCount = 0
    this.waiters = new Set()
    this.closeInfo = null
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() }
        this.wake()
        resolve(this.closeInfo)
      })
    })
    ws.on('error', () => {})
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        const text = data.toString()
        if (text === '2') {
          this.pingCount++
          if (this.pings === 'answer') ws.send('3')
          if (this.pings !== 'keep') return this.wake()
        }
        this.queue.push(text)
      } else {
        this.queue.push(Buffer.from(data))
      }
      this.wake()
    })
  }

  wake () {
    for (const w of [...this.waiters]) w()
  }

  // Resolves once open; rejects with { status, body } when the server
  // answers the upgrade with an HTTP error, or on a network error.
  static open (url, { pings, headers } = {}) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers })
      const peer = new WsPeer(ws, { pings })
      const timer = setTimeout(() => { ws.terminate(); reject(new Error(`no WebSocket handshake from ${url}`)) }, 3000)
      ws.once('open', () => { clearTimeout(timer); resolve(peer) })
      ws.once('unexpected-response', (req, res) => {
        clearTimeout(timer)
        let body = ''
        res.on('data', (d) => { body += d })
        res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, body })))
        res.on('error', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, body })))
      })
      ws.once('error', (err) => { clearTimeout(timer); reject(err) })
    })
  }

  // Rejects when the connection closes first, or after `timeout`.
  next (timeout = 2000) {
    return withTimeout(new Promise((resolve, reject) => {
      const check = () => {
        if (this.queue.length) {
          this.waiters.delete(check)
          resolve(this.queue.shift())
        } else if (this.closeInfo) {
          this.waiters.delete(check)
          reject(new Error(`connection closed (${this.closeInfo.code}) before the next message`))
        }
      }
      this.waiters.add(check)
      check()
    }), timeout, 'a WebSocket message')
  }

  // The Engine.IO open packet, parsed.
  async handshake () {
    const text = await this.next()
    assert.equal(typeof text, 'string')
    assert.equal(text[0], '0', `expected an open packet, got ${text}`)
    return JSON.parse(text.slice(1))
  }

  // Engine.IO handshake then Socket.IO CONNECT to `nsp`; returns the
  // CONNECT reply's payload ({ sid }).
  async connect (nsp = '/', auth) {
    await this.handshake()
    return this.join(nsp, auth)
  }

  async join (nsp = '/', auth) {
    const prefix = nsp === '/' ? '40' : `40${nsp},`
    this.send(prefix + (auth ? JSON.stringify(auth) : ''))
    const reply = await this.next()
    assert.ok(reply.startsWith(prefix), `expected ${prefix}…, got ${reply}`)
    return JSON.parse(reply.slice(prefix.length))
  }

  send (data) {
    this.ws.send(data)
  }

  // Resolves the close info, or rejects if still open after `timeout`.
  whenClosed (timeout = 2000) {
    return withTimeout(this.closed, timeout, 'the server to close the WebSocket')
  }

  terminate () {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate()
  }
}

// Engine.IO over HTTP long-polling. Every request carries a 3 s abort so a
// server that never answers fails the test instead of hanging it.
class PollingPeer {
  constructor (base, sid, open) {
    this.base = base
    this.sid = sid
    this.open = open
  }

  static async open (base, query = '', init = {}) {
    const res = await request(`${base}?EIO=4&transport=polling${query}`, init)
    assert.equal(res.status, 200, `handshake: ${res.status} ${res.body}`)
    assert.equal(res.body[0], '0', `expected an open packet, got ${res.body}`)
    const open = JSON.parse(res.body.slice(1))
    return new PollingPeer(base, open.sid, open)
  }

  url (extra = '') {
    return `${this.base}?EIO=4&transport=polling&sid=${encodeURIComponent(this.sid)}${extra}`
  }

  get (init = {}) {
    return request(this.url(), init)
  }

  post (body, init = {}) {
    return request(this.url(), { method: 'POST', body, ...init })
  }

  // GETs until at least one packet other than a ping arrives (each ping is
  // answered with a POST "3"); returns those packets, split on \x1e.
  async receive () {
    for (let i = 0; i < 10; i++) {
      const res = await this.get()
      assert.equal(res.status, 200, `poll: ${res.status} ${res.body}`)
      const packets = res.body.split(SEP)
      const rest = packets.filter((p) => p !== '2')
      if (rest.length < packets.length) assert.equal((await this.post('3')).status, 200)
      if (rest.length) return rest
    }
    throw new Error('ten polls brought nothing but pings')
  }

  // Socket.IO CONNECT over polling; returns the CONNECT reply's payload.
  async join (nsp = '/', auth) {
    const prefix = nsp === '/' ? '40' : `40${nsp},`
    assert.equal((await this.post(prefix + (auth ? JSON.stringify(auth) : ''))).body, 'ok')
    const [reply] = await this.receive()
    assert.ok(reply.startsWith(prefix), `expected ${prefix}…, got ${reply}`)
    return JSON.parse(reply.slice(prefix.length))
  }
}

// fetch with a deadline; resolves { status, headers, body } (body as text).
async function request (url, { timeout = 3000, signal, ...init } = {}) {
  const signals = [AbortSignal.timeout(timeout), signal].filter(Boolean)
  const res = await fetch(url, { ...init, signal: AbortSignal.any(signals) })
  return { status: res.status, headers: res.headers, body: await res.text() }
}

// A WebSocket request the server must not turn into a session: refused with
// HTTP 400, or (engine.io, for a bad EIO) accepted then closed before any
// Engine.IO packet. Returns the refusal status, or 101.
async function refusedOrClosed (url, { probe = false } = {}) {
  const peer = await WsPeer.open(url).catch((err) => err)
  if (!(peer instanceof WsPeer)) {
    assert.equal(peer.status, 400, `${url}: ${peer.message}`)
    return peer.status
  }
  if (probe) peer.send('2probe')
  await peer.whenClosed()
  assert.deepEqual(peer.queue, [], `${url} answered`)
  return 101
}

// A JSON error body { code, message }.
function errorBody (res) {
  try {
    return JSON.parse(res.body)
  } catch {
    assert.fail(`expected a JSON error body, got ${JSON.stringify(res.body)} (status ${res.status})`)
  }
}

async function expectError (res, status, code, message) {
  assert.equal(res.status, status, `status for ${JSON.stringify(res.body)}`)
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
  assert.deepEqual(errorBody(res), { code, message })
}

// A binary packet as the polling transport writes it: 'b' + base64.
const b64 = (bytes) => 'b' + Buffer.from(bytes).toString('base64')

const OPEN_KEYS = ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']
const SID = /^[\w-]{20}$/

// ---------------------------------------------------------------------------
// Engine.IO: attach and handshake

describe('Engine.IO handshake', () => {
  test('attach: new Server(httpServer, opts) serves Engine.IO on the http server, other paths reach the app', T, async (t) => {
    const env = await start(t, {}, {
      setup: (srv) => srv.on('request', (req, res) => { if (!req.url.startsWith('/socket.io/')) res.writeHead(404).end('app') })
    })
    const app = await request(`http://127.0.0.1:${env.port}/other`)
    assert.deepEqual([app.status, app.body], [404, 'app'])
    await PollingPeer.open(env.base)
    await (await env.ws()).handshake()
  })

  test('polling: open packet has exactly sid, upgrades ["websocket"], pingInterval, pingTimeout, maxPayload', T, async (t) => {
    const env = await start(t)
    const res = await request(`${env.base}?EIO=4&transport=polling&t=Nx1`)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type'), /^text\/plain; ?charset=UTF-8$/i)
    assert.equal(res.body[0], '0')
    const open = JSON.parse(res.body.slice(1))
    assert.deepEqual(Object.keys(open).sort(), OPEN_KEYS)
    assert.match(open.sid, SID)
    assert.deepEqual(open.upgrades, ['websocket'])
    assert.equal(open.pingInterval, PING_INTERVAL)
    assert.equal(open.pingTimeout, PING_TIMEOUT)
    assert.equal(open.maxPayload, 1e6)
    const other = await PollingPeer.open(env.base)
    assert.notEqual(other.sid, open.sid)
  })

  test('websocket: open packet has the same keys and upgrades []', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    const open = await peer.handshake()
    assert.deepEqual(Object.keys(open).sort(), OPEN_KEYS)
    assert.match(open.sid, SID)
    assert.deepEqual(open.upgrades, [])
    assert.equal(open.pingInterval, PING_INTERVAL)
    assert.equal(open.pingTimeout, PING_TIMEOUT)
    assert.equal(open.maxPayload, 1e6)
  })

  test('options shape the open packet: maxHttpBufferSize is maxPayload, no upgrades when allowUpgrades is false', T, async (t) => {
    const env = await start(t, { maxHttpBufferSize: 5000, allowUpgrades: false, pingInterval: 1234, pingTimeout: 567 })
    const { open } = await PollingPeer.open(env.base)
    assert.deepEqual(open.upgrades, [])
    assert.equal(open.maxPayload, 5000)
    assert.equal(open.pingInterval, 1234)
    assert.equal(open.pingTimeout, 567)
  })

  test('transports: ["websocket"] refuses polling with code 0; ["polling"] offers no upgrade', T, async (t) => {
    const wsOnly = await start(t, { transports: ['websocket'] })
    await expectError(await request(`${wsOnly.base}?EIO=4&transport=polling`), 400, 0, 'Transport unknown')
    await (await wsOnly.ws()).handshake()
    const pollOnly = await start(t, { transports: ['polling'] })
    const { open } = await PollingPeer.open(pollOnly.base)
    assert.deepEqual(open.upgrades, [])
  })

  test('path option: the server answers on its path only', T, async (t) => {
    const env = await start(t, { path: '/rt' }, {
      setup: (srv) => srv.on('request', (req, res) => { if (!req.url.startsWith('/rt/')) res.writeHead(404).end('app') })
    })
    await PollingPeer.open(`http://127.0.0.1:${env.port}/rt/`)
    const peer = await env.ws()
    await peer.handshake()
    const res = await request(`http://127.0.0.1:${env.port}/socket.io/?EIO=4&transport=polling`)
    assert.equal(res.status, 404)
  })
})

// ---------------------------------------------------------------------------
// Engine.IO: HTTP errors

describe('Engine.IO HTTP errors', () => {
  test('code 0 "Transport unknown": transport missing or unknown', T, async (t) => {
    const env = await start(t)
    await expectError(await request(`${env.base}?EIO=4`), 400, 0, 'Transport unknown')
    await expectError(await request(`${env.base}?EIO=4&transport=abc`), 400, 0, 'Transport unknown')
    await expectError(await request(`${env.base}?EIO=4&transport=webtransport`), 400, 0, 'Transport unknown')
  })

  test('code 1 "Session ID unknown": GET and POST with an unknown sid', T, async (t) => {
    const env = await start(t)
    await expectError(await request(`${env.base}?EIO=4&transport=polling&sid=nope`), 400, 1, 'Session ID unknown')
    await expectError(await request(`${env.base}?EIO=4&transport=polling&sid=nope`, { method: 'POST', body: '40' }), 400, 1, 'Session ID unknown')
  })

  test('code 2 "Bad handshake method": a handshake other than GET', T, async (t) => {
    const env = await start(t)
    for (const method of ['POST', 'PUT', 'DELETE']) {
      await expectError(await request(`${env.base}?EIO=4&transport=polling`, { method }), 400, 2, 'Bad handshake method')
    }
  })

  test('code 3 "Bad request": websocket handshake without an upgrade, polling on a websocket session', T, async (t) => {
    const env = await start(t)
    await expectError(await request(`${env.base}?EIO=4&transport=websocket`), 400, 3, 'Bad request')
    const peer = await env.ws()
    const { sid } = await peer.handshake()
    await expectError(await request(`${env.base}?EIO=4&transport=polling&sid=${sid}`), 400, 3, 'Bad request')
  })

  test('an Origin header with a control character is refused with 400', T, async (t) => {
    const env = await start(t)
    for (const c of ['\x01', '\x7f']) {
      const res = await httpRequest(env.port, { path: '/socket.io/?EIO=4&transport=polling', headers: { Origin: `http://a${c}b.example` } })
      assert.equal(res.status, 400)
      // Node's HTTP parser refuses it before engine.io can answer code 3
      // "Bad request"; either is a refusal.
      if (res.body) assert.deepEqual(JSON.parse(res.body), { code: 3, message: 'Bad request' })
    }
    await PollingPeer.open(env.base)
  })

  test('code 5 "Unsupported protocol version": EIO missing, not a number, or 3 without allowEIO3', T, async (t) => {
    const env = await start(t)
    for (const q of ['transport=polling', 'EIO=abc&transport=polling', 'EIO=3&transport=polling', 'EIO=5&transport=polling']) {
      await expectError(await request(`${env.base}?${q}`), 400, 5, 'Unsupported protocol version')
    }
  })

  test('websocket upgrades with a bad EIO, transport or sid are refused (400) or closed at once, and the server keeps serving', T, async (t) => {
    const env = await start(t)
    for (const q of ['?transport=websocket', '?EIO=abc&transport=websocket', '?EIO=3&transport=websocket', '?EIO=4', '?EIO=4&transport=abc', '?EIO=4&transport=websocket&sid=nope']) {
      await refusedOrClosed(env.wsBase + q)
    }
    await (await env.ws()).handshake()
  })

  test('code 4 "Forbidden": allowRequest refusing a polling handshake gives 403, with its own message when given', T, async (t) => {
    const seen = []
    const env = await start(t, {
      allowRequest: (req, cb) => {
        seen.push({ url: req.url, header: req.headers['x-allow'] })
        if (req.headers['x-allow'] === 'yes') return cb(null, true)
        if (req.headers['x-allow'] === 'later') return setTimeout(() => cb(null, true), 20)
        cb(req.headers['x-allow'] === 'why' ? 'Go away' : null, false)
      }
    })
    await expectError(await request(`${env.base}?EIO=4&transport=polling`), 403, 4, 'Forbidden')
    await expectError(await request(`${env.base}?EIO=4&transport=polling`, { headers: { 'x-allow': 'why' } }), 403, 4, 'Go away')
    const peer = await PollingPeer.open(env.base, '', { headers: { 'x-allow': 'yes' } })
    await PollingPeer.open(env.base, '', { headers: { 'x-allow': 'later' } })
    assert.equal(seen.length, 4)
    assert.match(seen[0].url, /^\/socket\.io\/\?EIO=4&transport=polling/)
    // Only handshakes are checked: requests carrying a known sid are not.
    assert.equal((await peer.post('40')).status, 200)
    await peer.receive()
    assert.equal(seen.length, 4)
  })

  test('allowRequest refusing a websocket handshake: the upgrade is refused, no session opens', T, async (t) => {
    const env = await start(t, { allowRequest: (req, cb) => cb(null, req.headers['x-allow'] === 'yes') })
    const err = await WsPeer.open(`${env.wsBase}?EIO=4&transport=websocket`).then((p) => { p.terminate(); return null }, (e) => e)
    assert.ok(err?.status, 'upgrade was accepted')
    // socket.io answers an upgrade refusal with 400 whatever the code; 403 is
    // what the HTTP form uses. Either refuses.
    assert.ok([400, 403].includes(err.status), `status ${err.status}`)
    const ok = await env.ws('', { headers: { 'x-allow': 'yes' } })
    await ok.handshake()
  })

  test('io.engine emits connection_error with req, code and message', T, async (t) => {
    const env = await start(t)
    const errors = []
    env.io.engine.on('connection_error', (err) => errors.push(err))
    await request(`${env.base}?EIO=4&transport=polling&sid=nope`)
    await request(`${env.base}?EIO=4&transport=abc`)
    assert.equal(errors.length, 2)
    assert.deepEqual(errors.map((e) => [e.code, e.message]), [[1, 'Session ID unknown'], [0, 'Transport unknown']])
    assert.match(errors[0].req.url, /sid=nope/)
  })
})

// ---------------------------------------------------------------------------
// Engine.IO: long-polling framing and session rules

describe('Engine.IO long-polling', () => {
  test('POST answers 200 "ok"; a held GET is answered when the server has data', T, async (t) => {
    const env = await start(t, { pingInterval: 5000, pingTimeout: 5000 })
    const peer = await PollingPeer.open(env.base)
    const post = await peer.post('40')
    assert.deepEqual([post.status, post.body], [200, 'ok'])
    const [reply] = await peer.receive()
    assert.match(reply, /^40\{"sid":"[^"]+"\}$/)
    const [{ socket }] = await env.rec.wait('connection')
    const held = peer.get()
    await delay(100)
    socket.emit('late', 1)
    const res = await held
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type'), /^text\/plain; ?charset=UTF-8$/i)
    assert.equal(res.body, '42["late",1]')
  })

  test('several packets in one POST (\\x1e-separated) are all processed in order', T, async (t) => {
    const env = await start(t)
    const peer = await PollingPeer.open(env.base)
    await peer.join()
    const post = await peer.post(['42["message","a"]', '42["message","b"]', '421["message-with-ack","c"]'].join(SEP))
    assert.equal(post.body, 'ok')
    const got = []
    while (got.length < 3) got.push(...await peer.receive())
    assert.deepEqual(got, ['42["message-back","a"]', '42["message-back","b"]', '431["c"]'])
  })

  test('packets queued while no GET is pending come back in one \\x1e-joined payload', T, async (t) => {
    const env = await start(t, { pingInterval: 5000, pingTimeout: 5000 })
    const peer = await PollingPeer.open(env.base)
    await peer.join()
    const [{ socket }] = await env.rec.wait('connection')
    socket.emit('n', 0)
    socket.emit('n', 1)
    socket.emit('n', 2)
    const res = await peer.get()
    assert.equal(res.body, ['42["n",0]', '42["n",1]', '42["n",2]'].join(SEP))
  })

  test('binary attachments travel as b+base64 records, both directions', T, async (t) => {
    const env = await start(t, { pingInterval: 5000, pingTimeout: 5000 })
    const peer = await PollingPeer.open(env.base)
    await peer.join()
    const post = await peer.post(['451-["message",{"_placeholder":true,"num":0}]', b64([1, 2, 3, 4])].join(SEP))
    assert.equal(post.body, 'ok')
    const [{ args }] = await env.rec.wait('message')
    assert.ok(Buffer.isBuffer(args[0]), 'the attachment did not reach the handler as a Buffer')
    assert.deepEqual([...args[0]], [1, 2, 3, 4])
    const res = await peer.get()
    assert.equal(res.body, ['451-["message-back",{"_placeholder":true,"num":0}]', 'bAQIDBA=='].join(SEP))
  })

  test('heartbeat: a GET brings "2" every pingInterval, a POSTed "3" keeps the session', T, async (t) => {
    const env = await start(t)
    const peer = await PollingPeer.open(env.base)
    for (let i = 0; i < 3; i++) {
      const res = await peer.get()
      assert.deepEqual([res.status, res.body], [200, '2'])
      assert.equal((await peer.post('3')).status, 200)
    }
    assert.equal((await peer.post('40')).body, 'ok')
  })

  test('ping timeout: no pong within pingTimeout closes the session (reason "ping timeout"), its sid then 400', T, async (t) => {
    const env = await start(t)
    const peer = await PollingPeer.open(env.base)
    assert.equal((await peer.post('40')).body, 'ok')
    const [reply] = await peer.receive()
    assert.match(reply, /^40/)
    const [{ reason }] = await env.rec.wait('disconnect', { timeout: 3000 })
    assert.equal(reason, 'ping timeout')
    await expectError(await peer.get(), 400, 1, 'Session ID unknown')
  })

  test('a second concurrent GET gets 400 and closes the session: the pending GET receives "1"', T, async (t) => {
    const env = await start(t, { pingInterval: 5000, pingTimeout: 5000 })
    const peer = await PollingPeer.open(env.base)
    const first = peer.get()
    await delay(50)
    const second = await request(peer.url('&t=burst'))
    // engine.io answers 400; the official suite also accepts 500.
    assert.ok([400, 500].includes(second.status), `second GET: ${second.status}`)
    const res = await first
    assert.deepEqual([res.status, res.body], [200, '1'])
    assert.equal((await peer.get()).status, 400)
  })

  test('a second concurrent POST gets 400 and closes the session', T, async (t) => {
    const env = await start(t, { pingInterval: 5000, pingTimeout: 5000 })
    const peer = await PollingPeer.open(env.base)
    assert.equal((await peer.post('40')).body, 'ok')
    await peer.receive()
    // The first POST announces 20 bytes and sends 5, so it is still open.
    const path = `/socket.io/?EIO=4&transport=polling&sid=${peer.sid}`
    const slow = await new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: env.port, path, method: 'POST', headers: { 'Content-Length': 20, 'Content-Type': 'text/plain;charset=UTF-8' } })
      req.on('error', () => {})
      req.flushHeaders()
      req.write('42["m')
      resolve(req)
    })
    t.after(() => slow.destroy())
    await delay(50)
    const second = await peer.post('42["message","x"]')
    assert.equal(second.status, 400)
    await waitFor(() => env.rec.of('disconnect').length, 2000, 'the session to close')
    assert.equal((await peer.get()).status, 400)
    assert.equal(env.rec.of('message').length, 0)
  })

  test('an aborted GET closes the session (reason "transport error")', T, async (t) => {
    const env = await start(t, { pingInterval: 5000, pingTimeout: 5000 })
    const peer = await PollingPeer.open(env.base)
    await peer.join()
    const controller = new AbortController()
    const held = peer.get({ signal: controller.signal }).catch(() => 'aborted')
    await delay(50)
    controller.abort()
    assert.equal(await held, 'aborted')
    const [{ reason }] = await env.rec.wait('disconnect')
    assert.equal(reason, 'transport error')
    assert.equal((await peer.get()).status, 400)
  })

  test('a POSTed close packet "1" ends the session: the pending GET receives "6", reason "transport close"', T, async (t) => {
    const env = await start(t, { pingInterval: 5000, pingTimeout: 5000 })
    const peer = await PollingPeer.open(env.base)
    await peer.join()
    const held = peer.get()
    await delay(50)
    assert.equal((await peer.post('1')).status, 200)
    const res = await held
    assert.deepEqual([res.status, res.body], [200, '6'])
    const [{ reason }] = await env.rec.wait('disconnect')
    assert.equal(reason, 'transport close')
    assert.equal((await peer.get()).status, 400)
  })

  test('an invalid Engine.IO packet in a POST closes the session', T, async (t) => {
    const env = await start(t)
    const peer = await PollingPeer.open(env.base)
    // engine.io drops this POST's connection while closing the session; a
    // 400 answer would do as well. The session must be gone either way.
    await request(peer.url(), { method: 'POST', body: 'abc' }).catch(() => {})
    assert.equal((await peer.get()).status, 400)
  })

  test('a POST with Content-Type application/octet-stream is answered 400 and closes the session', T, async (t) => {
    const env = await start(t)
    const peer = await PollingPeer.open(env.base)
    const res = await peer.post(Buffer.from('40'), { headers: { 'content-type': 'application/octet-stream' } })
    assert.equal(res.status, 400)
    assert.equal((await peer.get()).status, 400)
  })

  test('maxHttpBufferSize: a larger POST gets 413 and is not delivered; one at the limit is', T, async (t) => {
    const env = await start(t, { maxHttpBufferSize: 100, pingInterval: 5000, pingTimeout: 5000 })
    const peer = await PollingPeer.open(env.base)
    assert.equal(peer.open.maxPayload, 100)
    await peer.join()
    const big = `42["message","${'x'.repeat(200)}"]`
    const res = await httpRequest(env.port, { method: 'POST', path: `/socket.io/?EIO=4&transport=polling&sid=${peer.sid}`, body: big, headers: { 'Content-Type': 'text/plain;charset=UTF-8' } })
    assert.equal(res.status, 413)
    await delay(50)
    assert.equal(env.rec.of('message').length, 0)
    const fits = `42["message","${'y'.repeat(100 - 16)}"]`
    assert.equal(Buffer.byteLength(fits), 100)
    // A fresh session: whether a 413 also ends the session is left open
    // (engine.io keeps it).
    const again = await PollingPeer.open(env.base)
    await again.join()
    assert.equal((await again.post(fits)).body, 'ok')
    await env.rec.wait('message')
  })

  test('Socket.IO over polling: connect with auth, event, ack, namespace', T, async (t) => {
    const env = await start(t)
    const peer = await PollingPeer.open(env.base)
    const { sid } = await peer.join('/', { token: 'p' })
    const [{ id, auth }] = await env.rec.wait('connection')
    assert.equal(id, sid)
    assert.notEqual(sid, peer.sid)
    assert.deepEqual(auth, { token: 'p' })
    await peer.join('/custom')
    await peer.post(['42["message",1,"2"]', '42/custom,7["message-with-ack",{"a":[true]}]'].join(SEP))
    const got = []
    while (got.length < 2) got.push(...await peer.receive())
    assert.deepEqual(got, ['42["message-back",1,"2"]', '43/custom,7[{"a":[true]}]'])
  })
})

// ---------------------------------------------------------------------------
// Engine.IO: WebSocket transport, heartbeat, close

describe('Engine.IO WebSocket', () => {
  test('heartbeat: the server sends "2" every pingInterval; answering "3" keeps the connection', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws('', { pings: 'keep' })
    await peer.connect()
    for (let i = 0; i < 3; i++) {
      assert.equal(await peer.next(), '2')
      peer.send('3')
    }
    peer.send('42["message","alive"]')
    assert.equal(await peer.next(), '42["message-back","alive"]')
    assert.equal(env.rec.of('disconnect').length, 0)
  })

  test('ping timeout: no pong closes the WebSocket, reason "ping timeout"', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws('', { pings: 'ignore' })
    await peer.connect()
    await peer.whenClosed(3000)
    const [{ reason }] = await env.rec.wait('disconnect')
    assert.equal(reason, 'ping timeout')
  })

  test('a ping from the client is a protocol error that closes the connection', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.connect()
    peer.send('2')
    await peer.whenClosed()
    const [{ reason }] = await env.rec.wait('disconnect')
    assert.equal(reason, 'transport error')
  })

  test('a close packet "1" from a client that then goes silent ends the connection', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws('', { pings: 'ignore' })
    await peer.connect()
    peer.send('1')
    await peer.whenClosed()
    // engine.io ignores "1" over WebSocket and closes on the ping timeout; an
    // implementation may close at once instead.
    const [{ reason }] = await env.rec.wait('disconnect')
    assert.ok(['transport close', 'ping timeout'].includes(reason), reason)
  })

  test('an invalid Engine.IO packet closes the WebSocket', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.handshake()
    peer.send('abc')
    await peer.whenClosed()
  })

  test('maxHttpBufferSize: a larger WebSocket message closes the connection and is not delivered', T, async (t) => {
    const env = await start(t, { maxHttpBufferSize: 100 })
    const peer = await env.ws()
    const { maxPayload } = await peer.handshake()
    assert.equal(maxPayload, 100)
    await peer.join()
    peer.send(`42["message","${'x'.repeat(200)}"]`)
    await peer.whenClosed()
    await env.rec.wait('disconnect')
    assert.equal(env.rec.of('message').length, 0)
  })

  test('io.close(): a held GET receives "1", WebSockets close, sockets see "server shutting down"', T, async (t) => {
    const env = await start(t, { pingInterval: 5000, pingTimeout: 5000 })
    const polling = await PollingPeer.open(env.base)
    await polling.join()
    const peer = await env.ws()
    await peer.connect()
    await env.rec.wait('connection', { count: 2 })
    const held = polling.get()
    await delay(50)
    env.io.close()
    const res = await held
    assert.equal(res.status, 200)
    assert.equal(res.body.split(SEP).at(-1), '1')
    await peer.whenClosed()
    assert.deepEqual(env.rec.of('disconnect').map((d) => d.reason), ['server shutting down', 'server shutting down'])
  })
})

// ---------------------------------------------------------------------------
// Engine.IO: upgrade from polling to WebSocket

describe('Engine.IO upgrade', () => {
  // Slow heartbeat: no ping lands in the middle of an upgrade.
  const slow = { pingInterval: 5000, pingTimeout: 5000 }

  async function pollingSession (t, opts = {}) {
    const env = await start(t, { ...slow, ...opts })
    const polling = await PollingPeer.open(env.base)
    const { sid } = await polling.join()
    return { env, polling, socketId: sid }
  }

  test('2probe -> 3probe, the held GET receives "6", 5 completes it; the session continues over WebSocket', T, async (t) => {
    const { env, polling } = await pollingSession(t)
    const held = polling.get()
    await delay(50)
    const peer = await env.ws(`&sid=${polling.sid}`)
    peer.send('2probe')
    assert.equal(await peer.next(), '3probe')
    const res = await held
    assert.deepEqual([res.status, res.body], [200, '6'])
    peer.send('5')
    peer.send('42["message","over ws"]')
    assert.equal(await peer.next(), '42["message-back","over ws"]')
    const [{ socket }] = await env.rec.wait('connection')
    assert.equal(socket.conn.transport.name, 'websocket')
  })

  test('a GET arriving after the probe receives "6"', T, async (t) => {
    const { env, polling } = await pollingSession(t)
    const peer = await env.ws(`&sid=${polling.sid}`)
    peer.send('2probe')
    assert.equal(await peer.next(), '3probe')
    const res = await polling.get()
    assert.deepEqual([res.status, res.body], [200, '6'])
    peer.send('5')
  })

  test('after the upgrade, polling requests for the sid get 400 and the WebSocket keeps working', T, async (t) => {
    const { env, polling } = await pollingSession(t)
    const peer = await env.ws(`&sid=${polling.sid}`)
    peer.send('2probe')
    assert.equal(await peer.next(), '3probe')
    peer.send('5')
    await waitFor(() => env.rec.of('connection')[0].socket.conn.transport.name === 'websocket', 2000, 'the upgrade')
    await expectError(await polling.get(), 400, 3, 'Bad request')
    await expectError(await polling.post('42["message","late"]'), 400, 3, 'Bad request')
    peer.send('42["message","still here"]')
    assert.equal(await peer.next(), '42["message-back","still here"]')
    assert.deepEqual(env.rec.of('message').map((m) => m.args), [['still here']])
  })

  test('a second WebSocket for an upgraded sid is accepted, then closed unanswered', T, async (t) => {
    const { env, polling } = await pollingSession(t)
    const peer = await env.ws(`&sid=${polling.sid}`)
    peer.send('2probe')
    assert.equal(await peer.next(), '3probe')
    peer.send('5')
    await waitFor(() => env.rec.of('connection')[0].socket.conn.transport.name === 'websocket', 2000, 'the upgrade')
    // The spec: "the server MUST close the WebSocket connection"; the
    // official suite fails on an HTTP refusal here.
    const second = await env.ws(`&sid=${polling.sid}`)
    second.send('2probe')
    await second.whenClosed()
    assert.deepEqual(second.queue, [])
    peer.send('42["message",1]')
    assert.equal(await peer.next(), '42["message-back",1]')
  })

  test('an event emitted during the upgrade arrives exactly once, over either transport', T, async (t) => {
    const { env, polling } = await pollingSession(t)
    const [{ socket }] = await env.rec.wait('connection')
    const held = polling.get()
    await delay(50)
    const peer = await env.ws(`&sid=${polling.sid}`)
    peer.send('2probe')
    assert.equal(await peer.next(), '3probe')
    socket.emit('mid', 'upgrade')
    const viaPolling = (await held).body.split(SEP)
    peer.send('5')
    const seen = viaPolling.filter((p) => p.startsWith('42'))
    if (!seen.length) seen.push(await peer.next())
    assert.deepEqual(seen, ['42["mid","upgrade"]'])
    peer.send('42["message","after"]')
    assert.equal(await peer.next(), '42["message-back","after"]')
  })

  test('upgradeTimeout: a probe never completed closes the WebSocket; polling goes on', T, async (t) => {
    const { env, polling } = await pollingSession(t, { upgradeTimeout: 200 })
    const peer = await env.ws(`&sid=${polling.sid}`)
    peer.send('2probe')
    assert.equal(await peer.next(), '3probe')
    await peer.whenClosed(3000)
    // The probe paused polling only until the upgrade was abandoned.
    assert.equal((await polling.post('42["message","polling"]')).body, 'ok')
    const got = await polling.receive()
    assert.deepEqual(got.filter((p) => p !== '6'), ['42["message-back","polling"]'])
    assert.equal(env.rec.of('disconnect').length, 0)
  })

  test('an upgrade request naming transport=polling is not accepted as an upgrade', T, async (t) => {
    const { env, polling } = await pollingSession(t)
    await refusedOrClosed(`${env.wsBase}?EIO=4&transport=polling&sid=${polling.sid}`, { probe: true })
    assert.equal((await polling.post('42["message","ok"]')).body, 'ok')
    assert.deepEqual(await polling.receive(), ['42["message-back","ok"]'])
  })
})

// ---------------------------------------------------------------------------
// CORS (polling; browsers apply no CORS to WebSocket)

describe('CORS', () => {
  const handshake = (env, origin, init = {}) =>
    request(`${env.base}?EIO=4&transport=polling`, { ...init, headers: { origin, ...init.headers } })
  const preflight = (env, origin, headers = {}) =>
    request(`${env.base}?EIO=4&transport=polling`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', ...headers } })

  test('without the cors option no Access-Control-Allow-Origin is sent, whatever the Origin', T, async (t) => {
    const env = await start(t)
    const res = await handshake(env, 'https://evil.example')
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('access-control-allow-origin'), null)
    assert.equal(res.headers.get('access-control-allow-credentials'), null)
    const pre = await preflight(env, 'https://evil.example')
    assert.equal(pre.headers.get('access-control-allow-origin'), null)
  })

  test('origin string with credentials: fixed Allow-Origin, Allow-Credentials, Vary: Origin; other origins not reflected', T, async (t) => {
    const env = await start(t, { cors: { origin: 'https://app.example', credentials: true } })
    const res = await handshake(env, 'https://app.example')
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example')
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true')
    assert.match(res.headers.get('vary') ?? '', /Origin/)
    const evil = await handshake(env, 'https://evil.example')
    assert.notEqual(evil.headers.get('access-control-allow-origin'), 'https://evil.example')
  })

  test('preflight: 204 with the default methods, requested headers echoed, no body', T, async (t) => {
    const env = await start(t, { cors: { origin: 'https://app.example', credentials: true } })
    const res = await preflight(env, 'https://app.example', { 'access-control-request-headers': 'x-token' })
    assert.equal(res.status, 204)
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example')
    assert.equal(res.headers.get('access-control-allow-methods'), 'GET,HEAD,PUT,PATCH,POST,DELETE')
    assert.equal(res.headers.get('access-control-allow-headers'), 'x-token')
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true')
    assert.equal(res.body, '')
  })

  test('origin list with a RegExp, methods and allowedHeaders options', T, async (t) => {
    const env = await start(t, { cors: { origin: ['https://a.example', /\.b\.example$/], methods: ['GET', 'POST'], allowedHeaders: ['x-one'], maxAge: 600 } })
    for (const origin of ['https://a.example', 'https://x.b.example']) {
      assert.equal((await handshake(env, origin)).headers.get('access-control-allow-origin'), origin)
    }
    const refused = await handshake(env, 'https://c.example')
    assert.equal(refused.headers.get('access-control-allow-origin'), null)
    const pre = await preflight(env, 'https://x.b.example', { 'access-control-request-headers': 'x-other' })
    assert.equal(pre.status, 204)
    assert.equal(pre.headers.get('access-control-allow-methods'), 'GET,POST')
    assert.equal(pre.headers.get('access-control-allow-headers'), 'x-one')
    assert.equal(pre.headers.get('access-control-max-age'), '600')
  })

  test('origin function and origin "*"', T, async (t) => {
    const fn = await start(t, { cors: { origin: (origin, cb) => cb(null, origin === 'https://fn.example') } })
    assert.equal((await handshake(fn, 'https://fn.example')).headers.get('access-control-allow-origin'), 'https://fn.example')
    assert.equal((await handshake(fn, 'https://other.example')).headers.get('access-control-allow-origin'), null)
    const star = await start(t, { cors: { origin: '*' } })
    assert.equal((await handshake(star, 'https://any.example')).headers.get('access-control-allow-origin'), '*')
  })

  test('CORS headers on POST, on the held GET and on error responses', T, async (t) => {
    const env = await start(t, { cors: { origin: true, credentials: true } })
    const origin = 'https://app.example'
    const peer = await PollingPeer.open(env.base, '', { headers: { origin } })
    const post = await peer.post('40', { headers: { origin } })
    assert.equal(post.headers.get('access-control-allow-origin'), origin)
    const get = await peer.get({ headers: { origin } })
    assert.match(get.body, /^40/)
    assert.equal(get.headers.get('access-control-allow-origin'), origin)
    const err = await request(`${env.base}?EIO=4&transport=polling&sid=nope`, { headers: { origin } })
    assert.equal(err.status, 400)
    assert.equal(err.headers.get('access-control-allow-origin'), origin)
  })
})

// ---------------------------------------------------------------------------
// Socket.IO: CONNECT / CONNECT_ERROR / DISCONNECT

describe('Socket.IO connect and disconnect', () => {
  test('CONNECT "40" to the main namespace: reply 40{"sid"} with only sid, distinct from the engine sid', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    const open = await peer.handshake()
    peer.send('40')
    const reply = await peer.next()
    assert.match(reply, /^40\{/)
    const payload = JSON.parse(reply.slice(2))
    assert.deepEqual(Object.keys(payload), ['sid'])
    assert.equal(typeof payload.sid, 'string')
    assert.notEqual(payload.sid, open.sid)
    const [{ id, nsp, auth }] = await env.rec.wait('connection')
    assert.deepEqual({ id, nsp, auth }, { id: payload.sid, nsp: '/', auth: {} })
  })

  test('CONNECT payload becomes handshake.auth, main and custom namespace, with or without the comma', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.connect('/', { token: '123' })
    const reply = await peer.join('/custom', { token: 'abc' })
    assert.deepEqual(Object.keys(reply), ['sid'])
    const other = await env.ws()
    await other.handshake()
    other.send('40/custom')
    assert.match(await other.next(), /^40\/custom,\{"sid":"[^"]+"\}$/)
    const seen = (await env.rec.wait('connection', { count: 3 })).map(({ nsp, auth }) => ({ nsp, auth }))
    assert.deepEqual(seen, [{ nsp: '/', auth: { token: '123' } }, { nsp: '/custom', auth: { token: 'abc' } }, { nsp: '/custom', auth: {} }])
  })

  test('an unknown namespace gets 44/x,{"message":"Invalid namespace"}; the connection stays usable', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.handshake()
    peer.send('40/random')
    assert.equal(await peer.next(), '44/random,{"message":"Invalid namespace"}')
    await peer.join('/')
    peer.send('42["message","still"]')
    assert.equal(await peer.next(), '42["message-back","still"]')
  })

  test('middleware error: CONNECT_ERROR with message and data; a later CONNECT on the same connection succeeds', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.handshake()
    peer.send('40/guarded,{"token":"bad"}')
    assert.equal(await peer.next(), '44/guarded,{"message":"not authorized","data":{"code":401}}')
    assert.equal(env.rec.of('connection').length, 0)
    await peer.join('/guarded', { token: 'ok' })
    const [{ nsp }] = await env.rec.wait('connection')
    assert.equal(nsp, '/guarded')
  })

  test('no CONNECT within connectTimeout closes the connection (pings answered)', T, async (t) => {
    const env = await start(t, { connectTimeout: 300 })
    const peer = await env.ws()
    await peer.handshake()
    await peer.whenClosed(3000)
  })

  test('an invalid packet before CONNECT closes the connection', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.handshake()
    peer.send('4abc')
    await peer.whenClosed()
  })

  test('an EVENT before CONNECT, or to a namespace not joined, closes the connection', T, async (t) => {
    const env = await start(t)
    const first = await env.ws()
    await first.handshake()
    first.send('42["message",1]')
    await first.whenClosed()
    const second = await env.ws()
    await second.connect('/')
    second.send('42/custom,["message",2]')
    await second.whenClosed()
    assert.equal(env.rec.of('message').length, 0)
  })

  test('a second CONNECT to a joined namespace closes the connection', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.connect('/')
    peer.send('40')
    await peer.whenClosed()
    await env.rec.wait('disconnect')
  })

  test('DISCONNECT "41" from the main namespace: reason "client namespace disconnect", the connection stays open', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws('', { pings: 'keep' })
    await peer.connect('/')
    peer.send('41')
    const [{ reason }] = await env.rec.wait('disconnect')
    assert.equal(reason, 'client namespace disconnect')
    assert.equal(await peer.next(), '2')
  })

  test('connect then disconnect a custom namespace; the main namespace goes on', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.connect('/')
    await peer.join('/custom')
    peer.send('41/custom,')
    peer.send('42["message","to main"]')
    assert.equal(await peer.next(), '42["message-back","to main"]')
    const [d] = await env.rec.wait('disconnect')
    assert.deepEqual([d.nsp, d.reason], ['/custom', 'client namespace disconnect'])
  })

  test('server-side disconnect: 41 for the namespace; disconnect(true) then closes the connection', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.connect('/')
    await peer.join('/custom')
    const [main, custom] = (await env.rec.wait('connection', { count: 2 })).map((c) => c.socket)
    custom.disconnect()
    assert.equal(await peer.next(), '41/custom,')
    main.disconnect(true)
    assert.equal(await peer.next(), '41')
    await peer.whenClosed()
    assert.deepEqual(env.rec.of('disconnect').map((d) => [d.nsp, d.reason]), [['/custom', 'server namespace disconnect'], ['/', 'server namespace disconnect']])
  })
})

// ---------------------------------------------------------------------------
// Socket.IO: EVENT / ACK / binary

describe('Socket.IO events and acks', () => {
  test('EVENT: arguments of every JSON type reach the handler and come back', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.connect()
    peer.send('42["message",1,"2",{"3":[true]},null,-1.5,[]]')
    assert.equal(await peer.next(), '42["message-back",1,"2",{"3":[true]},null,-1.5,[]]')
    const [{ args }] = await env.rec.wait('message')
    assert.deepEqual(args, [1, '2', { 3: [true] }, null, -1.5, []])
  })

  test('EVENT with an ack id gets ACK with that id; namespaced too', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.connect()
    await peer.join('/custom')
    peer.send('42456["message-with-ack",1,"2",{"3":[false]}]')
    assert.equal(await peer.next(), '43456[1,"2",{"3":[false]}]')
    peer.send('42/custom,0["message-with-ack","x"]')
    assert.equal(await peer.next(), '43/custom,0["x"]')
  })

  test('server EVENT with an ack: the client ACK reaches the callback, once', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.connect()
    const [{ socket }] = await env.rec.wait('connection')
    const answers = []
    socket.emit('question', 'name?', (...a) => answers.push(a))
    const m = /^42(\d+)\["question","name\?"\]$/.exec(await peer.next())
    assert.ok(m, 'no ack id on the EVENT')
    peer.send(`43${m[1]}["yes",2]`)
    peer.send(`43${m[1]}["again"]`)
    await waitFor(() => answers.length, 2000, 'the ack callback')
    peer.send('42["message","sync"]')
    assert.equal(await peer.next(), '42["message-back","sync"]')
    assert.deepEqual(answers, [['yes', 2]])
  })

  test('BINARY_EVENT from the client: attachments as binary messages reach the handler as Buffers and are echoed', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.connect()
    peer.send('452-["message",{"_placeholder":true,"num":0},{"nested":{"_placeholder":true,"num":1}}]')
    peer.send(Buffer.from([1, 2, 3]))
    peer.send(Buffer.from([4, 5, 6]))
    assert.equal(await peer.next(), '452-["message-back",{"_placeholder":true,"num":0},{"nested":{"_placeholder":true,"num":1}}]')
    assert.deepEqual([...await peer.next()], [1, 2, 3])
    assert.deepEqual([...await peer.next()], [4, 5, 6])
    const [{ args }] = await env.rec.wait('message')
    assert.ok(Buffer.isBuffer(args[0]) && Buffer.isBuffer(args[1].nested))
    assert.deepEqual([[...args[0]], [...args[1].nested]], [[1, 2, 3], [4, 5, 6]])
  })

  test('BINARY_EVENT with an ack id is answered by BINARY_ACK with the attachments', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.connect()
    peer.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    peer.send(Buffer.from([1, 2, 3]))
    peer.send(Buffer.from([4, 5, 6]))
    assert.equal(await peer.next(), '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    assert.deepEqual([...await peer.next()], [1, 2, 3])
    assert.deepEqual([...await peer.next()], [4, 5, 6])
  })

  test('server binary EVENT and a client BINARY_ACK (namespaced) reach the callback as Buffers', T, async (t) => {
    const env = await start(t)
    const peer = await env.ws()
    await peer.connect()
    await peer.join('/custom')
    const [, { socket }] = await env.rec.wait('connection', { count: 2 })
    const answers = []
    socket.emit('blob', { data: Buffer.from('xyz') }, (...a) => answers.push(a))
    const m = /^451-\/custom,(\d+)\["blob",\{"data":\{"_placeholder":true,"num":0\}\}\]$/.exec(await peer.next())
    assert.ok(m, 'unexpected BINARY_EVENT header')
    assert.equal((await peer.next()).toString(), 'xyz')
    peer.send(`461-/custom,${m[1]}[{"_placeholder":true,"num":0},"text"]`)
    peer.send(Buffer.from([9, 8]))
    await waitFor(() => answers.length, 2000, 'the binary ack')
    assert.ok(Buffer.isBuffer(answers[0][0]))
    assert.deepEqual([[...answers[0][0]], answers[0][1]], [[9, 8], 'text'])
  })

  test('a client emitting "error" does not crash the server; the connection goes on', T, async (t) => {
    const env = await start(t, {}, { handlers: false })
    env.io.on('connection', (socket) => socket.on('message', (...a) => socket.emit('message-back', ...a)))
    const peer = await env.ws()
    await peer.connect()
    peer.send('42["error","boom"]')
    peer.send('42["message","after"]')
    assert.equal(await peer.next(), '42["message-back","after"]')
  })
})

// ---------------------------------------------------------------------------
// Socket.IO: malformed packets close the connection

describe('Socket.IO invalid packets', () => {
  // [what, messages sent after CONNECT to "/"]
  const cases = [
    ['unknown packet type 4abc', ['4abc']],
    ['unknown packet type 47', ['47["message"]']],
    ['EVENT payload not an array', ['42{}']],
    ['EVENT with a non-numeric ack id', ['42abc["message-with-ack",1]']],
    ['EVENT with an empty array', ['42[]']],
    ['EVENT whose first item is an object', ['42[{"a":1},2]']],
    ['EVENT with a reserved name', ['42["disconnect"]']],
    ['EVENT with truncated JSON', ['42["message",1']],
    ['CONNECT payload not an object', ['40"token"']],
    ['DISCONNECT with a payload', ['41{"a":1}']],
    ['ACK payload not an array', ['431{"a":1}']],
    ['CONNECT_ERROR from the client', ['44{"message":"x"}']],
    ['BINARY_EVENT without an attachment count', ['45-["message",{"_placeholder":true,"num":0}]', Buffer.from([1])]],
    ['BINARY_EVENT with 0 attachments', ['450-["message"]']],
    ['BINARY_EVENT with too many attachments (over 10)', ['4511-["message"]']],
    ['placeholder num not a number (CVE-2022-2421)', ['451-["message",{"_placeholder":true,"num":"splice"}]', Buffer.from([1])]],
    ['placeholder num out of range', ['451-["message",{"_placeholder":true,"num":1}]', Buffer.from([1])]],
    ['text message while attachments are expected', ['451-["message",{"_placeholder":true,"num":0}]', '42["message",1]']],
    ['binary message with no BINARY_EVENT pending', [Buffer.from([1, 2, 3])]]
  ]
  for (const [what, messages] of cases) {
    test(`closes the connection: ${what}`, T, async (t) => {
      const env = await start(t)
      const peer = await env.ws()
      await peer.connect()
      for (const m of messages) peer.send(m)
      await peer.whenClosed()
      await env.rec.wait('disconnect')
      assert.equal(env.rec.of('message').length, 0, 'the handler ran for an invalid packet')
    })
  }

  test('over polling too: an invalid Socket.IO packet closes the session, cleanly (the next GET gets the close packet)', T, async (t) => {
    const env = await start(t)
    const peer = await PollingPeer.open(env.base)
    await peer.join()
    await peer.post('42{}').catch(() => {})
    await env.rec.wait('disconnect')
    // As socket.io's client.close(): queued packets, then the close packet
    // (a noop carrying it when nothing else is queued), then the session is gone.
    const last = await peer.get()
    assert.equal(last.status, 200)
    assert.match(last.body, /(^|\x1e)1$/)
    assert.equal((await peer.get()).status, 400)
  })
})

// ---------------------------------------------------------------------------
// A raw Engine.IO endpoint (no Socket.IO on top), echoing messages: socket.io
// ships one as the `engine.io` package, ferrosocket as `EngineServer`.

const EngineServer = REFERENCE ? require('engine.io').Server : require('../index.js').EngineServer
const RAW_SKIP = EngineServer ? false : 'this build of ferrosocket exports no EngineServer'
describe(RAW_SKIP ? `raw Engine.IO endpoint (skipped: ${RAW_SKIP})` : 'raw Engine.IO endpoint', { skip: RAW_SKIP }, () => {
  async function startEngine (t) {
    const httpServer = http.createServer()
    const engine = new EngineServer({ pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT })
    engine.attach(httpServer)
    engine.on('connection', (socket) => socket.on('message', (data) => socket.send(data)))
    await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
    const { port } = httpServer.address()
    const peers = []
    t.after(() => {
      for (const p of peers) p.terminate()
      try {
        engine.close()
      } finally {
        httpServer.closeAllConnections()
        httpServer.close()
      }
    })
    return {
      base: `http://127.0.0.1:${port}/engine.io/`,
      ws: async (query = '') => {
        const peer = await WsPeer.open(`ws://127.0.0.1:${port}/engine.io/?EIO=4&transport=websocket${query}`)
        peers.push(peer)
        return peer
      }
    }
  }

  test('polling: text and binary message packets are echoed, framing preserved', T, async (t) => {
    const env = await startEngine(t)
    const peer = await PollingPeer.open(env.base)
    assert.equal((await peer.post(['4hello', '4', b64([1, 2, 3, 4]), '4é€'].join(SEP))).body, 'ok')
    const got = []
    while (got.length < 4) got.push(...await peer.receive())
    assert.deepEqual(got, ['4hello', '4', 'bAQIDBA==', '4é€'])
  })

  test('websocket: text and binary message packets are echoed', T, async (t) => {
    const env = await startEngine(t)
    const peer = await env.ws()
    await peer.handshake()
    peer.send('4hello')
    assert.equal(await peer.next(), '4hello')
    peer.send(Buffer.from([1, 2, 3, 4]))
    assert.deepEqual([...await peer.next()], [1, 2, 3, 4])
  })

  test('upgrade: messages flow over the WebSocket after 5', T, async (t) => {
    const env = await startEngine(t)
    const polling = await PollingPeer.open(env.base)
    const peer = await env.ws(`&sid=${polling.sid}`)
    peer.send('2probe')
    assert.equal(await peer.next(), '3probe')
    peer.send('5')
    peer.send('4hi')
    assert.equal(await peer.next(), '4hi')
  })
})
