'use strict'
// Cross-node broadcast (#12 item 7b): two server processes linked by one
// redis-server, every client on the second, M messages sent back to back
// from the first: everything delivered crossed Redis. Measures what the
// scale-out path itself sustains (ferrosocket: decoded, framed once and fanned
// out in Rust; socket.io: @socket.io/redis-adapter, each socket in JS).
//
// deliveries/s = messages received / (last arrival - start of the sender's
//   loop); CPU µs/delivery = both server processes' CPU over the same span.
const { startServer, connectFleet, startRedis, Unsupported } = require('../harness')
const { FANOUT_METRICS } = require('./broadcast')

const SCALE_OUT = new Set(['ferrosocket-core', 'ferrosocket-sio', 'socketio'])

async function measure (ctx, name) {
  const p = ctx.params
  if (name === 'ferrosocket-sio-attached') throw new Unsupported('the Socket.IO API runs here as ferrosocket-sio does (createRedisAdapter on attachApp)')
  if (!SCALE_OUT.has(name)) throw new Unsupported(`${name} has no scale-out across processes in this benchmark`)
  const redis = await startRedis(ctx.children)
  const servers = []
  let lg = null
  try {
    // Port 0: each process its own port, so the clients are all on the receiver.
    for (let i = 0; i < 2; i++) {
      servers.push(await startServer(name, ctx.children, { verbose: ctx.verbose, args: ['--port', '0', '--scale-out', redis.url] }))
    }
    const [sender, receiver] = servers
    const fleet = await connectFleet(ctx, receiver, 'receive', {
      connections: p.connections, expect: p.messages, hold: p.hold, rate: p.rate, concurrency: p.concurrency
    })
    lg = fleet.lg
    const seen = await receiver.waitOpen(fleet.ready.connected)
    ctx.detail(`broadcasting ${p.messages} x ${p.bytes} B across Redis to ${fleet.ready.connected}`)
    const cpu0 = await Promise.all(servers.map((s) => s.cpu()))
    const sent = await sender.command(`broadcast ${p.messages} ${p.bytes}`, 'broadcast', 120000)
    const report = await lg.report((p.hold + 30) * 1000)
    lg = null
    const cpu1 = await Promise.all(servers.map((s) => s.cpu()))
    const received = report.received
    if (!(received > 0)) throw new Error(`no broadcast crossed Redis: ${JSON.stringify(report).slice(0, 500)}`)
    const spanUs = report.last_us - sent.startedUs
    const expected = fleet.ready.connected * p.messages
    const cpuUs = cpu1.reduce((a, c, i) => a + c - cpu0[i], 0)
    const warnings = []
    if (received < expected) warnings.push(`${expected - received} of ${expected} deliveries missed`)
    if (seen.open !== fleet.ready.connected) warnings.push(`receiver counts ${seen.open} open, loadgen ${fleet.ready.connected}`)
    return {
      metrics: {
        deliveriesPerSec: received / (spanUs / 1e6),
        cpuUsPerDelivery: cpuUs / received,
        delivered: received / expected
      },
      info: {
        impl: sender.hello.impl,
        version: sender.hello.version || null,
        connected: fleet.ready.connected,
        expected,
        received,
        spanMs: spanUs / 1000,
        sendLoopMs: sent.ms,
        serverCpuUs: cpuUs,
        loadgen: { ...report, per_seq: undefined }
      },
      warnings
    }
  } finally {
    if (lg) lg.kill()
    await Promise.all(servers.map((s) => s.stop()))
    await redis.stop()
  }
}

module.exports = {
  name: 'crossnode',
  title: 'Cross-node broadcast',
  loadgenModes: ['receive'],
  params: { connections: 5000, messages: 100, bytes: 64, rate: 0, concurrency: 200, hold: 120 },
  quickParams: { connections: 200, messages: 20, hold: 20 },
  estimateSecs: (p) => p.connections / 2500 + p.connections * p.messages / 100000 + 5,
  describe: (p) => `2 processes, one Redis; ${p.connections} clients on one, ${p.messages} broadcasts of ${p.bytes} B from the other`,
  measure,
  tables: [{
    id: 'crossnode',
    title: 'Cross-node broadcast over Redis: deliveries per second',
    primary: 'deliveriesPerSec',
    metrics: FANOUT_METRICS,
    note: (p) => `${p.connections} clients on one process, ${p.messages} messages of ${p.bytes} B sent back to back from ` +
      'another, each crossing one redis-server; deliveries/s from the start of the sender\'s loop to the last arrival; ' +
      'CPU = both server processes.'
  }]
}
