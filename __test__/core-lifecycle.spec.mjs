// Listening, closing (socket, listen socket, whole app), process exit, the
// closed-socket rules, and handlers that throw.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { startApp, uWS, text, EventLog } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'
import { ferroOnly, delay, withTimeout } from './helpers/env.mjs'
import { runChild } from './helpers/child.mjs'

const CLOSED_ACCESS = /Invalid access of closed uWS\.WebSocket\/SSLWebSocket\./

test('App is callable with and without new', { timeout: 10000 }, async (t) => {
  for (const app of [uWS.App(), new uWS.App()]) {
    assert.equal(typeof app.ws, 'function')
    assert.equal(typeof app.get, 'function')
    const listenSocket = await new Promise((resolve) => app.listen('127.0.0.1', 0, resolve))
    assert.ok(listenSocket)
    assert.ok(uWS.us_socket_local_port(listenSocket) > 0)
    app.close()
  }
})

test('listen(host, 0) picks a free port reported by us_socket_local_port; listen(port, cb) works without host', { timeout: 10000 }, async (t) => {
  const server = await startApp({ message: (ws, message) => { ws.send(message) } })
  t.after(() => server.close())
  assert.ok(Number.isInteger(server.port) && server.port > 0 && server.port < 65536)
  const client = await connect(`ws://127.0.0.1:${server.port}/`)
  t.after(() => client.terminate())
  await client.send('on port 0')
  assert.equal(await client.nextText(), 'on port 0')

  const app = uWS.App().ws('/*', { message: (ws, message) => { ws.send(message) } })
  const listenSocket = await new Promise((resolve) => app.listen(0, resolve))
  t.after(() => app.close())
  assert.ok(listenSocket)
  const port = uWS.us_socket_local_port(listenSocket)
  assert.notEqual(port, server.port)
  const other = await connect(`ws://127.0.0.1:${port}/`)
  t.after(() => other.terminate())
  await other.send('no host')
  assert.equal(await other.nextText(), 'no host')
})

test('listen on a port that is already taken calls back with false', { timeout: 10000 }, async (t) => {
  const blocker = net.createServer()
  await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.after(() => blocker.close())
  const app = uWS.App()
  t.after(() => app.close())
  const result = await new Promise((resolve) => app.listen('127.0.0.1', blocker.address().port, resolve))
  assert.equal(result, false)
})

test('a fixed port is shared (SO_REUSEPORT, as uSockets does on Linux) and connections reach every app on it; LIBUS_LISTEN_EXCLUSIVE_PORT does not share', { timeout: 15000 }, async (t) => {
  const probe = net.createServer()
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = probe.address().port
  await new Promise((resolve) => probe.close(resolve))
  const opened = [0, 0]
  const apps = [0, 1].map((i) => uWS.App().ws('/*', { open: () => { opened[i]++ } }))
  const exclusive = uWS.App()
  t.after(() => { for (const app of [...apps, exclusive]) app.close() })
  for (const app of apps) assert.ok(await new Promise((resolve) => app.listen(port, resolve)), 'each app listens on the shared port')
  assert.equal(await new Promise((resolve) => exclusive.listen(port, uWS.LIBUS_LISTEN_EXCLUSIVE_PORT, resolve)), false)
  // The kernel spreads connections by their addresses: 40 of them reach both.
  const clients = []
  for (let i = 0; i < 40; i++) clients.push(await connect(`ws://127.0.0.1:${port}/`))
  t.after(() => { for (const c of clients) c.terminate() })
  await delay(100)
  assert.equal(opened[0] + opened[1], 40)
  assert.ok(opened[0] > 0 && opened[1] > 0, `both apps got connections: ${opened}`)
})

