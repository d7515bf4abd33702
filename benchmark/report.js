'use strict'
// Turning samples into numbers people read: per-table summaries (median,
// min..max, ratios against socket.io and uWebSockets.js), console tables,
// one hand-written SVG bar chart per table, the goal check, and the markdown
// summary.
const { SERVERS, median } = require('./harness')
const { clock } = require('./progress')

// Console output fits a 100-column terminal; the markdown and JSON keep the
// detail that does not (full server names and versions, min..max per row).
const WIDTH = 100

// Peers every ratio is taken against.
const PEERS = ['socketio', 'uws'].map((name) => ({ name, column: `vs ${SERVERS[name].short}` }))

// Performance targets, checked on the same run. The Socket.IO API's are
// stated first for the attached form (`new Server(httpServer)`), the one
// most apps use, then for the standalone one. benchmark/README.md
// ("Goals") lists them for readers; __test__/bench-quick.spec.mjs checks
// that every text here appears there.
const GOALS = [
  { table: 'memory', server: 'ferrosocket-core', peer: 'uws', op: '<=', target: 1.0, text: 'core API idle RSS/conn <= 1.0x uWebSockets.js', minN: 5000 },
  { table: 'memory', server: 'ferrosocket-sio-attached', peer: 'socketio', op: '<=', target: 0.2, text: 'Socket.IO API attached idle RSS/conn <= 0.2x socket.io', minN: 5000 },
  { table: 'memory', server: 'ferrosocket-sio-attached', peer: 'ferrosocket-sio', op: '<=', target: 1.1, text: 'Socket.IO API attached idle RSS/conn <= 1.1x standalone', minN: 5000 },
  { table: 'memory', server: 'ferrosocket-sio', peer: 'socketio', op: '<=', target: 0.2, text: 'Socket.IO API idle RSS/conn <= 0.2x socket.io', minN: 5000 },
  { table: 'broadcast', server: 'ferrosocket-core', peer: 'uws', op: '>=', target: 1.0, text: 'core API broadcast deliveries/s >= 1.0x uWebSockets.js' },
  { table: 'broadcast', server: 'ferrosocket-sio-attached', peer: 'socketio', op: '>=', target: 10, text: 'Socket.IO API attached broadcast deliveries/s >= 10x socket.io' },
  { table: 'broadcast', server: 'ferrosocket-sio', peer: 'socketio', op: '>=', target: 10, text: 'Socket.IO API broadcast deliveries/s >= 10x socket.io' },
  { table: 'broadcast', metric: 'cpuUsPerDelivery', server: 'ferrosocket-core', peer: 'uws', op: '<=', target: 1.0, text: 'core API server CPU per delivery <= 1.0x uWebSockets.js' },
  { table: 'echo', server: 'ferrosocket-core', peer: 'uws', op: '>=', target: 1.0, text: 'core API echo round trips/s >= 1.0x uWebSockets.js' },
  { table: 'echo', server: 'ferrosocket-sio-attached', peer: 'socketio', op: '>=', target: 2.5, text: 'Socket.IO API attached echo round trips/s >= 2.5x socket.io' },
  { table: 'echo', server: 'ferrosocket-sio', peer: 'socketio', op: '>=', target: 2.5, text: 'Socket.IO API echo round trips/s >= 2.5x socket.io' },
  { table: 'connect', server: 'ferrosocket-core', peer: 'uws', op: '>=', target: 1.0, text: 'core API connect rate >= 1.0x uWebSockets.js' },
  { table: 'connect', server: 'ferrosocket-sio-attached', peer: 'socketio', op: '>=', target: 3, text: 'Socket.IO API attached connect rate >= 3x socket.io' },
  { table: 'connect', server: 'ferrosocket-sio', peer: 'socketio', op: '>=', target: 3, text: 'Socket.IO API connect rate >= 3x socket.io' },
  { table: 'tls-memory', server: 'ferrosocket-core', peer: 'uws', op: '<=', target: 1.0, text: 'core API TLS idle RSS/conn <= 1.0x uWebSockets.js', minN: 1000 },
  { table: 'tls-memory', server: 'ferrosocket-sio', peer: 'uws', op: '<=', target: 1.0, text: 'Socket.IO API TLS idle RSS/conn <= 1.0x uWebSockets.js', minN: 1000 },
  { table: 'ticker', metric: 'delivered', agg: 'min', server: 'ferrosocket-core', op: '>=', target: 1, pct: true, text: 'core API ticker: every message delivered' },
  { table: 'ticker', metric: 'delivered', agg: 'min', server: 'ferrosocket-sio', op: '>=', target: 1, pct: true, text: 'Socket.IO API ticker: every message delivered' },
  { table: 'cluster', metric: 'delivered', agg: 'min', server: 'ferrosocket-core', op: '>=', target: 1, pct: true, text: 'core API cluster ticker over Redis: every message delivered' },
  { table: 'cluster', metric: 'delivered', agg: 'min', server: 'ferrosocket-sio', op: '>=', target: 1, pct: true, text: 'Socket.IO API cluster ticker over Redis: every message delivered' },
  { table: 'heartbeat', metric: 'missed', agg: 'max', server: 'ferrosocket-core', op: '<=', target: 0, text: 'core API heartbeat: zero missed' },
  { table: 'heartbeat', metric: 'cpuPct', server: 'ferrosocket-core', peer: 'uws', op: '<=', target: 1.0, text: 'core API heartbeat server CPU <= 1.0x uWebSockets.js' },
  { table: 'heartbeat', metric: 'maxMs', agg: 'max', server: 'ferrosocket-core', op: '<', target: 1000, unit: 'ms', text: 'core API heartbeat: max latency < 1 s' },
  { table: 'heartbeat', metric: 'missed', agg: 'max', server: 'ferrosocket-sio', op: '<=', target: 0, text: 'Socket.IO API heartbeat: zero missed' },
  { table: 'heartbeat', metric: 'maxMs', agg: 'max', server: 'ferrosocket-sio', op: '<', target: 1000, unit: 'ms', text: 'Socket.IO API heartbeat: max latency < 1 s' }
]

