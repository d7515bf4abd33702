'use strict'
// Cluster (#12, the seed's "100k TLS WebSockets receiving a ticker every
// 2 s"): P server processes linked by one redis-server, N TLS clients spread
// over them, and one process publishing to all every P seconds; the
// message reaches the other processes through Redis. Reports delivered /
// expected, the arrival spread of a tick (first to last client, all
// processes), total RSS and CPU of the server processes.
//
// ferrosocket's processes share one port (SO_REUSEPORT: the core API's
// default, App.listen on a fixed port; the Socket.IO API through attachApp
// on its own SSLApp) and one load-generator fleet connects to it, the kernel
// spreading connections. socket.io cannot share a port between processes
// without node:cluster's primary, so each of its processes gets its own port
// and its own share of the clients: the same load, arranged as a load
// balancer would.
const H = require('../harness')
const { sleep, startServer, connectFleet, readVmRss, startRedis, freePort, Unsupported } = H

// Servers with a way across processes, and what to call it.
const SCALE_OUT = {
  'ferrosocket-core': 'App({ scaleOut }) topics',
  'ferrosocket-sio': 'createRedisAdapter, attachApp(SSLApp)',
  socketio: '@socket.io/redis-adapter'
}

async function measure (ctx, name) {
  const p = ctx.params
  if (name === 'ferrosocket-sio-attached') throw new Unsupported('the Socket.IO API runs here as ferrosocket-sio does (attachApp on an SSLApp, TLS in Rust)')
  if (!SCALE_OUT[name]) throw new Unsupported(`${name} has no scale-out across processes in this benchmark`)
  const shared = name !== 'socketio'
  const n = name === 'socketio' ? p.socketioConnections : p.connections
  const redis = await startRedis(ctx.children)
  const servers = []
  const fleets = []
  try {
    const port = shared ? await freePort() : 0
    ctx.detail(`starting ${p.processes} processes`)
    for (let i = 0; i < p.processes; i++) {
      servers.push(await startServer(name, ctx.children, { tls: ctx.cert, verbose: ctx.verbose, args: ['--port', String(port), '--scale-out', redis.url] }))
    }
    const base = servers.map((s) => readVmRss(s.pid))
    const hold = p.ticks * p.period + n / 200 + 120
    const flags = { expect: p.ticks, hold, rate: p.rate, concurrency: p.concurrency, timeout: 20, 'stdin-stop': 'yes', 'source-ips': p.sourceIps }
    // One fleet on the shared port, or one per process on its own port.
    const targets = shared ? [servers[0]] : servers
    for (const [i, s] of targets.entries()) {
      const share = Math.floor(n / targets.length) + (i < n % targets.length ? 1 : 0)
      fleets.push(await connectFleet(ctx, s, 'receive', { connections: share, ...flags },
        { readyMs: share / 100 * 1000 + 60000, label: `${name}: TLS connecting${targets.length > 1 ? ` (${i + 1}/${targets.length})` : ''}` }))
    }
    const connected = fleets.reduce((a, f) => a + f.ready.connected, 0)
    const failed = fleets.reduce((a, f) => a + (f.ready.failed || 0), 0)
    // Every server counts its share; together they hold every client.
    let open = 0
    for (let i = 0; i < 100; i++) {
      open = 0
      for (const s of servers) open += (await s.command('rss', 'rss')).open
      if (open >= connected) break
      await sleep(200)
    }
    const perProcess = []
    for (const s of servers) perProcess.push((await s.command('rss', 'rss')).open)
    const cpu0 = await Promise.all(servers.map((s) => s.cpu()))
    ctx.detail(`ticker: ${p.ticks} ticks every ${p.period} s from one process`)
    const t0 = Date.now() + 500
    let maxSendMs = 0
    for (let k = 0; k < p.ticks; k++) {
      const wait = t0 + k * p.period * 1000 - Date.now()
      if (wait > 0) await sleep(wait)
      ctx.detail(`ticker: tick ${k + 1}/${p.ticks}`, (k + 1) / p.ticks)
      const r = await servers[0].command(`broadcast 1 ${p.bytes}`, 'broadcast', 30000)
      maxSendMs = Math.max(maxSendMs, r.ms)
    }
    ctx.detail('collecting reports')
    const reports = []
    for (const f of fleets) reports.push(await f.lg.reportOrStop(15000))
    fleets.length = 0
    const cpu1 = await Promise.all(servers.map((s) => s.cpu()))
    const rssEnd = servers.map((s) => readVmRss(s.pid))
    const received = reports.reduce((a, r) => a + (r.received || 0), 0)
    const expected = connected * p.ticks
    const cpuUs = cpu1.reduce((a, c, i) => a + c - cpu0[i], 0)
    const rssTotal = rssEnd.reduce((a, b) => a + b, 0)
    const rssGrowth = rssTotal - base.reduce((a, b) => a + b, 0)
    const warnings = []
    if (received < expected) warnings.push(`${expected - received} of ${expected} deliveries missed`)
    if (failed) warnings.push(`${failed} clients failed to connect`)
    if (open !== connected) warnings.push(`servers count ${open} open, loadgen ${connected}`)
    if (shared && perProcess.some((c) => c === 0)) warnings.push(`a process got no clients: ${perProcess.join(', ')}`)
    return {
      metrics: {
        delivered: expected > 0 ? received / expected : 0,
        connected,
        spreadP50ms: Math.max(...reports.map((r) => r.spread_p50_ms || 0)),
        spreadMaxMs: Math.max(...reports.map((r) => r.spread_max_ms || 0)),
        rssTotalMiB: rssTotal / 1048576,
        rssPerConnKB: connected > 0 ? rssGrowth / connected / 1024 : null,
        cpuUsPerDelivery: received > 0 ? cpuUs / received : null
      },
      info: {
        impl: servers[0].hello.impl,
        version: servers[0].hello.version || null,
        scaleOut: SCALE_OUT[name],
        processes: p.processes,
        sharedPort: shared,
        clientsPerProcess: perProcess,
        connected,
        failed,
        received,
        expected,
        serverCpuUs: cpuUs,
        maxSendLoopMs: maxSendMs,
        loadgen: reports
      },
      warnings
    }
  } finally {
    for (const f of fleets) f.lg.kill()
    await Promise.all(servers.map((s) => s.stop()))
    await redis.stop()
  }
}