test('IPv6: listen on ::1, echo over ws://[::1], remote address in uWS.js text form', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({
    open: (ws) => log.push('open', { address: text(ws.getRemoteAddressAsText()) }),
    message: (ws, message) => { ws.send(message) }
  }, { host: '::1' })
  t.after(() => server.close())
  const client = await connect(`ws://[::1]:${server.port}/`)
  t.after(() => client.terminate())
  await client.send('over v6')
  assert.equal(await client.nextText(), 'over v6')
  const [open] = await log.wait('open')
  // uWS.js prints IPv6 as eight zero-padded hex groups, no "::" compression.
  assert.equal(open.address, '0000:0000:0000:0000:0000:0000:0000:0001')
})

test('us_listen_socket_close: new connections are refused, existing ones keep working', { timeout: 10000 }, async (t) => {
  const server = await startApp({ message: (ws, message) => { ws.send(message) } })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/`)
  t.after(() => client.terminate())
  uWS.us_listen_socket_close(server.listenSocket)
  // Right after the call a connection must not be served (refused or reset);
  // a moment later the port must be closed for good (refused).
  await assert.rejects(connect(`ws://127.0.0.1:${server.port}/`), (err) => ['ECONNREFUSED', 'ECONNRESET'].includes(err.code))
  await delay(100)
  await assert.rejects(tcpConnect(server.port), (err) => err.code === 'ECONNREFUSED')
  await client.send('still connected')
  assert.equal(await client.nextText(), 'still connected')
})

test('app.close(): every client is disconnected, close handlers run, topics empty, no new connections', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({
    open: (ws) => { ws.subscribe('everyone'); log.push('open', { ws }) },
    close: log.on('close', (ws, code) => ({ code }))
  })
  t.after(() => server.close())
  const clients = []
  for (let i = 0; i < 3; i++) {
    const c = await connect(`ws://127.0.0.1:${server.port}/`)
    t.after(() => c.terminate())
    clients.push(c)
  }
  await log.wait('open', { count: 3 })
  assert.equal(server.app.numSubscribers('everyone'), 3)
  server.close()
  const results = await withTimeout(Promise.all(clients.map((c) => c.closed)), 5000, 'clients to be disconnected')
  for (const r of results) assert.notEqual(r.code, 1000)
  await log.wait('close', { count: 3 })
  assert.equal(server.app.numSubscribers('everyone'), 0)
  await delay(100)
  await assert.rejects(tcpConnect(server.port), (err) => err.code === 'ECONNREFUSED')
  for (const { ws } of log.of('open')) assert.throws(() => ws.send('x'), CLOSED_ACCESS)
})

test('app.close(): clients get close code 1001 (ferrosocket-only: uWS.js drops TCP, clients see 1006)',
  { timeout: 10000, skip: ferroOnly('uWS.js closes sockets without a close frame') }, async (t) => {
    const server = await startApp({})
    t.after(() => server.close())
    const client = await connect(`ws://127.0.0.1:${server.port}/`)
    t.after(() => client.terminate())
    server.close()
    const result = await withTimeout(client.closed, 5000, 'client close')
    assert.equal(result.code, 1001)
  })

test('a process whose server is closed with app.close() exits by itself (connected client, no dangling handles)', { timeout: 20000 }, async (t) => {
  let client
  t.after(() => client?.terminate())
  let gotPort
  const portLine = new Promise((resolve) => { gotPort = resolve })
  const exit = runChild(`
    const app = uWS.App().ws('/*', {
      message: (ws, message) => {
        if (Buffer.from(message).toString() === 'shutdown') app.close()
      }
    })
    app.listen('127.0.0.1', 0, (ls) => { console.log('port ' + uWS.us_socket_local_port(ls)) })
  `, 12000, (line) => { if (line.startsWith('port ')) gotPort(Number(line.slice(5))) })
  exit.catch(() => {}) // awaited below; keeps an early failure from going unhandled
  const port = await withTimeout(portLine, 5000, 'child server to listen')
  client = await connect(`ws://127.0.0.1:${port}/`)
  await client.send('shutdown')
  const closed = await withTimeout(client.closed, 5000, 'client to be disconnected')
  assert.notEqual(closed.code, 1000)
  const result = await withTimeout(exit, 5000, 'child to exit after app.close()')
  assert.equal(result.signal, null)
  assert.equal(result.code, 0, result.stderr)
})

