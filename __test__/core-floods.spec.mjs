// Floods from hostile peers (#13 item 1), core API: control frames and
// messages nobody handles never reach JS, a peer that keeps sending
// control frames is closed with 1008, and a bystander keeps receiving its
// broadcast meanwhile. With the real `ws` client.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startApp } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'
import { ferroOnly, delay, waitFor } from './helpers/env.mjs'
import { spawn } from 'node:child_process'

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
  // Every tick reached the bystander, in order; the server's close handler
  // saw each flooder go (on a busy machine, a moment after the client did).
  // 10 s: the server's reads, the ticks and these clients share this test's
  // one JS thread, on a machine other test files load too.
  await waitFor(() => bystander.messages.length >= sent && closes.filter((c) => c === 1008).length === 10, 10000,
    'the last ticks and close events').catch((err) => {
    throw new Error(`${err.message}: ${bystander.messages.length} of ${sent} ticks, close codes seen ${JSON.stringify(closes)}`)
  })
  const got = bystander.messages.map((m) => Number(m.data.toString()))
  assert.deepEqual(got, Array.from({ length: sent }, (_, i) => i))
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

test('fairness: with the JS thread stalled 12 s and one client flooding messages, 20 healthy clients keep answering pings and stay open', { timeout: 60000, skip }, async (t) => {
  const { implPath } = await import('./helpers/child.mjs')
  // The server in a child process, so blocking its JS thread leaves these
  // clients running. idleTimeout 8 s: pings at 4 s, closed at 8 s unanswered.
  const script = `
    const uWS = require(${JSON.stringify(implPath)})
    let messages = 0
    const app = uWS.App().ws('/*', { idleTimeout: 8, message: () => { messages++ }, open: (ws) => ws.subscribe('all') })
    app.listen('127.0.0.1', 0, (ls) => console.log('port ' + uWS.us_socket_local_port(ls)))
    process.stdin.on('data', (d) => {
      if (String(d).includes('block')) {
        const until = Date.now() + 12000
        while (Date.now() < until) {}
        app.publish('all', 'alive')
        console.log('unblocked ' + messages)
      }
    })
    process.stdin.on('end', () => { app.close(); process.exit(0) })`
  const { child, lines, line } = stallableServer(t, script)
  const port = Number((await line('port ')).split(' ')[1])
  const healthy = await Promise.all(Array.from({ length: 20 }, () => connect(`ws://127.0.0.1:${port}/`)))
  t.after(() => { for (const c of healthy) c.terminate() })
  const flooder = await connect(`ws://127.0.0.1:${port}/`)
  t.after(() => flooder.terminate())
  const kib = Buffer.alloc(1024, 7)
  let flooding = true
  const flood = () => {
    // At most 4096 sends a turn: a server that reads as fast as this
    // sends never fills the buffer, and the loop must not hold the thread.
    for (let i = 0; i < 4096 && flooding && flooder.ws.readyState === 1 && flooder.ws.bufferedAmount < (4 << 20); i++) flooder.ws.send(kib)
    if (flooding && flooder.ws.readyState === 1) setTimeout(flood, 1)
  }
  flood()
  await delay(300)
  child.stdin.write('block\n')
  await line('unblocked')
  flooding = false
  const alive = await Promise.all(healthy.map((c) => c.nextText(5000).catch((e) => `error: ${e.message}`)))
  assert.deepEqual(alive, Array(20).fill('alive'), 'every healthy client stayed open through the stall')
  assert.deepEqual(healthy.map((c) => c.closeInfo), Array(20).fill(null))
  t.diagnostic(`${lines.find((l) => l.startsWith('unblocked'))} (messages the JS thread had read when it unblocked)`)
})

test('Socket.IO: WebSocket pings flooded by 10 clients that never read are closed with 1008; a bystander keeps its events', { timeout: 30000, skip }, async (t) => {
  const { createRequire } = await import('node:module')
  const { rawConnect, encodeFrame, OP } = await import('./helpers/raw-client.mjs')
  const { io: ioc } = await import('socket.io-client')
  const { Server } = createRequire(import.meta.url)('..')
  const io = new Server(0)
  t.after(() => io.close())
  await delay(50)
  const port = io.httpServer.address().port
  const bystander = ioc(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false })
  t.after(() => bystander.close())
  await new Promise((resolve) => bystander.once('connect', resolve))
  let got = 0
  bystander.on('tick', () => { got++ })
  let sent = 0
  const ticker = setInterval(() => { io.emit('tick', sent++) }, 10)
  t.after(() => clearInterval(ticker))
  const rss = process.memoryUsage().rss
  // Raw Engine.IO WebSocket connections: 30k pings each, in big writes,
  // never reading what comes back.
  const ping = encodeFrame(OP.PING, Buffer.from('x'))
  const burst = Buffer.concat(Array(10000).fill(ping))
  const flooders = await Promise.all(Array.from({ length: 10 }, () => rawConnect(port, { path: '/socket.io/?EIO=4&transport=websocket' })))
  for (const f of flooders) {
    f.socket.pause()
    for (let i = 0; i < 3; i++) f.socket.write(burst)
  }
  for (const f of flooders) f.socket.resume()
  const codes = await Promise.all(flooders.map(async (f) => {
    for (;;) {
      const frame = await f.nextFrame(10000)
      if (frame === null) return 'ended without a close frame'
      if (frame.opcode === OP.CLOSE) return frame.payload.readUInt16BE(0)
    }
  }))
  assert.deepEqual(codes, Array(10).fill(1008))
  clearInterval(ticker)
  await waitFor(() => got >= sent, 5000, 'the bystander\'s last events')
  assert.equal(got, sent, 'the bystander got every event')
  t.diagnostic(`RSS change over the flood: ${((process.memoryUsage().rss - rss) / 1048576).toFixed(1)} MiB`)
})