function si (x) {
  const a = Math.abs(x)
  if (a >= 1e6) return (x / 1e6).toFixed(a >= 1e7 ? 1 : 2) + 'M'
  if (a >= 1e3) return (x / 1e3).toFixed(a >= 1e4 ? 1 : 2) + 'k'
  return x.toFixed(a >= 100 ? 0 : 1)
}

/**
 * `text` broken at spaces into lines of at most `width`, later lines
 * indented; a word longer than a line (a path) stays whole.
 */
function wrap (text, width = WIDTH, indent = '') {
  const lines = []
  let rest = String(text)
  while (rest.length > width) {
    let cut = rest.lastIndexOf(' ', width)
    if (cut <= indent.length) cut = rest.indexOf(' ', width)
    if (cut < 0) break
    lines.push(rest.slice(0, cut).trimEnd())
    rest = indent + rest.slice(cut + 1).trimStart()
  }
  lines.push(rest)
  return lines.join('\n')
}

/** One metric value as text, per its definition. */
function fmtValue (def, v) {
  if (v == null || !Number.isFinite(v)) return '-'
  if (def.pct) return v >= 1 ? '100%' : `${(Math.floor(v * 10000) / 100).toFixed(2)}%`
  if (def.si) return si(v)
  return v.toFixed(def.digits ?? 2)
}

/** One sample's value of a metric, for the progress lines. */
function fmtSample (def, sample) {
  const z = sample.noise && sample.noise[def.key]
  if (z) return `<noise (RSS grew ${mib(z.growthBytes)} MiB, floor ${mib(z.floorBytes)} MiB)`
  return fmtValue(def, sample.metrics[def.key])
}

function fmtRatio (r) {
  if (r == null || !Number.isFinite(r)) return '-'
  return r >= 100 ? `${r.toFixed(0)}x` : r >= 10 ? `${r.toFixed(1)}x` : `${r.toFixed(2)}x`
}

