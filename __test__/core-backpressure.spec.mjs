// Backpressure as a value: send() returns 1 (sent), 0 (queued, drain will
// follow) or 2 (dropped: over maxBackpressure). The slow peer is a raw
// client whose socket is paused, so the kernel buffers fill for real.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startApp, copy, EventLog } from './helpers/app.mjs'
import { connect } from './helpers/ws-client.mjs'
import { rawConnect, OP } from './helpers/raw-client.mjs'
import { sendUntilDropped } from './helpers/backpressure.mjs'
import { ferroOnly, waitFor } from './helpers/env.mjs'

const CHUNK = 16 * 1024
const FRAME_OVERHEAD = 14 // largest server frame header (no mask)

// Server whose first connection's ws is handed out via log.wait('open'),
// and a raw client that has stopped reading.
async function stalledPair (t, behavior = {}) {
  const log = new EventLog()
  const server = await startApp({
    open: log.on('open'),
    drain: log.on('drain', (ws) => ({ buffered: ws.getBufferedAmount() })),
    close: log.on('close', (ws, code) => ({ code })),
    ...behavior
  })
  t.after(() => server.close())
  const client = await rawConnect(server.port)
  t.after(() => client.destroy())
  client.socket.pause()
  const [{ ws }] = await log.wait('open')
  return { server, client, ws, log }
}

// Reads data frames until none arrives for `quietMs`; returns the sequence
// numbers (first 4 bytes) of the binary frames.
async function drainSequences (client, quietMs = 1000) {
  const seqs = []
  for (;;) {
    const frame = await client.nextFrame(quietMs).catch(() => null)
    if (!frame) return seqs
    if (frame.opcode === OP.BINARY) seqs.push(frame.payload.readUInt32BE(0))
  }
}

test('fresh socket: getBufferedAmount() is 0 and send() returns 1 to a reading client', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const server = await startApp({
    open: (ws) => {
      log.push('state', { before: ws.getBufferedAmount(), status: ws.send('hello'), after: ws.getBufferedAmount() })
    }
  })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/`)
  t.after(() => client.terminate())
  assert.equal(await client.nextText(), 'hello')
  const [state] = await log.wait('state')
  assert.deepEqual({ before: state.before, status: state.status, after: state.after }, { before: 0, status: 1, after: 0 })
})

test('peer stops reading: send() returns 1, then 0 (buffered grows), then 2 once over maxBackpressure', { timeout: 15000 }, async (t) => {
  const MAX = 256 * 1024
  const { ws } = await stalledPair(t, { maxBackpressure: MAX })
  const results = sendUntilDropped(ws, { chunkSize: CHUNK })
  const statuses = results.map((r) => r.status)
  const firstZero = statuses.indexOf(0)
  const firstDrop = statuses.indexOf(2)
  assert.equal(statuses[0], 1, 'first send to an idle socket succeeds')
  assert.ok(firstZero > 0, 'send() returns 0 once the peer stops reading')
  assert.ok(firstDrop > firstZero, 'messages are queued (0) before any is dropped (2)')
  for (const r of results) {
    if (r.status === 1) assert.equal(r.buffered, 0, `send #${r.seq} returned 1 but ${r.buffered} bytes are buffered`)
    if (r.status === 0) assert.ok(r.buffered > 0, `send #${r.seq} returned 0 with nothing buffered`)
  }
  const zeros = results.filter((r) => r.status === 0).map((r) => r.buffered)
  for (let i = 1; i < zeros.length; i++) assert.ok(zeros[i] > zeros[i - 1], 'buffered amount grows with each queued message')
  const atDrop = results[firstDrop].buffered
  assert.ok(atDrop > MAX - CHUNK, `dropped although only ${atDrop} bytes were buffered`)
  const peak = Math.max(...results.map((r) => r.buffered))
  assert.ok(peak <= MAX + CHUNK + FRAME_OVERHEAD, `buffered ${peak} bytes, more than maxBackpressure + one message`)
})

