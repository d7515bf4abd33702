'use strict'
// HTTP requests on the uWS.js-style App's routes (issue #15): C keep-alive
// connections, each with one GET /json in flight (a small JSON answer),
// for D seconds. uWS.js on its own route, and Node's http.Server (the `ws`
// server's, which answers the same route) as the baseline every Node app
// has. Requests/s and latency from the load generator; server CPU (all
// threads) per request from the server.
const { withServer, startLoadgen } = require('../harness')
const { LATENCY_METRICS, latencyOf } = require('../report')

// Servers that answer GET /json (benchmark/servers/uws-style.js, ws.js).
const HTTP_SERVERS = new Set(['ferrosocket-core', 'uws', 'ws'])

async function measure (ctx, name) {
  const p = ctx.params
  if (!HTTP_SERVERS.has(name)) {
    throw Object.assign(new Error('HTTP routes are measured on the uWS.js-style API and Node\'s http.Server'), { unsupported: true })
  }
  return withServer(ctx, name, async (server, track) => {
    const url = server.url().replace(/^ws:/, 'http:').replace(/\/$/, '/json')
    const cpu0 = await server.cpu()
    ctx.detail(`${p.connections} connections for ${p.duration} s`, null, p.duration)
    const lg = track(startLoadgen(ctx.lg, 'http', { url, connections: p.connections, duration: p.duration, processes: 1 },
      ctx.children, { verbose: ctx.verbose }))
    const report = await lg.report((p.duration + 30) * 1000)
    const cpu1 = await server.cpu()
    if (!(report.requests > 0)) throw new Error(`no request answered: ${JSON.stringify(report).slice(0, 500)}`)
    const warnings = []
    if (report.errors) warnings.push(`${report.errors} connections ended in an error (${JSON.stringify(report.error_kinds)})`)
    return {
      metrics: {
        requestsPerSec: report.rate,
        ...latencyOf(report),
        cpuUsPerRequest: (cpu1 - cpu0) / report.requests
      },
      info: { impl: server.hello.impl, version: server.hello.version || null, loadgen: report },
      warnings
    }
  })
}

module.exports = {
  name: 'http',
  title: 'HTTP routes',
  loadgenModes: ['http'],
  params: { connections: 50, duration: 10 },
  quickParams: { connections: 10, duration: 2 },
  estimateSecs: (p) => p.duration + 2,
  describe: (p) => `${p.connections} keep-alive connections, one GET /json in flight each, ${p.duration} s`,
  measure,
  tables: [{
    id: 'http',
    title: 'HTTP routes: requests per second (keep-alive, small JSON)',
    primary: 'requestsPerSec',
    metrics: [
      { key: 'requestsPerSec', label: 'requests/s', better: 'higher', si: true },
      ...LATENCY_METRICS,
      { key: 'cpuUsPerRequest', label: 'server CPU µs/request', better: 'lower', digits: 1 }
    ],
    note: (p) => `${p.connections} keep-alive connections each with one GET /json in flight for ${p.duration} s; ` +
      'the route answers {"hello":"world","n":…} (uWS.js-style servers: app.get; ws: Node\'s http.Server).'
  }]
}