function aggregate (values, agg) {
  const v = values.filter((x) => x != null && Number.isFinite(x))
  if (!v.length) return null
  if (agg === 'min') return Math.min(...v)
  if (agg === 'max') return Math.max(...v)
  return median(v)
}

/**
 * Summaries for each table of a scenario.
 * @param {object} sc  scenario definition (tables)
 * @param {object} run  { params, samples, errors, unsupported, skipped }
 * @param {string[]} servers
 */
function summarizeScenario (sc, run, servers) {
  return sc.tables.map((t) => {
    const rows = {}
    for (const name of servers) {
      const mine = run.samples.filter((s) => s.server === name)
      const metrics = {}
      for (const def of t.metrics) {
        // One round under the noise floor (harness.rssPerConn) makes the
        // whole row "below noise": a median of the rounds that happened to
        // clear the floor would be biased upwards.
        const noisy = mine.map((s) => s.noise && s.noise[def.key]).filter(Boolean)
        const values = noisy.length ? [] : mine.map((s) => s.metrics[def.key]).filter((x) => x != null && Number.isFinite(x))
        metrics[def.key] = {
          values,
          value: aggregate(values, def.agg),
          median: median(values),
          min: values.length ? Math.min(...values) : null,
          max: values.length ? Math.max(...values) : null,
          noise: noisy.length
            ? {
                rounds: noisy.length,
                connections: Math.min(...noisy.map((n) => n.connections)),
                floorBytes: Math.max(...noisy.map((n) => n.floorBytes)),
                growthBytes: noisy.map((n) => n.growthBytes),
                rawKB: noisy.map((n) => n.rawKB)
              }
            : null
        }
      }
      rows[name] = {
        label: SERVERS[name].label,
        short: SERVERS[name].short,
        version: mine[0] ? mine[0].info.version : null,
        rounds: mine.length,
        metrics,
        warnings: [...new Set(mine.flatMap((s) => s.warnings || []))],
        errors: run.errors.filter((e) => e.server === name).map((e) => e.error),
        unsupported: run.unsupported[name] || null
      }
    }
    for (const name of servers) {
      const row = rows[name]
      row.ratios = {}
      for (const peer of PEERS) {
        const mine = row.metrics[t.primary].value
        const theirs = rows[peer.name] ? rows[peer.name].metrics[t.primary].value : null
        // No ratio without a value on both sides (below noise, error, ...).
        row.ratios[peer.name] = mine > 0 && theirs > 0 ? mine / theirs : null
      }
    }
    return {
      id: t.id,
      title: t.title,
      note: t.note(run.params),
      primary: t.primary,
      better: t.metrics.find((m) => m.key === t.primary).better,
      metrics: t.metrics.map(({ key, label, better, digits, si, pct, agg }) => ({ key, label, better, digits, si, pct, agg })),
      rows,
      params: run.params,
      skipped: run.skipped || null
    }
  })
}

const mib = (bytes) => (bytes / 1048576).toFixed(2)

/** Why a row has no number, and what went wrong on the way: one string each. */
function rowNotes (t, row, n = 90) {
  const notes = []
  if (row.unsupported) notes.push(`not supported: ${firstLine(row.unsupported, n)}`)
  if (row.errors.length && !row.unsupported) notes.push(`${row.errors.length} error(s): ${firstLine(row.errors[0], n)}`)
  for (const def of t.metrics) {
    const z = row.metrics[def.key].noise
    if (!z) continue
    notes.push(`${def.label} <noise: RSS grew ${z.growthBytes.map(mib).join(', ')} MiB for ${z.connections} connections ` +
      `(noise floor ${mib(z.floorBytes)} MiB)`)
  }
  if (row.warnings.length) notes.push(firstLine(row.warnings.join('; '), n))
  return notes
}

const NOISE_HINT = '<noise = the server RSS grew by less than its noise floor: N is too small to ' +
  'measure memory per connection; raise it with --connections (raw figures are in the JSON).'

