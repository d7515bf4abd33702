// Floods from hostile peers (#13 item 1), core API: control frames and
// messages nobody handles never reach JS, a peer that keeps sending
// control frames is closed with 1008, and a bystander keeps receiving its
// broadcast meanwhile. With the real `ws` client.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startApp } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'
import { ferroOnly, delay } from './helpers/env.mjs'

const skip = ferroOnly('closing control-frame floods with 1008 is ferrosocket\'s (uWS.js answers every ping)')

test('pings and unsolicited pongs from 10 flooders: each is closed with 1008, the bystander misses no broadcast', { timeout: 30000, skip }, async (t) => {
  const closes = []
  const server = await startApp({
    open: (ws) => ws.subscribe('ticks'),
    close: (ws, code) => closes.push(code)
  })
  t.after(() => server.close())
  const bystander = await connect(`ws://127.0.0.1:${server.port}/`)
  t.after(() => bystander.terminate())
  let sent = 0
  const ticker = setInterval(() => server.app.publish('ticks', String(sent++)), 10)
  t.after(() => clearInterval(ticker))
  const rss = process.memoryUsage().rss

  const flooders = await Promise.all(Array.from({ length: 10 }, () => connect(`ws://127.0.0.1:${server.port}/`)))
  for (const [i, f] of flooders.entries()) {
    for (let n = 0; n < 3000; n++) {
      if (i % 2) f.ws.pong()
      else f.ws.ping()
    }
  }
  const codes = await Promise.all(flooders.map((f) => f.closed.then((c) => c.code)))
  assert.deepEqual(codes, Array(10).fill(1008))
  await delay(100)
  clearInterval(ticker)
  await delay(100)
  // Every tick reached the bystander, in order.
  const got = bystander.messages.map((m) => Number(m.data.toString()))
  assert.deepEqual(got, Array.from({ length: sent }, (_, i) => i))
  assert.equal(closes.filter((c) => c === 1008).length, 10)
  t.diagnostic(`RSS change over the flood: ${((process.memoryUsage().rss - rss) / 1048576).toFixed(1)} MiB (${sent} ticks)`)
})

test('a behavior with ping and pong handlers still gets them; one without a message handler ignores messages', { timeout: 10000 }, async (t) => {
  const seen = []
  const server = await startApp({
    ping: (ws, m) => seen.push(['ping', Buffer.from(m).toString()]),
    pong: (ws, m) => seen.push(['pong', Buffer.from(m).toString()])
  })
  t.after(() => server.close())
  const c = await connect(`ws://127.0.0.1:${server.port}/`)
  t.after(() => c.terminate())
  c.ws.ping('p1')
  c.ws.pong('p2')
  await c.send('nobody handles this')
  await c.until(() => c.pongs.length === 1, 3000, 'the pong')
  for (let i = 0; i < 50 && seen.length < 2; i++) await delay(20)
  assert.deepEqual(seen, [['ping', 'p1'], ['pong', 'p2']])
  assert.equal(c.pongs[0].toString(), 'p1')
})
