'use strict'
// Idle memory: server RSS per idle connection, after GC.
//
// Per server per round: start the server -> open and close a warm-up batch
// (pages in code once per process: ~3.5 MB that would otherwise be divided
// by N) -> GC-settled baseline RSS -> `loadgen idle` opens N connections ->
// wait until the server counts them all and RSS settles (two samples 1 s
// apart within 1%) -> GC-settled RSS -> (after - before) / connected, or
// "below noise" when the growth is under harness.rssPerConn's floor.
// RSS is VmRSS from /proc/<pid>/status; KB = 1024 bytes. Socket.IO servers
// are measured with Socket.IO clients (Engine.IO handshake + namespace
// CONNECT), WebSocket servers with plain WebSocket clients; every
// connection is subscribed to one topic / joined to one room (see servers/).
const { startServer, startLoadgen, gcSettleRss, settleRss, rssPerConn, readVmRss, tail, sleep, deflate } = require('../harness')

const SETTLE = { intervalMs: 1000, tolerance: 0.01, maxMs: 30000, gcIntervalMs: 2000, gcMinMs: 10000 }
const QUICK_SETTLE = { intervalMs: 300, tolerance: 0.02, maxMs: 4000, gcIntervalMs: 300, gcMinMs: 600 }

/** Open n idle connections; resolves when all were attempted. */
async function openIdle (ctx, server, n, label) {
  const p = ctx.params
  // Hold is a safety cap only: the run ends it by closing loadgen's stdin.
  const hold = Math.ceil(p.settle.maxMs * 3 / 1000) + 120
  const lg = startLoadgen(ctx.lg, 'idle', {
    url: server.url(), connections: n, rate: p.rate, concurrency: p.concurrency, hold, timeout: 10, 'stdin-stop': 'yes', ...deflate(ctx).loadgen
  }, ctx.children, { protocol: server.protocol, verbose: ctx.verbose, onProgress: ctx.connectProgress(label, n) })
  const budget = (p.rate > 0 ? n / p.rate * 3000 : 0) + 60000
  try {
    const ready = await lg.ready(budget)
    return { lg, ready }
  } catch (err) {
    await lg.finish(5000)
    throw err
  }
}

async function measure (ctx, name) {
  const p = ctx.params
  const server = await startServer(name, ctx.children, { verbose: ctx.verbose, args: deflate(ctx).server })
  let lg = null
  try {
    if (p.warmup > 0) {
      ctx.detail('warm-up')
      const warm = await openIdle(ctx, server, p.warmup, 'warm-up')
      await warm.lg.finish()
      const drainDeadline = Date.now() + 15000
      while ((await server.command('rss', 'rss')).open > 0 && Date.now() < drainDeadline) await sleep(200)
    }
    ctx.detail('baseline GC settle')
    const base = await gcSettleRss(server, p.settle)
    if (!base.gcRan) throw new Error(`${name}: global.gc unavailable (server not started with --expose-gc?)`)
    const opened = await openIdle(ctx, server, p.connections, 'connecting')
    lg = opened.lg
    const connected = opened.ready.connected
    if (!connected) throw new Error(`loadgen connected nothing (${opened.ready.failed} failed)\n${tail(lg.stderr)}`)
    ctx.detail('waiting for the server to count them')
    await server.waitOpen(connected)
    ctx.detail('RSS settle')
    const loaded = await settleRss(server.pid, p.settle)
    ctx.detail('GC settle')
    const after = await gcSettleRss(server, p.settle)
    const own = await server.command('rss', 'rss')
    let loadgenRss = null
    try { loadgenRss = readVmRss(lg.pid) } catch {}
    const report = await lg.finish()
    lg = null
    const perConn = rssPerConn(base.rss, after.rss, connected, p.settle)
    const warnings = []
    if (own.open !== connected) warnings.push(`server counts ${own.open} open, loadgen ${connected}`)
    if (report && report.dropped) warnings.push(`${report.dropped} connections dropped during the hold`)
    if (!(base.settled && loaded.settled && after.settled)) warnings.push('RSS did not settle within the limit')
    return {
      metrics: { perConnKB: perConn.kb, connected, rssAfterMiB: after.rss / 1048576 },
      noise: perConn.noise ? { perConnKB: perConn.noise } : {},
      info: {
        impl: server.hello.impl,
        version: server.hello.version || null,
        failed: opened.ready.failed,
        connectSecs: opened.ready.connect_secs,
        rssBefore: base.rss,
        rssLoaded: loaded.rss,
        rssAfterGc: after.rss,
        heapUsedBefore: base.heapUsed,
        heapUsedAfterGc: after.heapUsed,
        serverOpen: own.open,
        loadgenRss,
        loadgen: report
      },
      warnings
    }
  } finally {
    if (lg) await lg.finish()
    await server.stop()
  }
}

module.exports = {
  name: 'memory',
  title: 'Idle memory',
  loadgenModes: ['idle'],
  params: { connections: 10000, rate: 2000, concurrency: 200, warmup: null, settle: SETTLE },
  quickParams: { connections: 300, warmup: 50, settle: QUICK_SETTLE },
  finalize (p) { if (p.warmup == null) p.warmup = Math.min(1000, Math.ceil(p.connections / 10)) },
  estimateSecs: (p) => p.connections / (p.rate || 4000) + 2 * p.settle.gcMinMs / 1000 + 8,
  describe: (p) => `${p.connections} idle connections per server, server RSS growth after GC`,
  measure,
  SETTLE,
  QUICK_SETTLE,
  tables: [{
    id: 'memory',
    title: 'Idle memory: server RSS per connection',
    primary: 'perConnKB',
    metrics: [
      { key: 'perConnKB', label: 'KB/conn', better: 'lower', digits: 3 },
      { key: 'connected', label: 'connected', digits: 0, agg: 'min' }
    ],
    note: (p) => `${p.connections} idle connections; KB = 1024 bytes of server VmRSS growth after GC-settling.` +
      (p.connections < 5000 ? ' Small N: fixed per-process costs swamp per-connection memory, a harness check only.' : '')
  }]
}