test('a process exits by itself after us_listen_socket_close on its only listen socket', { timeout: 15000 }, async () => {
  const result = await runChild(`
    const app = uWS.App().get('/*', (res) => res.end('x'))
    app.listen('127.0.0.1', 0, (ls) => {
      if (!ls) process.exit(3)
      setTimeout(() => uWS.us_listen_socket_close(ls), 100)
    })
  `, 8000)
  assert.equal(result.signal, null)
  assert.equal(result.code, 0, result.stderr)
})

function tcpConnect (port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.once('connect', () => { socket.destroy(); resolve() })
    socket.once('error', reject)
  })
}

// ---- closing a single socket ----------------------------------------------

async function closingServer (t) {
  const log = new EventLog()
  const server = await startApp({
    open: log.on('open'),
    message: (ws, message) => {
      const cmd = text(message)
      if (cmd === 'end-with-code') ws.end(4002, 'server says bye')
      else if (cmd === 'end-no-args') ws.end()
      else if (cmd === 'close') ws.close()
      else return
      log.push('after', { closeEventsSoFar: log.of('close').length })
    },
    close: log.on('close', (ws, code, message) => {
      let sendError = null
      try { ws.send('from close handler') } catch (err) { sendError = err.message }
      return { code, reason: text(message), isArrayBuffer: message instanceof ArrayBuffer, sendError, userData: ws.getUserData() }
    })
  })
  t.after(() => server.close())
  return { ...server, log, url: `ws://127.0.0.1:${server.port}/` }
}

test('ws.end(code, reason): client gets both; close handler runs before end() returns, with the same code and reason', { timeout: 10000 }, async (t) => {
  const { url, log } = await closingServer(t)
  const client = await connect(url)
  t.after(() => client.terminate())
  await client.send('end-with-code')
  const closed = await client.closed
  assert.deepEqual(closed, { code: 4002, reason: 'server says bye' })
  const [event] = await log.wait('close')
  assert.equal(event.code, 4002)
  assert.equal(event.reason, 'server says bye')
  assert.equal(event.isArrayBuffer, true)
  const [after] = await log.wait('after')
  assert.equal(after.closeEventsSoFar, 1, 'close handler runs synchronously inside end()')
})

test('ws.end() without arguments sends a close frame without a status code (client sees 1005)', { timeout: 10000 }, async (t) => {
  const { url, log } = await closingServer(t)
  const client = await connect(url)
  t.after(() => client.terminate())
  await client.send('end-no-args')
  const closed = await client.closed
  assert.equal(closed.code, 1005)
  await log.wait('close')
})

test('ws.close(): abrupt, no close frame (client sees 1006); close handler gets 1006 before close() returns', { timeout: 10000 }, async (t) => {
  const { url, log } = await closingServer(t)
  const client = await connect(url)
  t.after(() => client.terminate())
  await client.send('close')
  const closed = await client.closed
  assert.equal(closed.code, 1006)
  const [event] = await log.wait('close')
  assert.equal(event.code, 1006)
  const [after] = await log.wait('after')
  assert.equal(after.closeEventsSoFar, 1)
})

test('client closes with 1000 and a reason: close handler gets them; client drop -> 1006', { timeout: 10000 }, async (t) => {
  const { url, log } = await closingServer(t)
  const polite = await connect(url)
  polite.ws.close(1000, 'client leaving')
  assert.equal((await polite.closed).code, 1000)
  const [first] = await log.wait('close')
  assert.equal(first.code, 1000)
  assert.equal(first.reason, 'client leaving')
  const rude = await connect(url)
  rude.terminate()
  const [, second] = await log.wait('close', { count: 2 })
  assert.equal(second.code, 1006)
})