test('Socket.IO fairness: with the JS thread stalled past pingInterval + pingTimeout, a flooding client that is paused is not dropped for the pong it could not send, and healthy clients stay', { timeout: 60000, skip }, async (t) => {
  const { implPath } = await import('./helpers/child.mjs')
  const { io: ioc } = await import('socket.io-client')
  const { WebSocket } = await import('ws')
  // The server in a child process, so blocking its JS thread leaves these
  // clients running. A heartbeat of 1 s + 1 s, JS blocked 5 s.
  const script = `
    const { Server } = require(${JSON.stringify(implPath)})
    const io = new Server(0, { pingInterval: 1000, pingTimeout: 1000 })
    let events = 0
    const reasons = []
    io.on('connection', (s) => { s.on('x', () => { events++ }); s.on('disconnect', (r) => reasons.push(r)) })
    setTimeout(() => console.log('port ' + io.httpServer.address().port), 50)
    process.stdin.on('data', (d) => {
      if (String(d).includes('block')) {
        const until = Date.now() + 5000
        while (Date.now() < until) {}
        setTimeout(() => { io.emit('alive'); console.log('unblocked ' + events + ' ' + JSON.stringify(reasons)) }, 200)
      }
    })
    process.stdin.on('end', () => { io.close(); process.exit(0) })`
  const { child, line } = stallableServer(t, script)
  const port = Number((await line('port ')).split(' ')[1])
  const healthy = await Promise.all(Array.from({ length: 5 }, () => new Promise((resolve) => {
    const c = ioc(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false })
    c.disconnects = []
    c.on('disconnect', (r) => c.disconnects.push(r))
    c.once('connect', () => resolve(c))
  })))
  t.after(() => { for (const c of healthy) c.close() })
  // The flooder: Engine.IO over a raw `ws`, answering pings (behind its
  // own flood), sending 1 KiB events as fast as its buffer allows.
  const flooder = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`)
  t.after(() => flooder.terminate())
  let flooderClosed = null
  flooder.on('close', (code) => { flooderClosed = code })
  let joined
  const connected = new Promise((resolve) => { joined = resolve })
  flooder.on('message', (m) => {
    const s = String(m)
    if (s === '2') flooder.send('3')
    // Events only once the server accepted the CONNECT (before, socket.io
    // closes the connection too).
    if (s.startsWith('40')) joined()
  })
  await new Promise((resolve) => flooder.once('open', resolve))
  flooder.send('40')
  await connected
  const event = '42["x","' + 'a'.repeat(1024) + '"]'
  let flooding = true
  const flood = () => {
    for (let i = 0; i < 4096 && flooding && flooder.readyState === 1 && flooder.bufferedAmount < (4 << 20); i++) flooder.send(event)
    if (flooding && flooder.readyState === 1) setTimeout(flood, 1)
  }
  flood()
  await delay(300)
  child.stdin.write('block\n')
  await delay(3000)
  flooding = false
  const unblocked = await line('unblocked')
  const alive = await Promise.all(healthy.map((c) => new Promise((resolve) => {
    const timer = setTimeout(() => resolve(`no 'alive' (${c.disconnects})`), 5000)
    c.once('alive', () => { clearTimeout(timer); resolve('alive') })
  })))
  assert.deepEqual(alive, Array(5).fill('alive'), 'every healthy client stayed connected through the stall')
  assert.equal(flooderClosed, null, `the flooder was closed: ${unblocked}`)
  assert.match(unblocked, / \[\]$/, 'no socket was disconnected')
  t.diagnostic(unblocked)
})

/**
 * A server script in a child process (so blocking its JS thread leaves
 * this process's clients running), driven through stdin; `line(prefix)`
 * waits for the first stdout line starting with it.
 */
function stallableServer (t, script) {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.after(() => child.stdin.end())
  const lines = []
  const waiters = []
  child.stdout.on('data', (d) => { lines.push(...String(d).trim().split('\n')); for (const w of waiters.splice(0)) w() })
  const line = async (prefix) => {
    for (;;) {
      const found = lines.find((l) => l.startsWith(prefix))
      if (found) return found
      await new Promise((resolve) => waiters.push(resolve))
    }
  }
  return { child, lines, line }
}
