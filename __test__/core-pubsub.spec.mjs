// Pub/sub: the topic set of a socket, who receives what, subscriber counts,
// ordering, and slow subscribers.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startApp, text, EventLog } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'
import { rawConnect, OP } from './helpers/raw-client.mjs'
import { stall } from './helpers/backpressure.mjs'
import { waitFor, delay } from './helpers/env.mjs'

// Server where each client's first message is a command evaluated against
// its own ws: "sub:<topic>", "unsub:<topic>", "pub:<topic>:<payload>".
// Server-side sockets are available in open order as log.of('open')[i].ws.
async function pubsubServer (t, behavior = {}) {
  const log = new EventLog()
  const server = await startApp({
    open: log.on('open'),
    message: (ws, message) => {
      const [cmd, topic, ...rest] = text(message).split(':')
      if (cmd === 'sub') log.push('result', { ws, value: ws.subscribe(topic) })
      else if (cmd === 'unsub') log.push('result', { ws, value: ws.unsubscribe(topic) })
      else if (cmd === 'pub') log.push('result', { ws, value: ws.publish(topic, rest.join(':')) })
    },
    close: log.on('close'),
    ...behavior
  })
  t.after(() => server.close())
  return { ...server, log, url: `ws://127.0.0.1:${server.port}/` }
}

// Connects `n` ws clients and returns [{ client, ws }] with the matching
// server-side socket.
async function clients (t, { url, log }, n) {
  const out = []
  for (let i = 0; i < n; i++) {
    const client = await connect(url)
    t.after(() => client.terminate())
    const opens = await log.wait('open', { count: out.length + 1 })
    out.push({ client, ws: opens[out.length].ws })
  }
  return out
}

async function expectNothing (client, ms = 300) {
  await new Promise((resolve) => setTimeout(resolve, ms))
  assert.deepEqual(client.messages.map((m) => m.data.toString()), [], 'unexpected message')
}

test('subscribe / isSubscribed / getTopics / unsubscribe', { timeout: 10000 }, async (t) => {
  const srv = await pubsubServer(t)
  const [{ ws }] = await clients(t, srv, 1)
  assert.equal(ws.isSubscribed('news'), false)
  assert.deepEqual(ws.getTopics(), [])
  assert.equal(ws.subscribe('news'), true)
  ws.subscribe('sport')
  ws.subscribe('news') // again: no duplicate
  assert.equal(ws.isSubscribed('news'), true)
  assert.equal(ws.isSubscribed('sport'), true)
  assert.equal(ws.isSubscribed('weather'), false)
  assert.deepEqual([...ws.getTopics()].sort(), ['news', 'sport'])
  assert.equal(ws.unsubscribe('sport'), true, 'unsubscribe returns true when it was subscribed')
  assert.equal(ws.unsubscribe('sport'), false, 'and false when it was not')
  assert.equal(ws.unsubscribe('never'), false)
  assert.equal(ws.isSubscribed('sport'), false)
  assert.deepEqual(ws.getTopics(), ['news'])
})

test('topics given as ArrayBuffer, Buffer or string are the same topic', { timeout: 10000 }, async (t) => {
  const srv = await pubsubServer(t)
  const [{ ws, client }] = await clients(t, srv, 1)
  const asBuffer = Buffer.from('room/42')
  const asArrayBuffer = new TextEncoder().encode('room/42').buffer
  ws.subscribe(asArrayBuffer)
  assert.equal(ws.isSubscribed('room/42'), true)
  assert.equal(ws.isSubscribed(asBuffer), true)
  assert.deepEqual(ws.getTopics(), ['room/42'])
  assert.equal(srv.app.numSubscribers(asBuffer), 1)
  srv.app.publish(asBuffer, 'via buffer topic')
  assert.equal(await client.nextText(), 'via buffer topic')
  assert.equal(ws.unsubscribe('room/42'), true)
  assert.deepEqual(ws.getTopics(), [])
})

test('ws.publish reaches every other subscriber but not the sender nor non-subscribers', { timeout: 10000 }, async (t) => {
  const srv = await pubsubServer(t)
  const [a, b, c, outsider] = await clients(t, srv, 4)
  for (const s of [a, b, c]) s.ws.subscribe('chat')
  outsider.ws.subscribe('other')
  await a.client.send('pub:chat:hi from a')
  assert.equal(await b.client.nextText(), 'hi from a')
  assert.equal(await c.client.nextText(), 'hi from a')
  await expectNothing(a.client)
  await expectNothing(outsider.client, 0)
})

test('app.publish reaches all subscribers; returns true with subscribers, false with none', { timeout: 10000 }, async (t) => {
  const srv = await pubsubServer(t)
  const [a, b, outsider] = await clients(t, srv, 3)
  a.ws.subscribe('all')
  b.ws.subscribe('all')
  assert.equal(srv.app.publish('all', 'to everyone'), true)
  assert.equal(await a.client.nextText(), 'to everyone')
  assert.equal(await b.client.nextText(), 'to everyone')
  assert.equal(srv.app.publish('nobody-here', 'lost'), false)
  await expectNothing(outsider.client)
})

test('binary publish arrives as binary, text publish as text (app and ws)', { timeout: 10000 }, async (t) => {
  const srv = await pubsubServer(t)
  const [a, b] = await clients(t, srv, 2)
  a.ws.subscribe('bin')
  b.ws.subscribe('bin')
  const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff])
  srv.app.publish('bin', bytes, true)
  srv.app.publish('bin', 'text now', false)
  a.ws.publish('bin', new Uint8Array([9, 8, 7]), true)
  const first = await b.client.nextMessage()
  assert.equal(first.isBinary, true)
  assert.ok(first.data.equals(bytes))
  const second = await b.client.nextMessage()
  assert.equal(second.isBinary, false)
  assert.equal(second.data.toString(), 'text now')
  const third = await b.client.nextMessage()
  assert.equal(third.isBinary, true)
  assert.deepEqual([...third.data], [9, 8, 7])
  const onA = await a.client.nextMessage()
  assert.equal(onA.isBinary, true)
  assert.ok(onA.data.equals(bytes))
})

