// HTTP routes as uWebSockets.js serves them (issue #15): keep-alive and
// pipelining, :params, request bodies streamed through onData, chunked
// and Content-Length responses, tryEnd/onWritable backpressure, aborts,
// and an upgrade on a kept-alive connection. Runs against uWS.js too
// (FERRO_IMPL), where the behaviour is shared.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import http from 'node:http'
import crypto from 'node:crypto'
import { startApp } from './helpers/app.mjs'
import { acceptFor, newKey } from './helpers/raw-client.mjs'
import { ferroOnly, delay, withTimeout } from './helpers/env.mjs'

// One raw connection: write bytes, read everything until `until(text)` holds
// or the peer closes. Resolves { text, closed }.
function rawExchange (port, chunks, until, { timeout = 5000 } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1')
    let text = ''
    let done = false
    const finish = (closed) => {
      if (done) return
      done = true
      sock.destroy()
      resolve({ text, closed })
    }
    sock.on('data', (d) => {
      text += d.toString('latin1')
      if (until && until(text)) finish(false)
    })
    sock.on('close', () => finish(true))
    sock.on('error', reject)
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (typeof c === 'number') await delay(c)
        else sock.write(c)
      }
    })
  }), timeout, 'the raw exchange')
}

const count = (text, s) => text.split(s).length - 1

// A keep-alive agent with one socket: every request reuses it.
function keepAliveAgent (t) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.after(() => agent.destroy())
  return agent
}

function request (port, { method = 'GET', path = '/', headers = {}, body, agent, onResponse } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
      if (onResponse) onResponse(res)
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), socket: req.socket }))
      res.on('error', reject)
    })
    req.on('error', reject)
    if (Array.isArray(body)) {
      ;(async () => {
        for (const piece of body) {
          if (typeof piece === 'number') await delay(piece)
          else req.write(piece)
        }
        req.end()
      })()
    } else {
      req.end(body)
    }
  }), 10000, `${method} ${path}`)
}

async function routes (t, setup, options) {
  const server = await startApp(null, { setup, options })
  t.after(() => server.close())
  return server.port
}

test('keep-alive: requests on one connection are answered on it, in order, and it stays open', { timeout: 15000 }, async (t) => {
  let n = 0
  const port = await routes(t, (app) => app.get('/n', (res) => res.end(String(++n))))
  const agent = keepAliveAgent(t)
  const a = await request(port, { path: '/n', agent })
  const b = await request(port, { path: '/n', agent })
  const c = await request(port, { path: '/n', agent })
  assert.deepEqual([a.body.toString(), b.body.toString(), c.body.toString()], ['1', '2', '3'])
  assert.equal(a.socket, c.socket, 'the same socket carried all three')
  assert.notEqual(a.headers.connection, 'close')
})

test('pipelining: requests sent together are answered in order on the open connection', { timeout: 15000 }, async (t) => {
  const port = await routes(t, (app) => {
    app.get('/a', (res) => res.end('a'))
    app.get('/b', (res) => res.end('bb'))
  })
  const reqs = ['/a', '/b', '/a'].map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join('')
  const { text, closed } = await rawExchange(port, [reqs], (s) => count(s, 'HTTP/1.1 200') === 3 && /\r\n\r\na$/.test(s))
  assert.equal(closed, false, 'the connection stays open')
  const bodies = text.split(/HTTP\/1\.1 200 OK\r\n/).slice(1).map((r) => r.split('\r\n\r\n')[1])
  assert.deepEqual(bodies, ['a', 'bb', 'a'])
})

test('pipelining behind a slow answer: the later requests wait their turn (ferrosocket-only: uWS.js closes the connection)',
  { timeout: 15000, skip: ferroOnly('uWS.js closes a connection whose pipelined request comes while an answer is pending') }, async (t) => {
    const port = await routes(t, (app) => {
      app.get('/slow', (res) => {
        res.onAborted(() => {})
        setTimeout(() => res.cork(() => res.end('slow')), 150)
      })
      app.get('/fast', (res) => res.end('fast'))
    })
    const reqs = ['/slow', '/fast', '/slow'].map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join('')
    const { text, closed } = await rawExchange(port, [reqs], (s) => count(s, 'HTTP/1.1 200') === 3 && /slow$/.test(s))
    assert.equal(closed, false, 'the connection stays open')
    const bodies = text.split(/HTTP\/1\.1 200 OK\r\n/).slice(1).map((r) => r.split('\r\n\r\n')[1])
    assert.deepEqual(bodies, ['slow', 'fast', 'slow'])
  })