test('inside close: send() throws "Invalid access of closed uWS.WebSocket/SSLWebSocket.", getUserData() still works', { timeout: 10000 }, async (t) => {
  const { url, log } = await closingServer(t)
  const client = await connect(url)
  client.ws.close(1000)
  const [event] = await log.wait('close')
  assert.ok(event.sendError, 'send() inside the close handler must throw')
  assert.match(event.sendError, CLOSED_ACCESS)
  assert.equal(typeof event.userData, 'object')
  await client.closed
})

test('after close every ws method except getUserData throws "Invalid access of closed uWS.WebSocket/SSLWebSocket."', { timeout: 10000 }, async (t) => {
  const { url, log } = await closingServer(t)
  const client = await connect(url)
  const [{ ws }] = await log.wait('open')
  client.ws.close(1000)
  await log.wait('close')
  await client.closed
  const calls = {
    send: () => ws.send('x'),
    end: () => ws.end(1000),
    close: () => ws.close(),
    ping: () => ws.ping(),
    cork: () => ws.cork(() => {}),
    subscribe: () => ws.subscribe('t'),
    unsubscribe: () => ws.unsubscribe('t'),
    isSubscribed: () => ws.isSubscribed('t'),
    getTopics: () => ws.getTopics(),
    publish: () => ws.publish('t', 'x'),
    getBufferedAmount: () => ws.getBufferedAmount(),
    getRemoteAddressAsText: () => ws.getRemoteAddressAsText()
  }
  for (const [name, call] of Object.entries(calls)) {
    assert.throws(call, CLOSED_ACCESS, `${name}() on a closed socket`)
  }
  assert.doesNotThrow(() => ws.getUserData())
})

// ---- handlers that throw --------------------------------------------------

test('handler that throws in open/message/close is reported as a FERROSOCKET_HANDLER_ERROR warning; server keeps serving (ferrosocket-only: uWS.js lets it become an uncaught exception)',
  { timeout: 10000, skip: ferroOnly('uWS.js rethrows handler errors as uncaught exceptions') }, async (t) => {
    const warnings = []
    const onWarning = (w) => warnings.push(w)
    process.on('warning', onWarning)
    t.after(() => process.off('warning', onWarning))
    const server = await startApp({
      open: (ws) => { if (ws.getUserData().url === '/throw-open') throw new Error('boom in open') },
      message: (ws, message) => {
        if (text(message) === 'throw') throw new Error('boom in message')
        ws.send(message)
      },
      close: () => { throw new Error('boom in close') },
      upgrade: (res, req, context) => {
        res.upgrade({ url: req.getUrl() }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'),
          req.getHeader('sec-websocket-extensions'), context)
      }
    })
    t.after(() => server.close())
    const url = `ws://127.0.0.1:${server.port}`
    const warningFor = (msg) => warnings.find((w) => w.code === 'FERROSOCKET_HANDLER_ERROR' &&
      [w.message, w.cause?.message].join(' ').includes(msg))

    const a = await connect(`${url}/throw-open`)
    t.after(() => a.terminate())
    await a.send('open threw, still echo')
    assert.equal(await a.nextText(), 'open threw, still echo')

    await a.send('throw')
    await a.send('after the throw')
    assert.equal(await a.nextText(), 'after the throw', 'same client still served')

    const b = await connect(`${url}/other`)
    await b.send('another client')
    assert.equal(await b.nextText(), 'another client', 'other clients still served')
    b.ws.close(1000)
    await b.closed
    await delay(100)

    assert.ok(warningFor('boom in open'), 'warning for the open handler')
    assert.ok(warningFor('boom in message'), 'warning for the message handler')
    assert.ok(warningFor('boom in close'), 'warning for the close handler')
    const c = await connect(`${url}/after-close-throw`)
    t.after(() => c.terminate())
    await c.send('server alive')
    assert.equal(await c.nextText(), 'server alive')
  })
