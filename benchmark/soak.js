'use strict'
// Soak (#13 item 8): one ferrosocket Socket.IO server (the attached form,
// `new Server(httpServer)`) under hours-long mixed load on loopback, its
// RSS, open descriptors and CPU sampled every 10 s:
// - `--clients` (10k) WebSocket clients from the load generator, held the
//   whole run, receiving a 64 B broadcast every second;
// - churn: `--churn` socket.io-client connections a second, each living
//   1-3 s (default 20/s);
// - `--polling` long-polling socket.io-clients held the whole run (20).
// At the end every client leaves; after a settle (GC in the server) the
// RSS is compared with the baseline taken before anyone connected.
// Writes benchmark/results/soak-<time>.{json,svg}. Bounded: stops by itself
// after `--minutes` (60).
//
//   node benchmark/soak.js [--minutes 60] [--clients 10000] [--churn 20] [--polling 20]
const fs = require('node:fs')
const path = require('node:path')
const { parseArgs } = require('node:util')
const H = require('./harness')

const SAMPLE_MS = 10000

async function main () {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '60' },
      clients: { type: 'string', default: '10000' },
      churn: { type: 'string', default: '20' },
      polling: { type: 'string', default: '20' }
    }
  })
  const minutes = Number(values.minutes)
  const clients = Number(values.clients)
  const churnPerSec = Number(values.churn)
  const pollingN = Number(values.polling)
  for (const [k, v] of Object.entries({ minutes, clients, churnPerSec, pollingN })) {
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${k} must be a non-negative number`)
  }
  const log = (m) => process.stderr.write(`[soak] ${m}\n`)
  const children = new H.Children()
  process.on('exit', () => children.killAll())
  const lg = H.ensureLoadgen(log)
  const ctx = { lg, children, verbose: false, connectProgress: () => () => {} }
  const { io: ioc } = require('socket.io-client')
  const server = await H.startServer('ferrosocket-sio-attached', children, {})
  const base = await H.gcSettleRss(server, { tolerance: 0.01, gcMinMs: 2000, gcIntervalMs: 500, maxMs: 15000 })
  log(`server pid ${server.pid}, baseline RSS ${(base.rss / 1048576).toFixed(1)} MiB`)
  const httpBase = `http://127.0.0.1:${server.hello.port}`
  const samples = []
  const t0 = Date.now()
  let cpuPrev = await server.cpu()
  let tPrev = Date.now()
  const sample = async (phase) => {
    const cpu = await server.cpu()
    const now = Date.now()
    const { open } = await server.command('rss', 'rss')
    samples.push({
      t: (now - t0) / 1000,
      phase,
      rssMiB: H.readVmRss(server.pid) / 1048576,
      fds: fs.readdirSync(`/proc/${server.pid}/fd`).length,
      cpuPct: ((cpu - cpuPrev) / 1000) / (now - tPrev) * 100,
      open
    })
    cpuPrev = cpu
    tPrev = now
  }
  await sample('baseline')

  // Held WebSocket clients and polling clients.
  const holdSecs = minutes * 60 + 300
  const fleet = clients > 0
    ? await H.connectFleet(ctx, server, 'receive', { connections: clients, hold: holdSecs, rate: 0, concurrency: 200, timeout: 20, 'stdin-stop': 'yes' },
      { readyMs: clients / 100 * 1000 + 60000 })
    : null
  const polling = []
  for (let i = 0; i < pollingN; i++) polling.push(ioc(httpBase, { transports: ['polling'], forceNew: true, reconnection: true }))
  log(`${fleet ? fleet.ready.connected : 0} WebSocket and ${pollingN} polling clients held; churn ${churnPerSec}/s; ${minutes} min`)

  // Churn and the broadcast.
  let churned = 0
  let churnFailed = 0
  let due = 0
  const churn = setInterval(() => {
    // Exactly churnPerSec a second, also when it is not a multiple of 10.
    for (due += churnPerSec / 10; due >= 1; due--) {
      const c = ioc(httpBase, { transports: ['websocket'], forceNew: true, reconnection: false })
      churned++
      c.on('connect_error', () => { churnFailed++; c.close() })
      setTimeout(() => c.close(), 1000 + Math.random() * 2000)
    }
  }, 100)
  let broadcasts = 0
  const ticker = setInterval(() => { server.command('broadcast 1 64', 'broadcast').then(() => broadcasts++, () => {}) }, 1000)
  const end = t0 + minutes * 60000
  while (Date.now() < end) {
    await H.sleep(Math.min(SAMPLE_MS, Math.max(0, end - Date.now())))
    await sample('load')
    const last = samples[samples.length - 1]
    log(`${(last.t / 60).toFixed(1)} min: RSS ${last.rssMiB.toFixed(1)} MiB, ${last.fds} fds, ${last.open} open, CPU ${last.cpuPct.toFixed(0)}%`)
  }
  clearInterval(churn)
  clearInterval(ticker)

  // Everyone leaves; the server settles.
  const report = fleet ? await fleet.lg.reportOrStop(30000) : null
  for (const c of polling) c.close()
  await H.sleep(5000)
  await sample('after')
  const after = await H.gcSettleRss(server, { tolerance: 0.01, gcMinMs: 5000, gcIntervalMs: 1000, maxMs: 60000 })
  await sample('settled')
  await server.stop()

  const load = samples.filter((s) => s.phase === 'load')
  // Least-squares slope of RSS over the loaded phase, in MiB per hour,
  // leaving out the first fifth (connecting, warm-up).
  const steady = load.slice(Math.floor(load.length / 5))
  const slope = steady.length > 2 ? slopeOf(steady.map((s) => [s.t / 3600, s.rssMiB])) : null
  const result = {
    date: new Date().toISOString(),
    machine: H.machineInfo(),
    params: { minutes, clients, churnPerSec, polling: pollingN, sampleMs: SAMPLE_MS },
    baselineMiB: base.rss / 1048576,
    settledMiB: after.rss / 1048576,
    // What of the RSS is V8's heap (the rest: native memory, the
    // allocator's free lists, code).
    heapTotalMiB: { baseline: base.heapTotal / 1048576, settled: after.heapTotal / 1048576 },
    peakMiB: Math.max(...samples.map((s) => s.rssMiB)),
    rssSlopeMiBPerHour: slope,
    fdsBaseline: samples[0].fds,
    fdsSettled: samples[samples.length - 1].fds,
    churned,
    churnFailed,
    broadcasts,
    received: report ? report.received : 0,
    expectedAtLeast: report ? (report.connected || clients) * Math.max(0, broadcasts - 2) : 0,
    samples
  }
  const dir = path.join(__dirname, 'results')
  const stamp = result.date.replace(/[:.]/g, '-').slice(0, 19) + 'Z'
  fs.writeFileSync(path.join(dir, `soak-${stamp}.json`), JSON.stringify(result, null, 1))
  fs.writeFileSync(path.join(dir, `soak-${stamp}.svg`), chart(result))
  log(`baseline ${result.baselineMiB.toFixed(1)} MiB (V8 heap ${result.heapTotalMiB.baseline.toFixed(1)}), peak ${result.peakMiB.toFixed(1)}, ` +
    `settled ${result.settledMiB.toFixed(1)} (V8 heap ${result.heapTotalMiB.settled.toFixed(1)}); ` +
    `slope ${slope === null ? 'n/a' : slope.toFixed(2)} MiB/h; fds ${result.fdsBaseline} -> ${result.fdsSettled}; ` +
    `${churned} churned (${churnFailed} failed); ${broadcasts} broadcasts, ${result.received} received`)
  log(`results: benchmark/results/soak-${stamp}.{json,svg}`)
  const failed = verdict(result).filter((c) => !c.ok)
  for (const c of verdict(result)) log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.text}`)
  process.exit(failed.length ? 1 : 0)
}

/**
 * What a soak must show: memory flat under load, back near the baseline
 * once everyone left, no descriptor left behind, every broadcast delivered,
 * every churned client connected. The bounds are loose enough for GC and
 * allocator noise, far below what a leak of one buffer per connection or
 * churned client would add over an hour.
 */
function verdict (r) {
  return [
    // Over a few minutes the warm-up dominates the slope: judged from 20 min.
    { ok: r.params.minutes < 20 || r.rssSlopeMiBPerHour === null || r.rssSlopeMiBPerHour <= 16, text: `RSS slope under load <= 16 MiB/h (${r.rssSlopeMiBPerHour === null ? 'n/a' : r.rssSlopeMiBPerHour.toFixed(2)}${r.params.minutes < 20 ? ', not judged under 20 min' : ''})` },
    { ok: r.settledMiB - r.baselineMiB <= 32, text: `settled RSS within 32 MiB of the baseline (+${(r.settledMiB - r.baselineMiB).toFixed(1)} MiB)` },
    { ok: r.fdsSettled <= r.fdsBaseline + 4, text: `descriptors back at the baseline (${r.fdsBaseline} -> ${r.fdsSettled})` },
    { ok: r.received >= r.expectedAtLeast, text: `every broadcast delivered (${r.received} of at least ${r.expectedAtLeast})` },
    { ok: r.churnFailed <= r.churned / 1000, text: `churned clients connected (${r.churnFailed} of ${r.churned} failed, at most 0.1%)` }
  ]
}

function slopeOf (points) {
  const n = points.length
  const mx = points.reduce((a, [x]) => a + x, 0) / n
  const my = points.reduce((a, [, y]) => a + y, 0) / n
  let num = 0
  let den = 0
  for (const [x, y] of points) { num += (x - mx) * (y - my); den += (x - mx) ** 2 }
  return den === 0 ? 0 : num / den
}

/** RSS (MiB) and open descriptors over time, one SVG. */
function chart (r) {
  const W = 800
  const H_ = 320
  const pad = { l: 60, r: 60, t: 30, b: 40 }
  const xs = r.samples.map((s) => s.t / 60)
  const xMax = Math.max(...xs, 1)
  const rssMax = Math.max(...r.samples.map((s) => s.rssMiB)) * 1.1
  const fdMax = Math.max(...r.samples.map((s) => s.fds)) * 1.1
  const x = (v) => pad.l + (v / xMax) * (W - pad.l - pad.r)
  const y = (v, max) => H_ - pad.b - (v / max) * (H_ - pad.t - pad.b)
  const line = (key, max) => r.samples.map((s, i) => `${i ? 'L' : 'M'}${x(s.t / 60).toFixed(1)},${y(s[key], max).toFixed(1)}`).join(' ')
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H_}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${pad.l}" y="18">Soak: RSS (blue, MiB, left) and open fds (orange, right); ${r.params.clients} clients, churn ${r.params.churnPerSec}/s, ${r.params.polling} polling, ${r.params.minutes} min</text>
<line x1="${pad.l}" y1="${H_ - pad.b}" x2="${W - pad.r}" y2="${H_ - pad.b}" stroke="#999"/>
<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${H_ - pad.b}" stroke="#999"/>
<line x1="${W - pad.r}" y1="${pad.t}" x2="${W - pad.r}" y2="${H_ - pad.b}" stroke="#999"/>
<text x="${pad.l - 5}" y="${pad.t + 4}" text-anchor="end">${rssMax.toFixed(0)}</text>
<text x="${pad.l - 5}" y="${H_ - pad.b}" text-anchor="end">0</text>
<text x="${W - pad.r + 5}" y="${pad.t + 4}">${fdMax.toFixed(0)}</text>
<text x="${W - pad.r + 5}" y="${H_ - pad.b}">0</text>
<text x="${W / 2}" y="${H_ - 10}" text-anchor="middle">minutes (last samples: clients gone, then GC-settled)</text>
<text x="${W - pad.r}" y="${H_ - pad.b + 15}" text-anchor="end">${xMax.toFixed(0)}</text>
<path d="${line('rssMiB', rssMax)}" fill="none" stroke="#1f77b4" stroke-width="2"/>
<path d="${line('fds', fdMax)}" fill="none" stroke="#ff7f0e" stroke-width="1.5"/>
</svg>
`
}

main().catch((err) => {
  process.stderr.write(`[soak] ${err.stack || err}\n`)
  process.exit(1)
})