test('default maxBackpressure is 64 KiB', { timeout: 15000 }, async (t) => {
  const { ws } = await stalledPair(t)
  const results = sendUntilDropped(ws, { chunkSize: 4 * 1024 })
  const dropIndex = results.findIndex((r) => r.status === 2)
  assert.ok(dropIndex > 0, 'a send was dropped')
  const atDrop = results[dropIndex].buffered
  assert.ok(atDrop >= 64 * 1024 - 4 * 1024, `dropped at ${atDrop} buffered bytes`)
  assert.ok(atDrop <= 64 * 1024 + 4 * 1024 + FRAME_OVERHEAD, `buffered ${atDrop} bytes, over 64 KiB + one message`)
})

test('after resume: queued messages arrive in order, dropped ones never do, drain fires, buffer empties, socket stays usable', { timeout: 20000 }, async (t) => {
  const { ws, client, log } = await stalledPair(t, { maxBackpressure: 128 * 1024 })
  const results = sendUntilDropped(ws, { chunkSize: CHUNK, stopAfterDrops: 3 })
  const kept = results.filter((r) => r.status !== 2).map((r) => r.seq)
  const dropped = results.filter((r) => r.status === 2).map((r) => r.seq)
  assert.equal(dropped.length, 3)
  assert.ok(ws.getBufferedAmount() > 0)
  client.socket.resume()
  await log.wait('drain', { timeout: 10000 })
  await waitFor(() => ws.getBufferedAmount() === 0, 10000, 'buffered amount to reach 0')
  const received = await drainSequences(client)
  assert.deepEqual(received, kept)
  assert.equal(log.of('close').length, 0, 'closeOnBackpressureLimit defaults to false')
  assert.equal(ws.send(Buffer.from([0, 0, 0xff, 0xff]), true), 1)
  const after = await client.nextDataFrame()
  assert.equal(after.payload.readUInt32BE(0), 0xffff)
})

test('closeOnBackpressureLimit: true closes the socket when a message is dropped', { timeout: 15000 }, async (t) => {
  const { ws, client, log } = await stalledPair(t, { maxBackpressure: 128 * 1024, closeOnBackpressureLimit: true })
  const results = sendUntilDropped(ws, { chunkSize: CHUNK })
  assert.equal(results.at(-1).status, 2)
  const [closed] = await log.wait('close', { timeout: 5000 })
  assert.notEqual(closed.code, 1000)
  client.socket.resume()
  const end = await client.untilClosed(5000)
  if (end.closeFrame) assert.notEqual(end.code, 1000)
  assert.throws(() => ws.send('x'), /closed/i)
})

test('a single message larger than maxBackpressure is sent when nothing is buffered', { timeout: 10000 }, async (t) => {
  const log = new EventLog()
  const big = Buffer.alloc(512 * 1024, 0x61)
  const server = await startApp({
    maxBackpressure: 64 * 1024,
    open: (ws) => log.push('status', { status: ws.send(big, true) })
  })
  t.after(() => server.close())
  const client = await connect(`ws://127.0.0.1:${server.port}/`)
  t.after(() => client.terminate())
  const message = await client.nextMessage(5000)
  assert.ok(message.data.equals(big))
  const [{ status }] = await log.wait('status')
  assert.notEqual(status, 2)
})

test('dropped handler gets each dropped message and isBinary (ferrosocket-only: the reference uWS.js v20.30 has no dropped handler)',
  { timeout: 15000, skip: ferroOnly('uWS.js v20.30 predates the dropped handler') }, async (t) => {
    const { ws, log } = await stalledPair(t, {
      maxBackpressure: 128 * 1024,
      dropped: (ws, message, isBinary) => log.push('dropped', { data: copy(message), isBinary })
    })
    const results = sendUntilDropped(ws, { chunkSize: CHUNK, stopAfterDrops: 2 })
    const droppedSeqs = results.filter((r) => r.status === 2).map((r) => r.seq)
    const events = await log.wait('dropped', { count: 2 })
    assert.deepEqual(events.map((e) => e.data.readUInt32BE(0)), droppedSeqs)
    assert.deepEqual(events.map((e) => e.isBinary), [true, true])
    assert.equal(events[0].data.length, CHUNK)
  })
