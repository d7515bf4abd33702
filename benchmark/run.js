#!/usr/bin/env node
'use strict'
// Benchmark orchestrator (`npm run bench`): ferrosocket (core API and
// Socket.IO API) side by side with socket.io, ws and uWebSockets.js, each
// server in its own process, loaded by the Rust load generator
// (benchmark/loadgen). See benchmark/README.md for the method.
//
//   node benchmark/run.js [--scenario memory,broadcast,echo,connect,tls,heartbeat]
//        [--servers ferrosocket-core,ferrosocket-sio,socketio,ws,uws] [--rounds R]
//        [--connections N] [--set [scenario.]param=value ...] [--quick]
//        [--out DIR] [--no-write] [--latest] [--verbose] [--no-build]
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')
const H = require('./harness')
const R = require('./report')
const { Progress, clock } = require('./progress')

const SCENARIOS = [
  require('./scenarios/memory'),
  require('./scenarios/broadcast'),
  require('./scenarios/echo'),
  require('./scenarios/connect'),
  require('./scenarios/tls'),
  require('./scenarios/heartbeat'),
  require('./scenarios/cluster'),
  require('./scenarios/crossnode'),
  require('./scenarios/http'),
  require('./scenarios/memory-deflate'),
  require('./scenarios/broadcast-deflate')
]
const SCENARIO_ALIASES = { 'tls-memory': 'tls', ticker: 'tls', idle: 'memory', storm: 'connect', fanout: 'broadcast' }
const DEFAULT_SERVERS = ['ferrosocket-core', 'ferrosocket-sio', 'ferrosocket-sio-attached', 'socketio', 'ws', 'uws']
const DEFAULT_ROUNDS = 3

const USAGE = `usage: node benchmark/run.js [options]        (npm run bench -- [options])
  --scenario LIST     ${SCENARIOS.map((s) => s.name).join(',')} (default: all)
  --servers LIST      ${Object.keys(H.SERVERS).join(',')} (default: all)
  --rounds R          rounds per scenario, servers interleaved in each (default ${DEFAULT_ROUNDS})
  --connections N     N for every selected scenario (<= ${H.MAX_PER_SERVER})
  --set K=V           a scenario parameter, for all scenarios that have it or
                      one: --set broadcast.messages=200 --set duration=5
  --quick             harness smoke test: small N, one round, short durations
                      (results go to benchmark/results/tmp/ unless --out)
  --out DIR           results directory (default benchmark/results)
  --no-write          print tables only
  --latest            also overwrite results/latest.md after a partial run
  --verbose           server and loadgen stderr on stderr
  --no-build          use the built loadgen as is (default: cargo build first)
defaults (per server, per round):
${SCENARIOS.map((s) => `  ${s.name.padEnd(10)} ${s.describe(s.params)}`).join('\n')}
--quick:
${SCENARIOS.map((s) => `  ${s.name.padEnd(10)} ${s.describe({ ...s.params, ...s.quickParams })}`).join('\n')}`

