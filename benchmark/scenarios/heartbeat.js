'use strict'
// Heartbeat (after "A million sockets and Raspberry Pi 4"): N clients each
// send a small message every I seconds and the server echoes it (ws: the
// message; Socket.IO: the `echo` event). Reports the worst latency and
// how many pings got no answer. The target is max latency under 1 s and
// zero misses.
const { withServer, connectFleet } = require('../harness')

async function measure (ctx, name) {
  const p = ctx.params
  return withServer(ctx, name, async (server, track) => {
    const fleet = await connectFleet(ctx, server, 'heartbeat', {
      connections: p.connections, interval: p.interval, duration: p.duration, rate: p.rate, concurrency: p.concurrency
    })
    const lg = track(fleet.lg)
    const ready = fleet.ready
    const cpu0 = await server.cpu()
    ctx.detail(`pinging every ${p.interval} s for ${p.duration} s`, null, p.duration)
    const report = await lg.report((p.duration + p.interval + 60) * 1000)
    const cpu1 = await server.cpu()
    if (!(report.received > 0)) throw new Error(`no heartbeat answered: ${JSON.stringify(report).slice(0, 500)}`)
    const warnings = []
    if (report.missed) warnings.push(`${report.missed} of ${report.sent} pings unanswered`)
    if (ready.connected < p.connections) warnings.push(`${p.connections - ready.connected} clients failed to connect`)
    return {
      metrics: {
        maxMs: report.max_us / 1000,
        p99ms: report.p99_us / 1000,
        p50ms: report.p50_us / 1000,
        missed: report.missed,
        cpuPct: (cpu1 - cpu0) / (p.duration * 1e6) * 100
      },
      info: { impl: server.hello.impl, version: server.hello.version || null, connected: ready.connected, failed: ready.failed, sent: report.sent, received: report.received, loadgen: report },
      warnings
    }
  })
}

module.exports = {
  name: 'heartbeat',
  title: 'Heartbeat',
  loadgenModes: ['heartbeat'],
  params: { connections: 10000, interval: 16, duration: 34, rate: 0, concurrency: 200 },
  quickParams: { connections: 200, interval: 1, duration: 3 },
  estimateSecs: (p) => p.duration + p.connections / 2500 + 2,
  describe: (p) => `${p.connections} clients, one ping each every ${p.interval} s for ${p.duration} s`,
  measure,
  tables: [{
    id: 'heartbeat',
    title: 'Heartbeat: worst ping latency',
    primary: 'maxMs',
    metrics: [
      { key: 'maxMs', label: 'max ms', better: 'lower', digits: 1, ratio: true },
      { key: 'p99ms', label: 'p99 ms', better: 'lower', digits: 2 },
      { key: 'missed', label: 'missed', digits: 0, agg: 'max' },
      { key: 'cpuPct', label: 'server CPU %', better: 'lower', digits: 1 }
    ],
    note: (p) => `${p.connections} clients each sending a ping message every ${p.interval} s for ${p.duration} s, echoed by the server; ` +
      'target: max latency under 1 s, zero missed.'
  }]
}