/** A metric's cell: its value, or in a word why there is none. */
function cellText (def, m, row) {
  if (m.noise) return '<noise'
  if (m.value == null && row.unsupported) return 'n/a'
  if (m.value == null && row.errors.length) return 'error'
  return fmtValue(def, m.value)
}

function firstLine (s, n) {
  const l = String(s).split('\n')[0]
  return l.length > n ? l.slice(0, n - 1) + '…' : l
}

/** Rows of cells for the markdown table: one row per server, every detail. */
function tableCells (t, rounds) {
  const primary = t.metrics.find((m) => m.key === t.primary)
  const head = ['server', `${primary.label} (median)`, 'min..max', ...t.metrics.filter((m) => m.key !== t.primary).map((m) => m.label + (m.agg === 'min' ? ' (worst)' : m.agg === 'max' ? ' (worst)' : '')),
    ...PEERS.map((p) => p.column), 'rounds', 'notes']
  const rows = [head]
  for (const [name, r] of Object.entries(t.rows)) {
    const pm = r.metrics[t.primary]
    rows.push([
      r.label + (r.version ? ` ${r.version}` : ''),
      cellText(primary, pm, r),
      pm.min == null ? '-' : `${fmtValue(primary, pm.min)}..${fmtValue(primary, pm.max)}`,
      ...t.metrics.filter((m) => m.key !== t.primary).map((m) => cellText(m, r.metrics[m.key], r)),
      ...PEERS.map((p) => name === p.name ? '1x' : fmtRatio(r.ratios[p.name])),
      `${r.rounds}/${rounds}`,
      rowNotes(t, r).join('; ')
    ])
  }
  return rows
}

function betterText (t) {
  const p = t.metrics.find((m) => m.key === t.primary)
  return `${p.label}: ${t.better === 'lower' ? 'lower' : 'higher'} is better; vs X = this server's value divided by X's`
}

const worst = (def) => def.agg === 'min' || def.agg === 'max' ? ' (worst)' : ''

/**
 * A table for the terminal: one column per server (short names, see
 * formatLegend), one line per metric, so the width depends on the number of
 * servers (at most 5: ~85 columns) and not on how many metrics a scenario
 * reports. Notes go on lines of their own under it.
 */
function formatConsoleTable (t, rounds) {
  const names = Object.keys(t.rows)
  const rows = names.map((n) => t.rows[n])
  const primary = t.metrics.find((m) => m.key === t.primary)
  const lines = [[rounds > 1 ? `median of ${rounds} rounds` : '1 round', ...rows.map((r) => r.short)]]
  lines.push([primary.label, ...rows.map((r) => cellText(primary, r.metrics[t.primary], r))])
  if (rounds > 1) {
    for (const k of ['min', 'max']) lines.push([`  ${k}`, ...rows.map((r) => fmtValue(primary, r.metrics[t.primary][k]))])
  }
  for (const p of PEERS) {
    if (t.rows[p.name]) lines.push([`  ${p.column}`, ...names.map((n) => n === p.name ? '1x' : fmtRatio(t.rows[n].ratios[p.name]))])
  }
  for (const def of t.metrics) {
    if (def.key !== t.primary) lines.push([def.label + worst(def), ...rows.map((r) => cellText(def, r.metrics[def.key], r))])
  }
  if (rows.some((r) => r.rounds !== rounds)) lines.push(['rounds', ...rows.map((r) => `${r.rounds}/${rounds}`)])
  const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)))
  const fmt = (l) => l.map((c, i) => i === 0 ? c.padEnd(widths[0]) : c.padStart(widths[i])).join('  ')

  const out = [`== ${t.title} ==`]
  if (t.skipped) out.push(wrap(`skipped: ${t.skipped}`, WIDTH, '  '))
  out.push(...lines.map(fmt), wrap(betterText(t)), wrap(t.note))
  const notes = rows.flatMap((r) => rowNotes(t, r, 200).map((n) => wrap(`  ${r.short}: ${n}`, WIDTH, '    ')))
  if (notes.length) out.push('notes:', ...notes)
  if (rows.some((r) => Object.values(r.metrics).some((m) => m.noise))) out.push(wrap(NOISE_HINT))
  return out.join('\n')
}

