'use strict'
// Connect storm: N connections, C handshakes in flight, no rate limit.
// A connection counts once the WebSocket handshake completed (Socket.IO:
// once the namespace CONNECT reply arrived).
const { withServer, startLoadgen } = require('../harness')
const { LATENCY_METRICS, latencyOf } = require('../report')

async function measure (ctx, name) {
  const p = ctx.params
  return withServer(ctx, name, async (server, track) => {
    const cpu0 = await server.cpu()
    const lg = track(startLoadgen(ctx.lg, 'connect', {
      url: server.url(), connections: p.connections, rate: 0, concurrency: p.concurrency, timeout: 10
    }, ctx.children, { protocol: server.protocol, verbose: ctx.verbose, onProgress: ctx.connectProgress('connecting', p.connections) }))
    const report = await lg.report(p.connections / 100 * 1000 + 60000)
    const cpu1 = await server.cpu()
    if (!(report.conn_per_s > 0)) throw new Error(`no connection: ${JSON.stringify(report).slice(0, 500)}`)
    const connected = report.connected ?? (p.connections - (report.failed || 0))
    const warnings = []
    if (report.failed) warnings.push(`${report.failed} connects failed`)
    return {
      metrics: {
        connPerSec: report.conn_per_s,
        ...latencyOf(report),
        cpuUsPerConn: (cpu1 - cpu0) / connected,
        failed: report.failed || 0
      },
      info: { impl: server.hello.impl, version: server.hello.version || null, loadgen: report },
      warnings
    }
  })
}

module.exports = {
  name: 'connect',
  title: 'Connect storm',
  loadgenModes: ['connect'],
  params: { connections: 10000, concurrency: 200 },
  quickParams: { connections: 500 },
  estimateSecs: (p) => p.connections / 2500 + 3,
  describe: (p) => `${p.connections} connects, ${p.concurrency} in flight`,
  measure,
  tables: [{
    id: 'connect',
    title: 'Connect storm: connections per second',
    primary: 'connPerSec',
    metrics: [
      { key: 'connPerSec', label: 'conn/s', better: 'higher', si: true },
      ...LATENCY_METRICS,
      { key: 'cpuUsPerConn', label: 'server CPU µs/conn', better: 'lower', digits: 0 },
      { key: 'failed', label: 'failed', digits: 0, agg: 'max' }
    ],
    note: (p) => `${p.connections} connections opened with ${p.concurrency} handshakes in flight, no rate limit; ` +
      'latency = connect to handshake done (Socket.IO: to the namespace CONNECT reply).'
  }]
}