module.exports = {
  name: 'cluster',
  title: 'Cluster',
  loadgenModes: ['receive'],
  needsCert: true,
  // socket.io at 100k TLS clients needs minutes of handshakes here; its N is
  // a parameter of its own (--set cluster.socketioConnections=...).
  params: {
    processes: 6,
    connections: 100000,
    socketioConnections: 30000,
    ticks: 30,
    period: 2,
    bytes: 64,
    rate: 0,
    concurrency: 300,
    sourceIps: '127.0.0.2-127.0.0.11'
  },
  quickParams: { processes: 2, connections: 200, socketioConnections: 200, ticks: 3, period: 1 },
  estimateSecs: (p) => p.ticks * p.period + p.connections / 1500 + 20,
  describe: (p) => `${p.processes} processes, one Redis; ${p.connections} TLS clients (socket.io: ${p.socketioConnections}); ` +
    `one process publishes to all every ${p.period} s x ${p.ticks}`,
  measure,
  tables: [{
    id: 'cluster',
    title: 'Cluster ticker over TLS: every process, one Redis',
    primary: 'delivered',
    metrics: [
      { key: 'delivered', label: 'delivered', pct: true, agg: 'min' },
      { key: 'connected', label: 'clients', digits: 0, agg: 'min' },
      { key: 'spreadMaxMs', label: 'spread max ms', better: 'lower', digits: 1 },
      { key: 'rssTotalMiB', label: 'RSS total MiB', better: 'lower', digits: 0 },
      { key: 'rssPerConnKB', label: 'KB/conn', better: 'lower', digits: 2 },
      { key: 'cpuUsPerDelivery', label: 'CPU µs/delivery', better: 'lower', digits: 2 }
    ],
    note: (p) => `${p.processes} server processes and one redis-server on loopback; ${p.connections} wss:// clients ` +
      `(socket.io: ${p.socketioConnections}) from load generators bound to ${p.sourceIps}; one ${p.bytes} B message ` +
      `from one process to all every ${p.period} s, ${p.ticks} times, crossing Redis to the others. ferrosocket's processes ` +
      'share one port (SO_REUSEPORT); socket.io\'s have one port each. RSS and CPU: all server processes together.'
  }]
}
