// The core API across processes (#12 item 5): `App({ scaleOut })` links an
// App's topics to every App on the same Redis and prefix; a publish on one
// (app.publish or ws.publish) reaches the subscribers of all, text and
// binary, the sender excluded only where it lives. With the real `ws`
// client and a real redis-server.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { uWS } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'
import { ferroOnly, delay } from './helpers/env.mjs'
import { startRedis, startRedisOn, startRedisTls, freePort } from './helpers/redis.mjs'

const skip = ferroOnly('scaleOut is a ferrosocket extension')

async function node (t, url, opts = {}) {
  const states = []
  const app = uWS.App({ scaleOut: { url, onState: (s) => states.push(s), ...opts } })
  app.ws('/*', {
    open: (ws) => ws.subscribe('news'),
    message: (ws, message, isBinary) => ws.publish('news', message, isBinary)
  })
  t.after(() => app.close())
  const ls = await new Promise((resolve) => app.listen('127.0.0.1', 0, resolve))
  for (let i = 0; i < 250 && !states.includes('connected'); i++) await delay(20)
  assert.deepEqual(states, ['connected'])
  return { app, port: uWS.us_socket_local_port(ls), states }
}

async function client (t, port) {
  const c = await connect(`ws://127.0.0.1:${port}/`)
  t.after(() => c.terminate())
  return c
}

test('app.publish and ws.publish reach every node\'s subscribers, text and binary; the sender is skipped where it is', { timeout: 20000, skip }, async (t) => {
  const url = await startRedis(t)
  const one = await node(t, url)
  const two = await node(t, url)
  const a = await client(t, one.port)
  const b = await client(t, two.port)
  const b2 = await client(t, two.port)
  await delay(100)
  one.app.publish('news', 'from one')
  assert.equal(await a.nextText(), 'from one')
  assert.equal(await b.nextText(), 'from one')
  assert.equal(await b2.nextText(), 'from one')
  two.app.publish('news', Buffer.from([1, 2, 3]), true)
  for (const c of [a, b, b2]) {
    const m = await c.nextMessage()
    assert.deepEqual([m.isBinary, [...m.data]], [true, [1, 2, 3]])
  }
  await b.send('said by b')
  assert.equal(await a.nextText(), 'said by b')
  assert.equal(await b2.nextText(), 'said by b')
  // Other prefixes are other fleets.
  const other = await node(t, url, { prefix: 'elsewhere' })
  const o = await client(t, other.port)
  await delay(100)
  one.app.publish('news', 'not for elsewhere')
  for (const c of [a, b, b2]) assert.equal(await c.nextText(), 'not for elsewhere')
  other.app.publish('news', 'only elsewhere')
  assert.equal(await o.nextText(), 'only elsewhere')
  await delay(200)
  assert.equal(a.messages.length + b.messages.length + b2.messages.length, 0, 'nothing from the other prefix reached this fleet')
  assert.equal(o.messages.length, 0)
  const stats = one.app.getScaleOutStats()
  assert.equal(stats.state, 'connected')
  assert.ok(stats.published >= 2)
})

test('scaleOut through a Redis restart: reported, local publishes go on, publishes cross again after', { timeout: 40000, skip }, async (t) => {
  const port = await freePort()
  let redis = await startRedisOn(t, port)
  const one = await node(t, redis.url)
  const two = await node(t, redis.url)
  const a = await client(t, one.port)
  const b = await client(t, two.port)
  await delay(100)
  await redis.stop()
  for (let i = 0; i < 250 && !one.states.includes('disconnected'); i++) await delay(20)
  assert.equal(one.states.at(-1), 'disconnected')
  one.app.publish('news', 'during')
  assert.equal(await a.nextText(), 'during')
  assert.ok(one.app.getScaleOutStats().droppedPublishes >= 1)
  redis = await startRedisOn(t, port)
  for (let i = 0; i < 400 && !(one.states.at(-1) === 'connected' && two.states.at(-1) === 'connected'); i++) await delay(20)
  await delay(300)
  one.app.publish('news', 'after')
  assert.equal(await a.nextText(), 'after')
  assert.equal(await b.nextText(), 'after')
})

test('scaleOut options are checked at construction', { skip }, () => {
  assert.throws(() => uWS.App({ scaleOut: { url: 'http://x' } }), /scaleOut"?\.url.*redis:\/\/ URL/)
  assert.throws(() => uWS.App({ scaleOut: { url: 'redis://x', prefix: '' } }), /prefix/)
  assert.throws(() => uWS.App({ scaleOut: { url: 'redis://x', port: 1 } }), /scaleOut"?\.port/)
  assert.throws(() => uWS.App({ scaleOut: 'redis://x' }), /an object/)
})

test('scaleOut over TLS (rediss://, a client certificate): publishes cross; a wrong tls option fails at construction', { timeout: 20000, skip }, async (t) => {
  const redis = await startRedisTls(t)
  const tls = { ca: redis.ca, cert: redis.cert, key: Buffer.from(redis.key) }
  const one = await node(t, redis.url, { tls })
  const two = await node(t, redis.url, { tls })
  const b = await client(t, two.port)
  await delay(100)
  one.app.publish('news', 'over tls')
  assert.equal(await b.nextText(), 'over tls')
  assert.throws(() => uWS.App({ scaleOut: { url: redis.url, tls: { key: redis.key } } }), /cert and key together/)
  assert.throws(() => uWS.App({ scaleOut: { url: 'redis://127.0.0.1:1', tls } }), /only with a rediss:\/\/ URL/)
})