test('numSubscribers counts each socket once and drops to 0 on unsubscribe and on close', { timeout: 10000 }, async (t) => {
  const srv = await pubsubServer(t)
  const [a, b, c] = await clients(t, srv, 3)
  assert.equal(srv.app.numSubscribers('count'), 0)
  a.ws.subscribe('count')
  a.ws.subscribe('count')
  b.ws.subscribe('count')
  c.ws.subscribe('count')
  assert.equal(srv.app.numSubscribers('count'), 3)
  a.ws.unsubscribe('count')
  assert.equal(srv.app.numSubscribers('count'), 2)
  b.client.ws.close(1000)
  c.client.terminate()
  await srv.log.wait('close', { count: 2 })
  assert.equal(srv.app.numSubscribers('count'), 0)
  assert.equal(srv.app.publish('count', 'anyone?'), false)
})

test('server-side ws.end() and ws.close() remove the socket from its topics', { timeout: 10000 }, async (t) => {
  const srv = await pubsubServer(t)
  const [a, b] = await clients(t, srv, 2)
  a.ws.subscribe('leave')
  b.ws.subscribe('leave')
  a.ws.end(1000)
  assert.equal(srv.app.numSubscribers('leave'), 1)
  b.ws.close()
  assert.equal(srv.app.numSubscribers('leave'), 0)
  await a.client.closed
  await b.client.closed
})

test('subscribing inside open works for a publish made right after', { timeout: 10000 }, async (t) => {
  let app
  const srv = await pubsubServer(t, {
    open: (ws) => {
      ws.subscribe('welcome')
      app.publish('welcome', 'hello newcomer')
    }
  })
  app = srv.app
  const client = await connect(srv.url)
  t.after(() => client.terminate())
  assert.equal(await client.nextText(), 'hello newcomer')
})

test('1000 publishes arrive in order at every subscriber', { timeout: 20000 }, async (t) => {
  const srv = await pubsubServer(t)
  const subs = await clients(t, srv, 3)
  for (const s of subs) s.ws.subscribe('seq')
  for (let i = 0; i < 1000; i++) srv.app.publish('seq', `n${i}`)
  const expected = Array.from({ length: 1000 }, (_, i) => `n${i}`)
  for (const s of subs) {
    const got = []
    for (let i = 0; i < 1000; i++) got.push(await s.client.nextText(5000))
    assert.deepEqual(got, expected)
  }
})

test('publish and direct send to the same socket keep their relative order', { timeout: 20000 }, async (t) => {
  const srv = await pubsubServer(t)
  const [{ ws, client }] = await clients(t, srv, 1)
  ws.subscribe('mix')
  const expected = []
  for (let i = 0; i < 300; i++) {
    if (i % 3 === 0) ws.send(`send ${i}`)
    else srv.app.publish('mix', `pub ${i}`)
    expected.push(i % 3 === 0 ? `send ${i}` : `pub ${i}`)
  }
  const got = []
  for (let i = 0; i < 300; i++) got.push(await client.nextText(5000))
  assert.deepEqual(got, expected)
})

test('a subscriber over maxBackpressure is skipped while the others still receive every publish', { timeout: 30000 }, async (t) => {
  const MAX = 64 * 1024
  const srv = await pubsubServer(t, { maxBackpressure: MAX })
  const [fast] = await clients(t, srv, 1)
  const slowClient = await rawConnect(srv.port)
  t.after(() => slowClient.destroy())
  slowClient.socket.pause()
  const [, { ws: slowWs }] = await srv.log.wait('open', { count: 2 })
  fast.ws.subscribe('feed')
  slowWs.subscribe('feed')
  assert.notEqual(stall(slowWs), 2)
  await delay(200)
  assert.ok(slowWs.getBufferedAmount() > MAX, 'slow subscriber is over maxBackpressure')
  for (let i = 0; i < 20; i++) {
    srv.app.publish('feed', `feed ${i}`)
    assert.equal(await fast.client.nextText(), `feed ${i}`)
  }
  assert.ok(slowWs.getBufferedAmount() > MAX, 'slow subscriber is still over maxBackpressure')
  slowClient.socket.resume()
  const seen = []
  for (;;) {
    const frame = await slowClient.nextFrame(1000).catch(() => null)
    if (!frame) break
    if (frame.opcode === OP.TEXT) seen.push(frame.payload.toString())
    else if (frame.opcode === OP.BINARY) seen.push(`binary ${frame.payload.length}`)
  }
  assert.deepEqual(seen, [`binary ${8 * 1024 * 1024}`], 'slow subscriber got publishes made while it was over the limit')
  await waitFor(() => slowWs.getBufferedAmount() === 0, 5000, 'slow subscriber to drain')
  srv.app.publish('feed', 'after catching up')
  assert.equal(await fast.client.nextText(), 'after catching up')
  const frame = await slowClient.nextDataFrame()
  assert.equal(frame.payload.toString(), 'after catching up', 'a subscriber that caught up receives again')
})

test('publishing to a topic whose subscriber just closed does not throw', { timeout: 10000 }, async (t) => {
  const srv = await pubsubServer(t)
  const [a] = await clients(t, srv, 1)
  a.ws.subscribe('gone')
  a.client.terminate()
  await srv.log.wait('close')
  assert.doesNotThrow(() => srv.app.publish('gone', 'into the void'))
  assert.equal(srv.app.numSubscribers('gone'), 0)
})
