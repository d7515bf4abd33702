'use strict'
// Echo through a JS handler: C clients, one message in flight each, for D
// seconds. Round trips/s and latency from the load generator; server CPU
// (all threads) per round trip from the server.
const { withServer, connectFleet } = require('../harness')
const { LATENCY_METRICS, latencyOf } = require('../report')

async function measure (ctx, name) {
  const p = ctx.params
  return withServer(ctx, name, async (server, track) => {
    const fleet = await connectFleet(ctx, server, 'echo', {
      connections: p.connections, duration: p.duration, 'payload-bytes': p.bytes, rate: p.rate, concurrency: p.concurrency
    })
    const lg = track(fleet.lg)
    const ready = fleet.ready
    const cpu0 = await server.cpu()
    ctx.detail(`echo for ${p.duration} s`, null, p.duration)
    const report = await lg.report((p.duration + 60) * 1000)
    const cpu1 = await server.cpu()
    if (!(report.round_trips > 0)) throw new Error(`no round trip completed: ${JSON.stringify(report).slice(0, 500)}`)
    const warnings = []
    if (ready.connected < p.connections) warnings.push(`${p.connections - ready.connected} clients failed to connect`)
    return {
      metrics: {
        roundTripsPerSec: report.rate,
        ...latencyOf(report),
        cpuUsPerRoundTrip: (cpu1 - cpu0) / report.round_trips
      },
      info: { impl: server.hello.impl, version: server.hello.version || null, connected: ready.connected, failed: ready.failed, maxMs: report.max_us / 1000, loadgen: report },
      warnings
    }
  })
}

module.exports = {
  name: 'echo',
  title: 'Echo',
  loadgenModes: ['echo'],
  params: { connections: 1000, duration: 10, bytes: 32, rate: 0, concurrency: 200 },
  quickParams: { connections: 100, duration: 2 },
  estimateSecs: (p) => p.duration + p.connections / 2500 + 2,
  describe: (p) => `${p.connections} clients, one ${p.bytes} B message in flight each, ${p.duration} s`,
  measure,
  tables: [{
    id: 'echo',
    title: 'Echo through a JS handler: round trips per second',
    primary: 'roundTripsPerSec',
    metrics: [
      { key: 'roundTripsPerSec', label: 'round trips/s', better: 'higher', si: true },
      ...LATENCY_METRICS,
      { key: 'cpuUsPerRoundTrip', label: 'server CPU µs/round trip', better: 'lower', digits: 1 }
    ],
    note: (p) => `${p.connections} clients each with one ${p.bytes} B message in flight for ${p.duration} s, echoed by a JS handler ` +
      '(ws: the message; Socket.IO: socket.on(\'echo\') -> socket.emit(\'echo\')).'
  }]
}
