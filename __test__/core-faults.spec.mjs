// Faults on the wire (#13 item 6), through a loopback proxy of our own
// (helpers/fault-proxy.mjs): half-open peers are freed by the idle timeout,
// a reset in the middle of a frame costs nothing, a slow link still works,
// and 10k connect/disconnect cycles leave no descriptor or subscription
// behind.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startApp } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'
import net from 'node:net'
import { rawConnect, encodeFrame, upgradeRequest, OP } from './helpers/raw-client.mjs'
import { startFaultProxy, openFds } from './helpers/fault-proxy.mjs'
import { delay, waitFor } from './helpers/env.mjs'

async function server (t, behavior = {}) {
  const closes = []
  const s = await startApp({
    idleTimeout: 8,
    open: (ws) => ws.subscribe('all'),
    message: (ws, m, isBinary) => ws.send(m, isBinary),
    close: (ws, code) => closes.push(code),
    ...behavior
  })
  t.after(() => s.close())
  return { ...s, closes }
}

test('half-open peers (nothing passes, nobody closes) are freed within the idle timeout', { timeout: 30000 }, async (t) => {
  const s = await server(t)
  const proxy = await startFaultProxy(t, s.port)
  const clients = await Promise.all(Array.from({ length: 20 }, () => connect(`ws://127.0.0.1:${proxy.port}/`)))
  t.after(() => { for (const c of clients) c.terminate() })
  assert.equal(s.app.numSubscribers('all'), 20)
  proxy.silence()
  const started = Date.now()
  // Rust frees the subscription when it drops the connection; the close
  // handler runs when JS next gets the event, a moment later on a busy machine.
  await waitFor(() => s.app.numSubscribers('all') === 0 && s.closes.length === 20, 20000, 'the server to free every half-open peer')
  // uWebSockets.js reports an idle timeout as 1006 (closed without a close frame).
  assert.deepEqual([...new Set(s.closes)], [1006])
  // Pinged at 4 s, closed at 8 s of silence, plus the sweeper's tick.
  const took = Date.now() - started
  assert.ok(took <= 12000, `freed after ${took} ms`)
  t.diagnostic(`20 half-open peers freed after ${took} ms (idleTimeout 8 s)`)
})

test('a reset in the middle of a frame: the connection is dropped, the server and other clients carry on', { timeout: 15000 }, async (t) => {
  const s = await server(t)
  const bystander = await connect(`ws://127.0.0.1:${s.port}/`)
  t.after(() => bystander.terminate())
  // The proxy passes the upgrade request and 10 bytes of a 1000-byte frame,
  // then resets both sides.
  const head = Buffer.from(upgradeRequest({ path: '/' }))
  const proxy = await startFaultProxy(t, s.port, { resetAfter: head.length + 10 })
  const frame = encodeFrame(OP.BINARY, Buffer.alloc(1000, 7))
  for (let i = 0; i < 10; i++) {
    const sock = net.connect({ host: '127.0.0.1', port: proxy.port })
    sock.on('error', () => {})
    sock.write(head)
    await delay(20)
    sock.write(frame)
    await new Promise((resolve) => sock.on('close', resolve))
  }
  await bystander.send('still here')
  assert.equal(await bystander.nextText(), 'still here')
  await waitFor(() => s.app.numSubscribers('all') === 1, 5000, 'only the bystander left')
})

test('a slow link (every chunk delayed 50 ms) still upgrades and echoes', { timeout: 15000 }, async (t) => {
  const s = await server(t)
  const proxy = await startFaultProxy(t, s.port, { delayMs: 50 })
  const c = await connect(`ws://127.0.0.1:${proxy.port}/`)
  t.after(() => c.terminate())
  await c.send('slow')
  assert.equal(await c.nextText(), 'slow')
})

test('10k connect/disconnect cycles leave no descriptor or subscription behind', { timeout: 120000 }, async (t) => {
  const s = await server(t)
  await delay(100)
  const baseline = await openFds()
  const rss = process.memoryUsage().rss
  for (let round = 0; round < 100; round++) {
    const batch = await Promise.all(Array.from({ length: 100 }, () => rawConnect(s.port)))
    for (const c of batch) c.socket.destroy()
  }
  await waitFor(() => s.app.numSubscribers('all') === 0, 10000, 'every connection gone on the server')
  let fds = await openFds()
  for (let i = 0; i < 100 && fds > baseline + 2; i++) {
    await delay(100)
    fds = await openFds()
  }
  assert.ok(fds <= baseline + 2, `${fds} descriptors open, ${baseline} before`)
  t.diagnostic(`after 10000 cycles: ${fds} fds (baseline ${baseline}), RSS ${((process.memoryUsage().rss - rss) / 1048576).toFixed(1)} MiB above the start`)
})