test('Connection: close closes after the answer', { timeout: 15000 }, async (t) => {
  const port = await routes(t, (app) => app.get('/x', (res) => res.end('x')))
  const a = await rawExchange(port, ['GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'])
  assert.equal(a.closed, true)
  assert.match(a.text, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nx$/)
})

test('HTTP/1.0 is answered and closed unless it asks for keep-alive (ferrosocket-only: uWS.js does not answer HTTP/1.0)',
  { timeout: 15000, skip: ferroOnly('uWS.js leaves HTTP/1.0 requests unanswered') }, async (t) => {
    const port = await routes(t, (app) => app.get('/x', (res) => res.end('x')))
    const a = await rawExchange(port, ['GET /x HTTP/1.0\r\n\r\n'])
    assert.equal(a.closed, true)
    assert.match(a.text, /Connection: close\r\n\r\nx$/)
    const b = await rawExchange(port, ['GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'], (s) => s.endsWith('x'))
    assert.equal(b.closed, false)
  })

test('end(body, true) closes the connection after the answer', { timeout: 15000 }, async (t) => {
  const port = await routes(t, (app) => app.get('/x', (res) => res.end('bye', true)))
  const a = await rawExchange(port, ['GET /x HTTP/1.1\r\nHost: x\r\n\r\n'])
  assert.equal(a.closed, true)
  assert.equal(count(a.text, 'HTTP/1.1 200'), 1)
  assert.match(a.text, /bye$/)
})

test('getParameter by index; getQuery whole and by key', { timeout: 15000 }, async (t) => {
  const port = await routes(t, (app) => {
    app.get('/u/:id/files/:name', (res, req) => {
      res.end(JSON.stringify([req.getParameter(0), req.getParameter(1), req.getParameter(2), req.getQuery(), req.getQuery('a') ?? null]))
    })
  })
  const r = await request(port, { path: '/u/42/files/re%20port.txt?a=1&b=x' })
  assert.deepEqual(JSON.parse(r.body), ['42', 're%20port.txt', '', 'a=1&b=x', '1'])
})

test('getParameter by name (ferrosocket-only: uWS.js v20.30 reads a name as index 0)',
  { timeout: 15000, skip: ferroOnly('uWS.js v20.30 has no named parameters') }, async (t) => {
    const port = await routes(t, (app) => {
      app.get('/u/:id/files/:name', (res, req) => res.end(`${req.getParameter('name')} ${req.getParameter('id')} [${req.getParameter('none')}]`))
    })
    assert.equal((await request(port, { path: '/u/42/files/a.txt' })).body.toString(), 'a.txt 42 []')
  })

// A route that answers with the size and SHA-256 of the body it got, and
// how many pieces it came in.
function bodyEcho (app, path = '/body') {
  app.post(path, (res) => {
    const hash = crypto.createHash('sha256')
    let size = 0
    let pieces = 0
    let lasts = 0
    res.onAborted(() => {})
    res.onData((ab, last) => {
      pieces++
      size += ab.byteLength
      hash.update(Buffer.from(ab))
      if (last) {
        lasts++
        res.cork(() => res.end(JSON.stringify({ size, pieces, lasts, sha: hash.digest('hex') })))
      }
    })
  })
}

test('a large body arrives through onData in pieces, whole, with one last flag', { timeout: 20000 }, async (t) => {
  const port = await routes(t, (app) => bodyEcho(app))
  const body = crypto.randomBytes(1 << 20)
  const pieces = []
  for (let i = 0; i < body.length; i += 64 << 10) pieces.push(body.subarray(i, i + (64 << 10)), 2)
  const r = await request(port, { method: 'POST', path: '/body', body: pieces, headers: { 'content-length': body.length } })
  const got = JSON.parse(r.body)
  assert.equal(got.size, body.length)
  assert.equal(got.sha, crypto.createHash('sha256').update(body).digest('hex'))
  assert.equal(got.lasts, 1)
  assert.ok(got.pieces > 1, `pieces: ${got.pieces}`)
})

