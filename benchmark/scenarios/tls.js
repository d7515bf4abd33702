'use strict'
// TLS: idle memory per TLS connection, then the ticker (after "100k secure
// WebSockets with Raspberry Pi 4"): N TLS clients per server, one publish
// to all every P seconds for T ticks; delivered/expected, spread of arrival
// within a tick (first to last client), RSS and CPU.
//
// The servers of a round run side by side, not one after the other: the
// ticker is 60 s of an almost idle machine, and 5 servers x 3 rounds of it
// in sequence would be 15 minutes of waiting. What is measured is per
// process (RSS, CPU time, missed messages) except the spread, so ticks are
// staggered: server i publishes at i*P/S into each period, far apart from
// the others (a tick costs a few ms at these N). Connecting is done one
// server at a time, in the round's order.
const { startServer, connectFleet, gcSettleRss, settleRss, rssPerConn, readVmRss, sleep } = require('../harness')
const { SETTLE, QUICK_SETTLE } = require('./memory')

async function measureRound (ctx, names) {
  const p = ctx.params
  const results = {}
  const live = []
  const fail = (name, err) => { results[name] = { error: err } }
  try {
    for (const name of names) {
      try {
        live.push({ name, server: await startServer(name, ctx.children, { tls: ctx.cert, verbose: ctx.verbose }) })
      } catch (err) { fail(name, err) }
    }
    const each = async (fn) => {
      await Promise.all(live.filter((x) => !results[x.name]).map(async (x) => {
        try { await fn(x) } catch (err) { fail(x.name, err) }
      }))
    }
    const ok = () => live.filter((x) => !results[x.name])

    ctx.detail('baseline GC settle (all servers)')
    await each(async (x) => {
      x.base = await gcSettleRss(x.server, p.settle)
      if (!x.base.gcRan) throw new Error('global.gc unavailable')
    })
    // A cap only: after the last tick the run waits a grace period and then
    // stops the load generators itself (stdin EOF), so one lost message
    // costs seconds, not the whole hold.
    const hold = p.ticks * p.period + 2 * p.settle.maxMs / 1000 + names.length * (p.connections / 100 + 15) + 60
    const graceMs = 15000
    for (const x of ok()) {
      try {
        const fleet = await connectFleet(ctx, x.server, 'receive', {
          connections: p.connections, expect: p.ticks, hold, rate: p.rate, concurrency: p.concurrency, timeout: 15, 'stdin-stop': 'yes'
        }, { readyMs: p.connections / 100 * 1000 + 60000, label: `${x.name}: TLS connecting` })
        x.lg = fleet.lg
        x.ready = fleet.ready
        x.seen = await x.server.waitOpen(x.ready.connected)
      } catch (err) { fail(x.name, err) }
    }
    ctx.detail('RSS + GC settle (all servers)')
    await each(async (x) => {
      x.loaded = await settleRss(x.server.pid, p.settle)
      x.after = await gcSettleRss(x.server, p.settle)
      x.cpu0 = await x.server.cpu()
    })

    // Ticker: fire-and-collect the broadcast commands on a fixed schedule.
    const tickers = ok()
    const t0 = Date.now() + 500
    const pending = []
    const slot = p.period * 1000 / Math.max(1, tickers.length)
    const plan = []
    for (let k = 0; k < p.ticks; k++) {
      tickers.forEach((x, i) => plan.push({ at: t0 + k * p.period * 1000 + i * slot, x, k, first: i === 0 }))
    }
    for (const step of plan) {
      const wait = step.at - Date.now()
      if (wait > 0) await sleep(wait)
      if (step.first) ctx.detail(`ticker: tick ${step.k + 1}/${p.ticks}`, (step.k + 1) / p.ticks)
      if (results[step.x.name]) continue
      pending.push(step.x.server.command(`broadcast 1 ${p.bytes}`, 'broadcast', 30000).then((r) => {
        step.x.maxSendMs = Math.max(step.x.maxSendMs || 0, r.ms)
      }, (err) => fail(step.x.name, err)))
    }
    await Promise.all(pending)
    ctx.detail('collecting reports')
    await each(async (x) => {
      x.report = await x.lg.reportOrStop(graceMs)
      x.lg = null
      x.cpu1 = await x.server.cpu()
      x.rssEnd = readVmRss(x.server.pid)
    })
    for (const x of ok()) {
      const r = x.report
      const connected = x.ready.connected
      const expected = connected * p.ticks
      const warnings = []
      if (r.received < expected) warnings.push(`${expected - r.received} of ${expected} deliveries missed`)
      if (x.seen.open !== connected) warnings.push(`server counts ${x.seen.open} open, loadgen ${connected}`)
      if (!(x.base.settled && x.loaded.settled && x.after.settled)) warnings.push('RSS did not settle within the limit')
      if (r.spread_max_ms > slot) warnings.push(`a tick took ${r.spread_max_ms.toFixed(0)} ms, longer than its ${slot.toFixed(0)} ms slot: ticks of neighbouring servers may have overlapped (lower N)`)
      const perConn = rssPerConn(x.base.rss, x.after.rss, connected, p.settle)
      results[x.name] = {
        sample: {
          metrics: {
            tlsPerConnKB: perConn.kb,
            delivered: r.received / expected,
            spreadP50ms: r.spread_p50_ms,
            spreadMaxMs: r.spread_max_ms,
            rssEndMiB: x.rssEnd / 1048576,
            cpuUsPerDelivery: r.received > 0 ? (x.cpu1 - x.cpu0) / r.received : null
          },
          info: {
            impl: x.server.hello.impl,
            version: x.server.hello.version || null,
            connected,
            failed: x.ready.failed,
            rssBefore: x.base.rss,
            rssAfterGc: x.after.rss,
            rssEnd: x.rssEnd,
            serverCpuUs: x.cpu1 - x.cpu0,
            maxSendLoopMs: x.maxSendMs,
            loadgen: r
          },
          noise: perConn.noise ? { tlsPerConnKB: perConn.noise } : {},
          warnings
        }
      }
    }
  } finally {
    for (const x of live) if (x.lg) x.lg.kill()
    await Promise.all(live.map((x) => x.server.stop()))
  }
  return results
}

