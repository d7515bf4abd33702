'use strict'
// Turning samples into numbers people read: per-table summaries (median,
// min..max, ratios against socket.io and uWebSockets.js), console tables,
// one hand-written SVG bar chart per table, the goal check from
// shared/docs/DESIGN.md, and the markdown summary.
const { SERVERS, median } = require('./harness')
const { clock } = require('./progress')

// Peers every ratio is taken against.
const PEERS = [
  { name: 'socketio', column: 'vs socket.io' },
  { name: 'uws', column: 'vs uWS.js' }
]

// DESIGN.md performance targets, checked on the same run.
const GOALS = [
  { table: 'memory', server: 'ferrosocket-core', peer: 'uws', op: '<=', target: 1.0, text: 'core API idle RSS/conn <= 1.0x uWebSockets.js', minN: 5000 },
  { table: 'memory', server: 'ferrosocket-sio', peer: 'socketio', op: '<=', target: 0.2, text: 'Socket.IO API idle RSS/conn <= 0.2x socket.io', minN: 5000 },
  { table: 'broadcast', server: 'ferrosocket-core', peer: 'uws', op: '>=', target: 1.0, text: 'core API broadcast deliveries/s >= 1.0x uWebSockets.js' },
  { table: 'broadcast', server: 'ferrosocket-sio', peer: 'socketio', op: '>=', target: 10, text: 'Socket.IO API broadcast deliveries/s >= 10x socket.io' },
  { table: 'broadcast', metric: 'cpuUsPerDelivery', server: 'ferrosocket-core', peer: 'uws', op: '<=', target: 1.0, text: 'core API server CPU per delivery <= 1.0x uWebSockets.js' },
  { table: 'echo', server: 'ferrosocket-core', peer: 'uws', op: '>=', target: 1.0, text: 'core API echo round trips/s >= 1.0x uWebSockets.js' },
  { table: 'echo', server: 'ferrosocket-sio', peer: 'socketio', op: '>=', target: 2.5, text: 'Socket.IO API echo round trips/s >= 2.5x socket.io' },
  { table: 'connect', server: 'ferrosocket-core', peer: 'uws', op: '>=', target: 1.0, text: 'core API connect rate >= 1.0x uWebSockets.js' },
  { table: 'connect', server: 'ferrosocket-sio', peer: 'socketio', op: '>=', target: 3, text: 'Socket.IO API connect rate >= 3x socket.io' },
  { table: 'tls-memory', server: 'ferrosocket-core', op: '<=', target: 8, unit: 'KB', text: 'core API TLS idle RSS/conn <= 8 KB', minN: 1000 },
  { table: 'tls-memory', server: 'ferrosocket-sio', op: '<=', target: 8, unit: 'KB', text: 'Socket.IO API TLS idle RSS/conn <= 8 KB', minN: 1000 },
  { table: 'ticker', metric: 'delivered', agg: 'min', server: 'ferrosocket-core', op: '>=', target: 1, pct: true, text: 'core API ticker: every message delivered' },
  { table: 'ticker', metric: 'delivered', agg: 'min', server: 'ferrosocket-sio', op: '>=', target: 1, pct: true, text: 'Socket.IO API ticker: every message delivered' },
  { table: 'heartbeat', metric: 'missed', agg: 'max', server: 'ferrosocket-core', op: '<=', target: 0, text: 'core API heartbeat: zero missed' },
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

/** One metric value as text, per its definition. */
function fmtValue (def, v) {
  if (v == null || !Number.isFinite(v)) return '-'
  if (def.pct) return v >= 1 ? '100%' : `${(Math.floor(v * 10000) / 100).toFixed(2)}%`
  if (def.si) return si(v)
  return v.toFixed(def.digits ?? 2)
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
        const values = mine.map((s) => s.metrics[def.key]).filter((x) => x != null && Number.isFinite(x))
        metrics[def.key] = {
          values,
          value: aggregate(values, def.agg),
          median: median(values),
          min: values.length ? Math.min(...values) : null,
          max: values.length ? Math.max(...values) : null
        }
      }
      rows[name] = {
        label: SERVERS[name].label,
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
        // Ratios of noise (tiny N can measure memory below zero) are not shown.
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

function statusText (row) {
  if (row.unsupported) return `not supported: ${firstLine(row.unsupported, 70)}`
  if (row.errors.length) return `${row.errors.length} error(s): ${firstLine(row.errors[0], 70)}`
  if (row.warnings.length) return firstLine(row.warnings.join('; '), 90)
  return ''
}

function firstLine (s, n) {
  const l = String(s).split('\n')[0]
  return l.length > n ? l.slice(0, n - 1) + '…' : l
}

/** Rows of cells for one table summary (shared by console and markdown). */
function tableCells (t, rounds) {
  const primary = t.metrics.find((m) => m.key === t.primary)
  const head = ['server', `${primary.label} (median)`, 'min..max', ...t.metrics.filter((m) => m.key !== t.primary).map((m) => m.label + (m.agg === 'min' ? ' (worst)' : m.agg === 'max' ? ' (worst)' : '')),
    ...PEERS.map((p) => p.column), 'rounds', 'notes']
  const rows = [head]
  for (const [name, r] of Object.entries(t.rows)) {
    const pm = r.metrics[t.primary]
    rows.push([
      r.label + (r.version ? ` ${r.version}` : ''),
      fmtValue(primary, pm.value),
      pm.min == null ? '-' : `${fmtValue(primary, pm.min)}..${fmtValue(primary, pm.max)}`,
      ...t.metrics.filter((m) => m.key !== t.primary).map((m) => fmtValue(m, r.metrics[m.key].value)),
      ...PEERS.map((p) => name === p.name ? '1x' : fmtRatio(r.ratios[p.name])),
      `${r.rounds}/${rounds}`,
      statusText(r)
    ])
  }
  return rows
}

function betterText (t) {
  const p = t.metrics.find((m) => m.key === t.primary)
  return `${p.label}: ${t.better === 'lower' ? 'lower' : 'higher'} is better; ratios = this server's ${p.label} / the peer's`
}

function formatConsoleTable (t, rounds) {
  const rows = tableCells(t, rounds)
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)))
  const line = (r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd()
  const out = [`== ${t.title} ==`]
  if (t.skipped) out.push(`skipped: ${t.skipped}`)
  out.push(line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '))
  for (const r of rows.slice(1)) out.push(line(r))
  out.push(betterText(t))
  out.push(t.note)
  return out.join('\n')
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
      const why = r.unsupported ? 'not supported' : r.errors.length ? 'error' : 'no data'
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

function evaluateGoals (tablesById) {
  return GOALS.map((g) => {
    const t = tablesById[g.table]
    const metric = g.metric || (t && t.primary)
    const row = t && t.rows[g.server]
    let measured = null
    let shown = '-'
    if (row && row.metrics[metric]) {
      const m = row.metrics[metric]
      const v = g.agg === 'min' ? m.min : g.agg === 'max' ? m.max : m.median
      if (g.peer) {
        const peer = t.rows[g.peer] && t.rows[g.peer].metrics[metric]
        const pv = peer ? (g.agg === 'min' ? peer.min : g.agg === 'max' ? peer.max : peer.median) : null
        if (v > 0 && pv > 0) { measured = v / pv; shown = fmtRatio(measured) }
      } else if (v != null) {
        measured = v
        shown = g.pct ? fmtValue({ pct: true }, v) : `${v.toFixed(g.unit === 'KB' ? 2 : 0)}${g.unit ? ' ' + g.unit : ''}`
      }
    }
    const ops = { '<=': (a, b) => a <= b, '>=': (a, b) => a >= b, '<': (a, b) => a < b }
    let status = measured == null ? 'no data' : ops[g.op](measured, g.target) ? 'met' : 'not met'
    if (g.minN && t && t.params && t.params.connections < g.minN && measured != null) status += ` (N=${t.params.connections}: harness check only)`
    return { goal: g.text, table: g.table, measured, shown, status }
  })
}

function mdTable (rows) {
  const esc = (c) => String(c).replace(/\|/g, '\\|')
  return [
    `| ${rows[0].map(esc).join(' | ')} |`,
    `| ${rows[0].map((_, i) => (i === 0 || i === rows[0].length - 1 ? '---' : '---:')).join(' | ')} |`,
    ...rows.slice(1).map((r) => `| ${r.map(esc).join(' | ')} |`)
  ].join('\n')
}

/** The markdown summary. `charts` maps table id -> SVG file name (relative). */
function markdown (result, charts) {
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
    out.push('## Goals (shared/docs/DESIGN.md)')
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
  out.push('Method and parameters: [benchmark/README.md](../README.md). Raw samples: the JSON file next to this one.')
  return out.join('\n') + '\n'
}

module.exports = { summarizeScenario, formatConsoleTable, svgChart, evaluateGoals, markdown, fmtValue, fmtRatio, GOALS, PEERS }
