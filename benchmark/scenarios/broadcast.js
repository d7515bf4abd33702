'use strict'
// Broadcast fan-out: N clients on one topic / in one room, M small JSON
// messages sent by the server as fast as its API allows (servers/*:
// app.publish, a loop over ws clients, io.to(room).emit).
//
// deliveries/s = messages received by all clients / (last arrival - start
//   of the server's sending loop), both CLOCK_REALTIME on this machine.
// CPU µs/delivery = server process CPU (all threads) from just before the
//   broadcast command until every client got every message / deliveries.
const { withServer, connectFleet } = require('../harness')

async function measure (ctx, name) {
  const p = ctx.params
  return withServer(ctx, name, async (server, track) => {
    const fleet = await connectFleet(ctx, server, 'receive', {
      connections: p.connections, expect: p.messages, hold: p.hold, rate: p.rate, concurrency: p.concurrency
    })
    const lg = track(fleet.lg)
    const ready = fleet.ready
    const seen = await server.waitOpen(ready.connected)
    ctx.detail(`broadcasting ${p.messages} x ${p.bytes} B to ${ready.connected}`)
    const cpu0 = await server.cpu()
    const sent = await server.command(`broadcast ${p.messages} ${p.bytes}`, 'broadcast', 120000)
    const report = await lg.report((p.hold + 30) * 1000)
    const cpu1 = await server.cpu()
    const received = report.received
    if (!(received > 0)) throw new Error(`no broadcast message arrived: ${JSON.stringify(report).slice(0, 500)}`)
    const spanUs = report.last_us - sent.startedUs
    const expected = ready.connected * p.messages
    const warnings = []
    if (received < expected) warnings.push(`${expected - received} of ${expected} deliveries missed`)
    if (seen.open !== ready.connected) warnings.push(`server counts ${seen.open} open, loadgen ${ready.connected}`)
    return {
      metrics: {
        deliveriesPerSec: received / (spanUs / 1e6),
        cpuUsPerDelivery: (cpu1 - cpu0) / received,
        delivered: received / expected
      },
      info: {
        impl: server.hello.impl,
        version: server.hello.version || null,
        connected: ready.connected,
        failed: ready.failed,
        expected,
        received,
        spanMs: spanUs / 1000,
        sendLoopMs: sent.ms,
        sendLoopCpuUs: sent.cpuUs,
        serverCpuUs: cpu1 - cpu0,
        // per_seq (first/last arrival of each of the M messages) would make
        // up most of the results file; the spread summary stays.
        loadgen: { ...report, per_seq: undefined }
      },
      warnings
    }
  })
}

// What a fan-out table shows (crossnode.js shows the same).
const FANOUT_METRICS = [
  { key: 'deliveriesPerSec', label: 'deliveries/s', better: 'higher', si: true },
  { key: 'cpuUsPerDelivery', label: 'server CPU µs/delivery', better: 'lower', digits: 2, ratio: true },
  { key: 'delivered', label: 'delivered', pct: true, agg: 'min' }
]

module.exports = {
  FANOUT_METRICS,
  name: 'broadcast',
  title: 'Broadcast fan-out',
  loadgenModes: ['receive'],
  params: { connections: 5000, messages: 100, bytes: 64, rate: 0, concurrency: 200, hold: 120 },
  quickParams: { connections: 200, messages: 20, hold: 20 },
  estimateSecs: (p) => p.connections / 2500 + p.connections * p.messages / 200000 + 3,
  describe: (p) => `${p.connections} clients x ${p.messages} broadcasts of ${p.bytes} B JSON`,
  measure,
  tables: [{
    id: 'broadcast',
    title: 'Broadcast fan-out: deliveries per second',
    primary: 'deliveriesPerSec',
    metrics: FANOUT_METRICS,
    note: (p) => `${p.connections} clients in one topic/room, ${p.messages} messages of ${p.bytes} B sent back to back; ` +
      'deliveries/s from the start of the server\'s send loop to the last arrival; CPU = server process, all threads.'
  }]
}