module.exports = {
  name: 'tls',
  title: 'TLS',
  loadgenModes: ['receive'],
  concurrent: true,
  needsCert: true,
  // N: each server's tick must fit in its slot of the period (2 s / 5
  // servers = 400 ms); socket.io needs ~250 ms per tick at 2000 TLS clients
  // here. For the largest N one process holds, run one server alone:
  // --scenario tls --servers ferrosocket-core --set tls.connections=18000
  params: { connections: 2000, ticks: 30, period: 2, bytes: 64, rate: 0, concurrency: 100, settle: SETTLE },
  quickParams: { connections: 100, ticks: 3, period: 1, settle: QUICK_SETTLE },
  estimateSecs: (p, servers) => (p.ticks * p.period + 4 * p.settle.gcMinMs / 1000 + 10) / servers + p.connections / 1500,
  describe: (p) => `${p.connections} TLS clients per server; ticker: 1 message every ${p.period} s x ${p.ticks}`,
  measureRound,
  tables: [{
    id: 'tls-memory',
    title: 'TLS idle memory: server RSS per TLS connection',
    primary: 'tlsPerConnKB',
    metrics: [
      { key: 'tlsPerConnKB', label: 'KB/TLS conn', better: 'lower', digits: 2 }
    ],
    note: (p) => `${p.connections} idle wss:// connections (ECDSA P-256 certificate), server VmRSS growth after GC-settling; KB = 1024 bytes. ` +
      'Servers of a round run side by side (RSS is per process).'
  }, {
    id: 'ticker',
    title: 'Ticker over TLS: server CPU per delivered message',
    primary: 'cpuUsPerDelivery',
    metrics: [
      { key: 'cpuUsPerDelivery', label: 'server CPU µs/delivery', better: 'lower', digits: 2 },
      { key: 'delivered', label: 'delivered', pct: true, agg: 'min' },
      { key: 'spreadP50ms', label: 'spread p50 ms', better: 'lower', digits: 1 },
      { key: 'spreadMaxMs', label: 'spread max ms', better: 'lower', digits: 1 },
      { key: 'rssEndMiB', label: 'RSS MiB', better: 'lower', digits: 1 }
    ],
    note: (p) => `${p.connections} TLS clients per server, one ${p.bytes} B message to all every ${p.period} s, ${p.ticks} times; ` +
      'spread = first to last arrival of one tick; servers run side by side with their ticks staggered across each period.'
  }]
}