function parseCli (argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string', multiple: true },
      scenarios: { type: 'string', multiple: true },
      servers: { type: 'string', multiple: true },
      rounds: { type: 'string' },
      connections: { type: 'string' },
      set: { type: 'string', multiple: true },
      quick: { type: 'boolean' },
      out: { type: 'string' },
      'no-write': { type: 'boolean' },
      latest: { type: 'boolean' },
      verbose: { type: 'boolean' },
      'no-build': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    },
    strict: true
  })
  const list = (xs) => (xs || []).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean)
  const num = (name, v) => {
    if (v === undefined) return undefined
    const n = Number(v)
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: not a positive number: ${v}`)
    return n
  }
  const scenarioNames = list([...(values.scenario || []), ...(values.scenarios || [])]).map((s) => SCENARIO_ALIASES[s] || s)
  for (const s of scenarioNames) {
    if (!SCENARIOS.some((x) => x.name === s)) throw new Error(`unknown scenario '${s}' (known: ${SCENARIOS.map((x) => x.name).join(', ')})`)
  }
  const sets = (values.set || []).map((kv) => {
    const m = /^(?:([a-z-]+)\.)?([a-zA-Z]+)=(.+)$/.exec(kv)
    if (!m) throw new Error(`--set ${kv}: expected [scenario.]param=value`)
    const scenario = m[1] ? (SCENARIO_ALIASES[m[1]] || m[1]) : null
    const value = Number.isFinite(Number(m[3])) ? Number(m[3]) : m[3]
    return { scenario, key: m[2], value }
  })
  return {
    help: !!values.help,
    quick: !!values.quick,
    scenarios: scenarioNames.length ? [...new Set(scenarioNames)] : SCENARIOS.map((s) => s.name),
    servers: [...new Set(list(values.servers).map(H.resolveServerName))],
    rounds: num('rounds', values.rounds),
    connections: num('connections', values.connections),
    sets,
    out: values.out ? path.resolve(values.out) : null,
    write: !values['no-write'],
    latest: !!values.latest,
    verbose: !!values.verbose,
    build: !values['no-build']
  }
}

/** Parameters of one scenario: defaults < --quick < --connections < --set. */
function scenarioParams (sc, cli) {
  const p = structuredClone(sc.params)
  if (cli.quick) Object.assign(p, structuredClone(sc.quickParams))
  if (cli.connections) p.connections = cli.connections
  for (const s of cli.sets) {
    if (s.scenario && s.scenario !== sc.name) continue
    if (!(s.key in p)) {
      if (s.scenario) throw new Error(`--set ${s.scenario}.${s.key}: ${sc.name} has no parameter '${s.key}' (has: ${Object.keys(p).join(', ')})`)
      continue
    }
    p[s.key] = s.value
  }
  if (sc.finalize) sc.finalize(p)
  if (!(p.connections > 0)) throw new Error(`${sc.name}: connections must be positive`)
  // Spread over `processes` server processes where the scenario has them.
  const perProcess = p.connections / (p.processes || 1)
  if (perProcess > H.MAX_PER_SERVER) {
    throw new Error(`${sc.name}: ${Math.ceil(perProcess)} connections per server process; one holds at most ~19.5k sockets here (open-file limit 20000): use <= ${H.MAX_PER_SERVER}` +
      (p.processes ? ' per process (more processes, or fewer connections)' : ''))
  }
  return p
}

const insideRepo = (p) => {
  const rel = path.relative(H.ROOT, p)
  return !rel.startsWith('..') && !path.isAbsolute(rel)
}

/** A path as the report shows it: relative to the repository root when inside it. */
const shownPath = (p) => insideRepo(p) ? path.relative(H.ROOT, p) : p

function stampOf (date) {
  return date.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')
}

async function main (argv = process.argv.slice(2)) {
  let cli
  try {
    cli = parseCli(argv)
  } catch (err) {
    console.error(`${err.message}\n\n${USAGE}`)
    return 2
  }
  if (cli.help) {
    console.log(USAGE)
    return 0
  }
  const servers = cli.servers.length ? cli.servers : DEFAULT_SERVERS
  const rounds = cli.rounds || (cli.quick ? 1 : DEFAULT_ROUNDS)
  const selected = SCENARIOS.filter((s) => cli.scenarios.includes(s.name))
  let plans
  try {
    plans = selected.map((sc) => ({ sc, params: scenarioParams(sc, cli) }))
  } catch (err) {
    console.error(err.message)
    return 2
  }

  const started = new Date()
  const loadavgBefore = os.loadavg()
  const progress0 = (m) => process.stderr.write(m + '\n')
  let lg
  try {
    lg = H.ensureLoadgen(progress0, { build: cli.build })
  } catch (err) {
    console.error(`bench: ${err.message}`)
    return 1
  }

  // Weights: estimated seconds per (scenario, round, server) for the bar and ETA.
  const weightOf = (plan) => Math.max(1, plan.sc.estimateSecs(plan.params, servers.length) + 1.5)
  const totalWeight = plans.reduce((a, p) => a + weightOf(p) * rounds * servers.length, 0)
  const progress = new Progress(totalWeight)
  const log = (m) => progress.log(m)
  // Tables go to stdout once, as each scenario ends; progress and per-round
  // lines to stderr. On a terminal that is one stream of text with each
  // table in it once; `> file` gets the report alone.
  const print = (m) => progress.log(m, process.stdout)
  log(R.wrap(`bench: ${plans.map((p) => p.sc.name).join(', ')} x ${rounds} round(s); servers: ${servers.join(', ')}; ` +
    `estimated ${clock(totalWeight)}${cli.quick ? ' (--quick)' : ''}`, R.WIDTH, '  '))
  if (loadavgBefore[0] > os.cpus().length * 0.25) {
    log(`note: load average ${loadavgBefore[0].toFixed(2)} before the run; compare ratios and CPU per operation, not absolute rates`)
  }

  const children = new H.Children()
  let cert = null
  const cleanup = () => {
    children.killAll()
    if (cert) { try { cert.cleanup() } catch {} }
  }
  const onSignal = (sig) => {
    progress.close()
    cleanup()
    process.stderr.write(`bench: ${sig}, stopped; children killed\n`)
    process.exit(130)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('exit', cleanup)

  const result = {
    version: 1,
    started: started.toISOString(),
    finished: null,
    durationSecs: null,
    quick: cli.quick,
    argv,
    rounds,
    servers,
    machine: H.machineInfo(),
    loadavgBefore,
    loadavgAfter: null,
    versions: H.versions(lg),
    scenarios: {},
    goals: []
  }
  print(R.formatLegend(servers, H.serverVersion))
  const skipServer = new Map() // server -> reason, for servers that refuse to start at all
  let errorCount = 0

  try {
    if (plans.some((p) => p.sc.needsCert)) cert = H.makeCert()
    for (const { sc, params } of plans) {
      const run = { params, description: sc.describe(params), samples: [], errors: [], unsupported: {}, skipped: null }
      result.scenarios[sc.name] = run
      const missing = sc.loadgenModes.filter((m) => !lg.modes.has(m))
      if (missing.length) run.skipped = `the load generator has no '${missing.join("', '")}' mode yet (benchmark/loadgen)`
      if (run.skipped) {
        log(`${sc.name}: skipped: ${run.skipped}`)
        errorCount++
        progress.doneWeight += weightOf({ sc, params }) * rounds * servers.length
        // Empty tables all the same, so every server shows.
        run.tables = R.summarizeScenario(sc, run, servers)
        for (const t of run.tables) print('\n' + R.formatConsoleTable(t, rounds))
        continue
      }
      // Servers the harness cannot drive yet: an error, reported once.
      const unavailable = new Map()
      if (!lg.flags.has('--protocol')) {
        for (const s of servers) {
          if (H.SERVERS[s].protocol === 'sio') unavailable.set(s, 'the load generator does not speak Socket.IO yet (no --protocol flag)')
        }
      }
      for (const [s, why] of unavailable) {
        errorCount++
        run.errors.push({ server: s, round: 0, error: why })
        log(`${sc.name} ${s}: skipped: ${why}`)
      }
      log(`${sc.name}: ${run.description}`)
      const w = weightOf({ sc, params })
      const ctxFor = () => ({
        params,
        lg,
        children,
        cert,
        verbose: cli.verbose,
        detail: (text, fraction, secs) => progress.detail(text, fraction, secs),
        connectProgress: (label, n) => {
          progress.detail(`${label} 0/${n}`)
          return (line) => {
            const c = H.progressField(line, 'connected')
            if (c != null) progress.detail(`${label} ${c}/${n}`)
          }
        }
      })
      const record = (name, round, out) => {
        if (out.error) {
          const err = out.error
          const msg = err && err.message ? err.message : String(err)
          if (err.unsupported) {
            run.unsupported[name] = msg
            run.errors.push({ server: name, round: round + 1, error: msg, unsupported: true })
            log(`  ${sc.name} r${round + 1} ${name}: not supported: ${msg.split('\n')[0]}`)
          } else {
            errorCount++
            run.errors.push({ server: name, round: round + 1, error: msg })
            log(`  ${sc.name} r${round + 1} ${name}: ERROR ${msg.split('\n').slice(0, 3).join(' | ')}`)
            if (err.fatal) skipServer.set(name, msg)
          }
          return
        }
        const s = { server: name, round: round + 1, ...out.sample }
        run.samples.push(s)
        const headline = sc.tables.map((t) => {
          const def = t.metrics.find((m) => m.key === t.primary)
          return `${def.label} ${R.fmtSample(def, s)}`
        }).join(', ')
        log(`  ${sc.name} r${round + 1} ${name}: ${headline}${s.warnings.length ? ' (' + s.warnings.join('; ') + ')' : ''}`)
      }
      const runnable = (name) => !skipServer.has(name) && !run.unsupported[name] && !unavailable.has(name)
      for (let round = 0; round < rounds; round++) {
        if (sc.concurrent) {
          const names = servers.filter(runnable)
          progress.begin(`${sc.name} r${round + 1}/${rounds} (${names.length} servers side by side)`, w * servers.length)
          let outs
          const t0 = Date.now()
          try {
            outs = await sc.measureRound(ctxFor(), names, round)
          } catch (err) {
            outs = Object.fromEntries(names.map((n) => [n, { error: err }]))
          }
          for (const name of names) {
            if (outs[name] && outs[name].sample) outs[name].sample.secs = (Date.now() - t0) / 1000
            record(name, round, outs[name] || { error: new Error('no result') })
          }
          progress.end()
          continue
        }
        for (const name of servers) {
          progress.begin(`${sc.name} r${round + 1}/${rounds} ${name}`, w)
          if (runnable(name)) {
            let out
            const t0 = Date.now()
            try {
              out = { sample: await sc.measure(ctxFor(), name, round) }
              out.sample.secs = (Date.now() - t0) / 1000
            } catch (err) {
              out = { error: err }
            }
            record(name, round, out)
          }
          progress.end()
        }
      }
      run.tables = R.summarizeScenario(sc, run, servers)
      for (const t of run.tables) print('\n' + R.formatConsoleTable(t, rounds))
    }
  } finally {
    progress.close()
    cleanup()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    process.off('exit', cleanup)
  }

  const finished = new Date()
  result.finished = finished.toISOString()
  result.durationSecs = (finished - started) / 1000
  result.loadavgAfter = os.loadavg()
  const tablesById = {}
  for (const run of Object.values(result.scenarios)) for (const t of run.tables) tablesById[t.id] = t
  result.goals = R.evaluateGoals(tablesById)

  // The tables are out already; the goals and where the files went close the report.
  const out = ['']
  if (result.goals.length) out.push(R.formatGoals(result.goals), '')
  out.push(`${errorCount} error(s); took ${clock(result.durationSecs)}; load average before ${loadavgBefore[0].toFixed(2)}, after ${result.loadavgAfter[0].toFixed(2)}`)

  if (cli.write) {
    const dir = cli.out || (cli.quick ? path.join(H.RESULTS_DIR, 'tmp') : H.RESULTS_DIR)
    fs.mkdirSync(dir, { recursive: true })
    const stamp = stampOf(started)
    const charts = {}
    const subtitle = `ferrosocket ${result.versions.ferrosocket}, ${result.started.slice(0, 10)}, ${result.machine.cpus} x ${result.machine.cpuModel}, Node ${process.version}, ${rounds} round(s)`
    for (const run of Object.values(result.scenarios)) {
      for (const t of run.tables) {
        const file = `${stamp}-${t.id}.svg`
        fs.writeFileSync(path.join(dir, file), R.svgChart(t, subtitle))
        charts[t.id] = file
      }
    }
    result.files = { json: `${stamp}.json`, markdown: `${stamp}.md`, charts }
    fs.writeFileSync(path.join(dir, `${stamp}.json`), JSON.stringify(result, null, 2) + '\n')
    const md = R.markdown(result, charts, insideRepo(dir) ? path.relative(dir, path.join(H.BENCH_DIR, 'README.md')) : null)
    fs.writeFileSync(path.join(dir, `${stamp}.md`), md)
    const full = !cli.quick && plans.length === SCENARIOS.length
    if (full || cli.latest) fs.writeFileSync(path.join(dir, 'latest.md'), md)
    out.push(R.wrap(`results: ${shownPath(path.join(dir, stamp))}.{json,md} and ${Object.keys(charts).length} SVG chart(s)` +
      (full || cli.latest ? `; ${shownPath(path.join(dir, 'latest.md'))} updated` : ' (latest.md untouched: partial or quick run; --latest to force)'), R.WIDTH, '  '))
  }
  console.log(out.join('\n'))
  return errorCount ? 1 : 0
}

module.exports = { main, parseCli, SCENARIOS, USAGE }

if (require.main === module) {
  main().then((code) => { process.exitCode = code }, (err) => {
    console.error(`bench: ${err.stack || err}`)
    process.exitCode = 1
  })
}