test('a chunked request body is decoded; a bodiless request still reports one empty last piece', { timeout: 15000 }, async (t) => {
  const port = await routes(t, (app) => bodyEcho(app))
  const r = await request(port, { method: 'POST', path: '/body', body: ['hello ', 20, 'chunked ', 20, 'world'] })
  const got = JSON.parse(r.body)
  assert.equal(got.size, 'hello chunked world'.length)
  assert.equal(got.sha, crypto.createHash('sha256').update('hello chunked world').digest('hex'))
  const empty = JSON.parse((await request(port, { method: 'POST', path: '/body', body: '' })).body)
  assert.deepEqual([empty.size, empty.pieces, empty.lasts], [0, 1, 1])
})

test('write() sends a chunked response; the next request on the connection follows it', { timeout: 15000 }, async (t) => {
  const port = await routes(t, (app) => {
    app.get('/stream', (res) => {
      res.onAborted(() => {})
      res.writeHeader('Content-Type', 'text/plain')
      res.write('one ')
      setTimeout(() => res.cork(() => { res.write('two '); res.end('three') }), 30)
    })
  })
  const agent = keepAliveAgent(t)
  const a = await request(port, { path: '/stream', agent })
  assert.equal(a.headers['transfer-encoding'], 'chunked')
  assert.equal(a.headers['content-type'], 'text/plain')
  assert.equal(a.body.toString(), 'one two three')
  const b = await request(port, { path: '/stream', agent })
  assert.equal(b.body.toString(), 'one two three')
  assert.equal(a.socket, b.socket)
})

test('tryEnd with backpressure: a slow reader gets the whole body through onWritable, in order', { timeout: 30000 }, async (t) => {
  const total = 8 << 20
  const data = crypto.randomBytes(total)
  let sawBackpressure = 0
  let writables = 0
  const port = await routes(t, (app) => {
    app.get('/big', (res) => {
      res.onAborted(() => { res.gone = true })
      const CHUNK = 256 << 10
      const pump = () => {
        while (!res.gone) {
          const offset = res.getWriteOffset()
          if (offset >= total) return
          const [ok, done] = res.tryEnd(data.subarray(offset, offset + CHUNK), total)
          if (done) return
          if (!ok) {
            sawBackpressure++
            res.onWritable(() => { writables++; pump(); return true })
            return
          }
        }
      }
      pump()
    })
  })
  const r = await request(port, {
    path: '/big',
    // Reads slowly at first, so the server's queue fills.
    onResponse: (res) => { res.pause(); setTimeout(() => res.resume(), 500) }
  })
  assert.equal(Number(r.headers['content-length']), total)
  assert.equal(r.body.length, total)
  assert.ok(r.body.equals(data), 'the body arrived intact and in order')
  assert.ok(sawBackpressure > 0, 'tryEnd reported backpressure')
  assert.ok(writables > 0, 'onWritable was called')
})

test('onAborted runs when the client goes away before the answer; the server keeps serving', { timeout: 15000 }, async (t) => {
  let aborted
  const abortedSeen = new Promise((resolve) => { aborted = resolve })
  const port = await routes(t, (app) => {
    app.get('/hang', (res) => res.onAborted(aborted))
    app.get('/ok', (res) => res.end('ok'))
  })
  const sock = net.connect(port, '127.0.0.1')
  sock.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\n')
  await delay(100)
  sock.destroy()
  await withTimeout(abortedSeen, 5000, 'onAborted')
  assert.equal((await request(port, { path: '/ok' })).body.toString(), 'ok')
})

test('res.close() closes the connection and runs onAborted', { timeout: 15000 }, async (t) => {
  let abortedCalls = 0
  const port = await routes(t, (app) => app.get('/close', (res) => {
    res.onAborted(() => abortedCalls++)
    setTimeout(() => res.close(), 20)
  }))
  const a = await rawExchange(port, ['GET /close HTTP/1.1\r\nHost: x\r\n\r\n'])
  assert.equal(a.closed, true)
  assert.equal(a.text, '')
  assert.equal(abortedCalls, 1)
})