/** What the console's short server names stand for, with versions. */
function formatLegend (servers, versionOf) {
  const parts = servers.map((n) => {
    const s = SERVERS[n]
    const v = versionOf(n)
    return `${s.short === s.label ? '' : s.short + ' = '}${s.label}${v ? ' ' + v : ''}`
  })
  return wrap(`servers: ${parts.join('; ')}`, WIDTH, '  ')
}

function escapeXml (s) {
  return String(s).replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c])
}

/** Horizontal bar chart of the primary metric: median bars, min..max whiskers. */
function svgChart (t, subtitle) {
  const def = t.metrics.find((m) => m.key === t.primary)
  const rows = Object.entries(t.rows)
  const W = 860
  const labelW = 230
  const valueW = 260 // the value, then the ratios right-aligned
  const barMax = W - labelW - valueW - 20
  const rowH = 34
  const top = 64
  const H = top + rows.length * rowH + 44
  const maxV = Math.max(0, ...rows.flatMap(([, r]) => [r.metrics[t.primary].max, r.metrics[t.primary].value].filter((x) => x != null))) || 1
  const x = (v) => labelW + Math.max(0, v) / maxV * barMax
  const out = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="13">`)
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`)
  out.push(`<text x="16" y="26" font-size="16" font-weight="600" fill="#111">${escapeXml(t.title)}</text>`)
  out.push(`<text x="16" y="46" fill="#555">${escapeXml(`${def.label}, median of rounds (bars) and min..max (whiskers); ${t.better === 'lower' ? 'lower' : 'higher'} is better`)}</text>`)
  rows.forEach(([name, r], i) => {
    const y = top + i * rowH
    const m = r.metrics[t.primary]
    const ferro = name.startsWith('ferrosocket')
    out.push(`<text x="${labelW - 10}" y="${y + 21}" text-anchor="end" fill="#222"${ferro ? ' font-weight="600"' : ''}>${escapeXml(r.label)}</text>`)
    if (m.value == null) {
      const why = m.noise ? 'below noise: N too small' : r.unsupported ? 'not supported' : r.errors.length ? 'error' : 'no data'
      out.push(`<text x="${labelW + 6}" y="${y + 21}" fill="#999">${why}</text>`)
      return
    }
    const w = Math.max(1, x(m.value) - labelW)
    out.push(`<rect x="${labelW}" y="${y + 7}" width="${w.toFixed(1)}" height="20" rx="2" fill="${ferro ? '#d2601a' : '#7a8a9a'}"/>`)
    if (m.min != null && m.max != null && m.max > m.min) {
      const y0 = y + 17
      out.push(`<path d="M${x(m.min).toFixed(1)} ${y0}H${x(m.max).toFixed(1)}M${x(m.min).toFixed(1)} ${y0 - 5}v10M${x(m.max).toFixed(1)} ${y0 - 5}v10" stroke="#222" stroke-width="1.2" fill="none"/>`)
    }
    const ratio = PEERS.filter((p) => p.name !== name && r.ratios[p.name] != null).map((p) => `${fmtRatio(r.ratios[p.name])} ${p.column.replace('vs ', '')}`)
    out.push(`<text x="${Math.max(x(m.max ?? m.value), x(m.value)) + 8}" y="${y + 21}" fill="#111">${escapeXml(fmtValue(def, m.value))}</text>`)
    if (ratio.length) out.push(`<text x="${W - 10}" y="${y + 21}" text-anchor="end" fill="#666" font-size="11">${escapeXml(ratio.join(' · '))}</text>`)
  })
  out.push(`<text x="16" y="${H - 14}" fill="#777" font-size="11">${escapeXml(subtitle)}</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}

/**
 * The goals this run can speak to (their table ran, with their server and
 * peer), each with a verdict 'met' | 'not met' | 'no data' and a caveat when
 * the verdict means less than it says (N too small). A value below the noise
 * floor is no data, not a small number that meets a target.
 */
function evaluateGoals (tablesById) {
  const inRun = (g) => tablesById[g.table] && tablesById[g.table].rows[g.server] && (!g.peer || tablesById[g.table].rows[g.peer])
  return GOALS.filter(inRun).map((g) => {
    const t = tablesById[g.table]
    const metric = g.metric || (t && t.primary)
    const row = t && t.rows[g.server]
    let measured = null
    let shown = '-'
    let caveat = null
    if (row && row.metrics[metric]) {
      const m = row.metrics[metric]
      const v = g.agg === 'min' ? m.min : g.agg === 'max' ? m.max : m.median
      const peer = g.peer && t.rows[g.peer] ? t.rows[g.peer].metrics[metric] : null
      if (m.noise) {
        shown = '<noise'
        caveat = `N=${m.noise.connections} too small`
      } else if (peer && peer.noise) {
        caveat = `${SERVERS[g.peer].short} <noise at N=${peer.noise.connections}`
      } else if (g.peer) {
        const pv = peer ? (g.agg === 'min' ? peer.min : g.agg === 'max' ? peer.max : peer.median) : null
        if (v > 0 && pv > 0) { measured = v / pv; shown = fmtRatio(measured) }
      } else if (v != null) {
        measured = v
        shown = g.pct ? fmtValue({ pct: true }, v) : `${v.toFixed(g.unit === 'KB' ? 2 : 0)}${g.unit ? ' ' + g.unit : ''}`
      }
    }
    const ops = { '<=': (a, b) => a <= b, '>=': (a, b) => a >= b, '<': (a, b) => a < b }
    const verdict = measured == null ? 'no data' : ops[g.op](measured, g.target) ? 'met' : 'not met'
    if (g.minN && t && t.params && t.params.connections < g.minN && measured != null) caveat = `N=${t.params.connections}: harness check only`
    return { goal: g.text, table: g.table, measured, shown, verdict, caveat, status: verdict + (caveat ? ` (${caveat})` : '') }
  })
}

/** The goals for the terminal, one per line (wrapped under its text). */
function formatGoals (goals) {
  const tag = { met: 'met    ', 'not met': 'NOT MET', 'no data': 'no data' }
  return ['== Goals (benchmark/README.md lists them) ==',
    ...goals.map((g) => wrap(`${tag[g.verdict]}  ${g.goal}: ${g.shown}${g.caveat ? ` (${g.caveat})` : ''}`, WIDTH, ' '.repeat(9)))
  ].join('\n')
}

// "<noise" must not read as the start of an HTML tag.
const mdText = (s) => String(s).replace(/</g, '&lt;')

function mdTable (rows) {
  const esc = (c) => mdText(c).replace(/\|/g, '\\|')
  return [
    `| ${rows[0].map(esc).join(' | ')} |`,
    `| ${rows[0].map((_, i) => (i === 0 || i === rows[0].length - 1 ? '---' : '---:')).join(' | ')} |`,
    ...rows.slice(1).map((r) => `| ${r.map(esc).join(' | ')} |`)
  ].join('\n')
}

/**
 * The markdown summary. `charts` maps table id -> SVG file name (relative);
 * `readme` is benchmark/README.md as a link from where the file is written,
 * or null when that is outside the repository.
 */
function markdown (result, charts, readme) {
  const readmeRef = (anchor = '') => readme ? `[benchmark/README.md](${readme}${anchor})` : 'benchmark/README.md in the ferrosocket repository'
  const m = result.machine
  const v = result.versions
  const out = []
  const when = result.started.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')
  out.push(`# ferrosocket benchmark, ${when}${result.quick ? ' (--quick: harness smoke test, not a measurement)' : ''}`)
  out.push('')
  out.push(`- Machine: ${m.cpus} x ${m.cpuModel}, ${(m.totalMemMiB / 1024).toFixed(1)} GiB, ${m.platform} ${m.kernel}, open files ${m.openFilesLimit}`)
  out.push(`- Load average (1/5/15 min): before ${result.loadavgBefore.map((x) => x.toFixed(2)).join(' / ')}, after ${result.loadavgAfter.map((x) => x.toFixed(2)).join(' / ')}`)
  const git = v.ferrosocketGit ? ` (git ${v.ferrosocketGit.commit}${v.ferrosocketGit.dirty ? ', uncommitted changes' : ''})` : ''
  out.push(`- Versions: Node ${v.node}; ferrosocket ${v.ferrosocket}${git}; socket.io ${v['socket.io']}; ws ${v.ws}; uWebSockets.js ${v['uWebSockets.js']} (npm @trufflesuite/uws-js-unofficial, native addon verified at start); loadgen ${v.loadgen}`)
  out.push(`- Run: \`${['node benchmark/run.js', ...result.argv].join(' ')}\`, ${result.rounds} round(s), servers interleaved in each round (${result.servers.join(', ')}); medians, min..max over rounds; took ${clock(result.durationSecs)}`)
  out.push('- Everything on loopback; each server in its own Node process; the load generator is a Rust program (benchmark/loadgen) in other processes on the same 2 cores, so these are relative numbers for this machine.')
  out.push('')
  const goals = result.goals
  if (goals.length) {
    out.push('## Goals')
    out.push('')
    out.push(`The project's performance targets (${readmeRef('#goals')}), checked on this run.`)
    out.push('')
    out.push(mdTable([['goal', 'measured', 'status'], ...goals.map((g) => [g.goal, g.shown, g.status])]))
    out.push('')
  }
  for (const [name, sc] of Object.entries(result.scenarios)) {
    for (const t of sc.tables) {
      out.push(`## ${t.title}`)
      out.push('')
      out.push(`${t.note}`)
      if (t.skipped) out.push(`\n**Skipped:** ${t.skipped}`)
      out.push('')
      if (charts[t.id]) out.push(`![${t.title}](${charts[t.id]})`, '')
      out.push(mdTable(tableCells(t, result.rounds)))
      out.push('')
      out.push(`_${betterText(t)}._`)
      out.push('')
      if (Object.values(t.rows).some((r) => Object.values(r.metrics).some((m) => m.noise))) out.push(`_${mdText(NOISE_HINT)}_`, '')
    }
    const errs = sc.errors.filter((e) => !e.unsupported)
    if (errs.length) {
      out.push(`<details><summary>${name}: ${errs.length} error(s)</summary>`, '')
      for (const e of errs) out.push(`- ${e.server} round ${e.round}: ${firstLine(e.error, 300)}`)
      out.push('', '</details>', '')
    }
  }
  out.push('## Reproduce')
  out.push('')
  out.push('```sh')
  out.push('npm install && npm run build        # needs Rust (the load generator is built on first use)')
  out.push('npm run bench                        # all scenarios, 3 rounds (~30 min on 2 cores)')
  out.push('npm run bench -- --scenario broadcast,echo --rounds 5')
  out.push('npm run bench -- --quick            # harness smoke test (small N, one round)')
  out.push('```')
  out.push('')
  out.push(`Method and parameters: ${readmeRef()}. Raw samples: the JSON file next to this one.`)
  return out.join('\n') + '\n'
}

/** The latency columns of a table (loadgen's p50_us/p99_us as ms). */
const LATENCY_METRICS = [
  { key: 'p50ms', label: 'p50 ms', better: 'lower', digits: 2 },
  { key: 'p99ms', label: 'p99 ms', better: 'lower', digits: 2 }
]

/** The metrics those columns show, from a loadgen report. */
const latencyOf = (report) => ({ p50ms: report.p50_us / 1000, p99ms: report.p99_us / 1000 })

module.exports = {
  LATENCY_METRICS,
  latencyOf,
  summarizeScenario,
  formatConsoleTable,
  formatLegend,
  formatGoals,
  svgChart,
  evaluateGoals,
  markdown,
  fmtValue,
  fmtSample,
  fmtRatio,
  wrap,
  WIDTH,
  GOALS,
  PEERS
}