test('a WebSocket upgrade on a connection that served HTTP requests first', { timeout: 15000 }, async (t) => {
  let opened = 0
  const server = await startApp({ open: () => opened++ }, {
    pattern: '/ws',
    setup: (app) => app.get('/page', (res) => res.end('page'))
  })
  t.after(() => server.close())
  const key = newKey()
  const { text } = await rawExchange(server.port, [
    'GET /page HTTP/1.1\r\nHost: x\r\n\r\n',
    50,
    `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
  ], (s) => /101 Switching Protocols[^]*\r\n\r\n/.test(s))
  assert.match(text, /page/)
  assert.match(text, /HTTP\/1\.1 101 Switching Protocols/)
  assert.ok(text.includes(acceptFor(key)))
  await delay(50)
  assert.equal(opened, 1)
})

test('a body over maxBodyLength is refused 413 (ferrosocket-only option)',
  { timeout: 15000, skip: ferroOnly('maxBodyLength is a ferrosocket option') }, async (t) => {
    const port = await routes(t, (app) => bodyEcho(app), { maxBodyLength: 1000 })
    const big = await request(port, { method: 'POST', path: '/body', body: Buffer.alloc(1001) }).catch((e) => e)
    assert.equal(big.status, 413)
    const ok = JSON.parse((await request(port, { method: 'POST', path: '/body', body: Buffer.alloc(1000) })).body)
    assert.equal(ok.size, 1000)
    const chunked = await rawExchange(port, ['POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', '3e8\r\n' + 'a'.repeat(1000) + '\r\n', '1\r\nb\r\n'])
    assert.match(chunked.text, /^HTTP\/1\.1 413/)
    assert.equal(chunked.closed, true)
  })

test('ambiguous framing (Content-Length with Transfer-Encoding) is refused 400 (ferrosocket-only: request smuggling)',
  { timeout: 15000, skip: ferroOnly('uWS.js answers differently') }, async (t) => {
    const port = await routes(t, (app) => bodyEcho(app))
    const r = await rawExchange(port, ['POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'])
    assert.match(r.text, /^HTTP\/1\.1 400/)
    assert.equal(r.closed, true)
  })

test('a route that throws after writing closes the connection (ferrosocket-only: uWS.js crashes the process)',
  { timeout: 15000, skip: ferroOnly('uWS.js lets the exception take the process down') }, async (t) => {
    const warnings = []
    const onWarning = (w) => warnings.push(w)
    process.on('warning', onWarning)
    t.after(() => process.off('warning', onWarning))
    const port = await routes(t, (app) => {
      app.get('/half', (res) => { res.write('partial'); throw new Error('handler failed midway') })
      app.get('/ok', (res) => res.end('ok'))
    })
    const r = await rawExchange(port, ['GET /half HTTP/1.1\r\nHost: x\r\n\r\n'])
    assert.equal(r.closed, true)
    assert.match(r.text, /partial/)
    assert.doesNotMatch(r.text, /0\r\n\r\n$/, 'the chunked body was not ended as if complete')
    assert.equal((await request(port, { path: '/ok' })).body.toString(), 'ok')
  })

test('tryEnd without a usable totalSize sends the chunk as the whole body (ferrosocket-only: uWS.js requires the total)',
  { timeout: 15000, skip: ferroOnly('uWS.js takes totalSize as given') }, async (t) => {
    const port = await routes(t, (app) => app.get('/x', (res) => { assert.deepEqual(res.tryEnd('whole'), [true, true]) }))
    const r = await request(port, { path: '/x' })
    assert.equal(r.headers['content-length'], '5')
    assert.equal(r.body.toString(), 'whole')
  })

test('a large upload while the JS thread is busy arrives whole (the body waits for JS rather than piling up)', { timeout: 30000 }, async (t) => {
  const port = await routes(t, (app) => {
    bodyEcho(app)
    app.get('/busy', (res) => {
      const until = Date.now() + 800
      while (Date.now() < until) {} // the JS thread is stuck while the upload runs
      res.end('done')
    })
  }, { maxBodyLength: 64 << 20 })
  const body = crypto.randomBytes(24 << 20)
  const busy = request(port, { path: '/busy' })
  await delay(50)
  const r = await request(port, { method: 'POST', path: '/body', body, headers: { 'content-length': body.length } })
  assert.equal((await busy).body.toString(), 'done')
  const got = JSON.parse(r.body)
  assert.equal(got.size, body.length)
  assert.equal(got.sha, crypto.createHash('sha256').update(body).digest('hex'))
  assert.equal(got.lasts, 1)
})
