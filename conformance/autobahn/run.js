#!/usr/bin/env node
'use strict'
// Autobahn|Testsuite (fuzzingclient, sections 1-10) against echo-server.js,
// driven by the PyPI runner `kosoku`, checked against expected.json.
//
//   node conformance/autobahn/run.js             run and compare (CI)
//   node conformance/autobahn/run.js --update    run and rewrite expected.json
//
// Options (all optional):
//   --impl SPEC        module to test (default: env AUTOBAHN_IMPL, else the repo root)
//   --cases 1.*,9.7.*  run only these case ids / globs (compares only those;
//                      with --update, merges them into expected.json)
//   --timeout SEC      overall bound for the whole run (default 600, env AUTOBAHN_TIMEOUT)
//   --parallelism N    cases kosoku runs at once (default 1)
//   --outdir DIR       kosoku's Autobahn-format reports (index.json, per-case
//                      JSON/HTML) and results.json (default: ./reports here)
//   --expected FILE    expected results file (default: ./expected.json here)
// Env KOSOKU: the kosoku executable (default: `kosoku` on PATH).
//
// A case passes when its behavior is OK, NON-STRICT or INFORMATIONAL and its
// closing behavior is OK or INFORMATIONAL (kosoku's own definition), or when
// it is UNIMPLEMENTED and expected.json says UNIMPLEMENTED. Everything else
// (FAILED, ERROR, a bad close: UNCLEAN / WRONG CODE / FAILED BY CLIENT, a case
// expected but not reported, the echo server dying) fails the run.
// Differences among passing verdicts (OK <-> NON-STRICT) are printed as notes.
// The last line is `autobahn: N passed, N failed`.

const fs = require('fs')
const net = require('net')
const path = require('path')
const { spawn } = require('child_process')

const HERE = __dirname
// Autobahn has no section 8; 11-13 are permessage-deflate, which we don't negotiate.
const SECTIONS = ['1', '2', '3', '4', '5', '6', '7', '9', '10']
const PASSING = new Set(['OK', 'NON-STRICT', 'INFORMATIONAL'])
const PASSING_CLOSE = new Set(['OK', 'INFORMATIONAL'])
const SERVER_START_MS = 30000
const KILL_GRACE_MS = 5000

function usage (msg) {
  if (msg) console.error(`run.js: ${msg}`)
  console.error('usage: node run.js [--update] [--impl SPEC] [--cases LIST] [--timeout SEC] ' +
    '[--parallelism N] [--outdir DIR] [--expected FILE]')
  process.exit(2)
}

function parseArgs (argv) {
  const o = {
    update: false,
    impl: process.env.AUTOBAHN_IMPL || '',
    cases: null,
    timeout: Number(process.env.AUTOBAHN_TIMEOUT || 600),
    parallelism: 1,
    outdir: path.join(HERE, 'reports'),
    expected: path.join(HERE, 'expected.json')
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`)
      return argv[++i]
    }
    switch (a) {
      case '--update': o.update = true; break
      case '--impl': o.impl = val(); break
      case '--cases': o.cases = val().split(',').map(s => s.trim()).filter(Boolean); break
      case '--timeout': o.timeout = Number(val()); break
      case '--parallelism': o.parallelism = Number(val()); break
      case '--outdir': o.outdir = path.resolve(val()); break
      case '--expected': o.expected = path.resolve(val()); break
      case '-h': case '--help': usage()
      // falls through (usage exits)
      default: usage(`unknown argument ${a}`)
    }
  }
  if (!(o.timeout > 0)) usage('--timeout must be a positive number of seconds')
  if (!Number.isInteger(o.parallelism) || o.parallelism < 1) usage('--parallelism must be >= 1')
  if (o.cases && o.cases.length === 0) usage('--cases is empty')
  return o
}

function caseKey (id) {
  return id.split('.').map(Number)
}

function compareIds (a, b) {
  const x = caseKey(a)
  const y = caseKey(b)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? -1) - (y[i] ?? -1)
    if (d) return d
  }
  return 0
}

// Same matching rule as the globs handed to kosoku: `*` is any run of characters.
function globMatch (glob, id) {
  const re = new RegExp('^' + glob.split('*').map(s => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$')
  return re.test(id)
}

// Compact verdict for one case: the behavior, plus the closing behavior when
// that one is not acceptable, e.g. "OK", "NON-STRICT", "OK / close UNCLEAN".
function verdictOf (entry) {
  const b = entry.behavior
  const c = entry.behaviorClose
  return PASSING_CLOSE.has(c) ? b : `${b} / close ${c}`
}

function passes (verdict, expectedVerdict) {
  if (PASSING.has(verdict)) return true
  return verdict === 'UNIMPLEMENTED' && expectedVerdict === 'UNIMPLEMENTED'
}

function freePort () {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

// Children we started; only these are ever signalled, by PID.
const children = new Set()

function killChild (child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  try { process.kill(child.pid, 'SIGTERM') } catch (_) { return }
  const t = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) {
      try { process.kill(child.pid, 'SIGKILL') } catch (_) {}
    }
  }, KILL_GRACE_MS)
  t.unref()
}

function killAll () {
  for (const c of children) killChild(c)
}

function track (child) {
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

// Start echo-server.js on `port`; resolve with { child, port } once it prints
// `listening <port>`, reject if it exits or stays silent.
function startServer (impl, port) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env }
    if (impl) env.AUTOBAHN_IMPL = impl
    else delete env.AUTOBAHN_IMPL
    const child = track(spawn(process.execPath, [path.join(HERE, 'echo-server.js'), String(port)], {
      cwd: HERE,
      env,
      stdio: ['ignore', 'pipe', 'inherit']
    }))
    let buf = ''
    let done = false
    const timer = setTimeout(() => {
      if (done) return
      done = true
      killChild(child)
      reject(new Error(`echo server did not report listening within ${SERVER_START_MS / 1000}s`))
    }, SERVER_START_MS)
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk) => {
      if (done) { process.stderr.write(chunk); return }
      buf += chunk
      const m = /^listening (\d+)\s*$/m.exec(buf)
      if (m) {
        done = true
        clearTimeout(timer)
        resolve({ child, port: Number(m[1]) })
      }
    })
    child.on('exit', (code, signal) => {
      if (done) return
      done = true
      clearTimeout(timer)
      reject(new Error(`echo server exited (${signal || 'code ' + code}) before listening` +
        (buf ? `; stdout: ${buf.trim()}` : '')))
    })
    child.on('error', (err) => {
      if (done) return
      done = true
      clearTimeout(timer)
      reject(err)
    })
  })
}

function runKosoku (args) {
  return new Promise((resolve, reject) => {
    const cmd = process.env.KOSOKU || 'kosoku'
    const child = track(spawn(cmd, args, { cwd: HERE, stdio: ['ignore', 'pipe', 'pipe'] }))
    let out = ''
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { out += d })
    child.on('error', (err) => {
      if (err.code === 'ENOENT') {
        reject(new Error(`'${cmd}' not found: pip install kosoku (or set KOSOKU to its path)`))
      } else reject(err)
    })
    child.on('exit', (code, signal) => resolve({ code, signal, out, child }))
  })
}

function prepareOutdir (dir) {
  const isDefault = dir === path.join(HERE, 'reports')
  if (fs.existsSync(dir)) {
    if (isDefault) fs.rmSync(dir, { recursive: true, force: true })
    else if (fs.readdirSync(dir).length) throw new Error(`--outdir ${dir} is not empty`)
  }
  fs.mkdirSync(dir, { recursive: true })
}

function writeJson (file, obj) {
  const ids = Object.keys(obj).sort(compareIds)
  const lines = ids.map((id) => `  ${JSON.stringify(id)}: ${JSON.stringify(obj[id])}`)
  fs.writeFileSync(file, '{\n' + lines.join(',\n') + '\n}\n')
}

async function main () {
  const o = parseArgs(process.argv.slice(2))
  const started = Date.now()
  const selection = o.cases || SECTIONS.map((s) => `${s}.*`)

  let expected = {}
  if (fs.existsSync(o.expected)) {
    expected = JSON.parse(fs.readFileSync(o.expected, 'utf8'))
  } else if (!o.update) {
    throw new Error(`${o.expected} missing (create it with --update)`)
  }

  prepareOutdir(o.outdir)

  let deadlineHit = false
  const deadline = setTimeout(() => {
    deadlineHit = true
    console.error(`run.js: overall time bound of ${o.timeout}s reached; stopping`)
    killAll()
  }, o.timeout * 1000)
  deadline.unref()

  // Pick a free loopback port and hand it to the server; retry if another
  // process grabbed it in between.
  let server
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    try {
      server = await startServer(o.impl, port)
      break
    } catch (err) {
      if (attempt >= 3 || deadlineHit) throw err
      console.error(`run.js: ${err.message}; retrying`)
    }
  }
  let serverDied = null
  server.child.on('exit', (code, signal) => { serverDied = signal || `code ${code}` })
  const implName = o.impl || 'ferrosocket (repo root)'
  console.log(`autobahn: echo server (${implName}) pid ${server.child.pid} on 127.0.0.1:${server.port}`)

  const args = []
  for (const c of selection) args.push('-i', c)
  args.push('-p', String(o.parallelism), '-o', o.outdir, `ws://127.0.0.1:${server.port}`)
  const k = await runKosoku(args)
  const serverAliveAtEnd = serverDied === null
  killChild(server.child)
  clearTimeout(deadline)
  const secs = ((Date.now() - started) / 1000).toFixed(1)

  const indexFile = path.join(o.outdir, 'index.json')
  if (deadlineHit || !fs.existsSync(indexFile)) {
    process.stderr.write(k.out.slice(-4000))
    throw new Error(deadlineHit
      ? `timed out after ${o.timeout}s`
      : `kosoku exited (${k.signal || 'code ' + k.code}) without writing ${indexFile}`)
  }

  // index.json: { agent: { caseId: { behavior, behaviorClose, ... } } }.
  // The agent is the server's `Server` header, else host:port; one per run.
  const index = JSON.parse(fs.readFileSync(indexFile, 'utf8'))
  const actual = {}
  const reportFile = {}
  for (const agent of Object.keys(index)) {
    for (const [id, entry] of Object.entries(index[agent])) {
      actual[id] = verdictOf(entry)
      if (entry.reportfile) reportFile[id] = entry.reportfile.replace(/\.json$/, '.html')
    }
  }
  writeJson(path.join(o.outdir, 'results.json'), actual)

  const inScope = (id) => selection.some((g) => globMatch(g, id))
  const ids = new Set(Object.keys(actual))
  for (const id of Object.keys(expected)) if (inScope(id)) ids.add(id)

  let passed = 0
  const failures = []
  const notes = []
  const newCases = []
  for (const id of [...ids].sort(compareIds)) {
    const got = actual[id]
    const want = expected[id]
    if (got === undefined) {
      failures.push(`${id}: not reported (expected ${want})`)
      continue
    }
    if (passes(got, want)) {
      passed++
      if (want === undefined) newCases.push(id)
      else if (got !== want) notes.push(`${id}: ${want} -> ${got}`)
    } else {
      failures.push(`${id}: ${got}` + (want !== undefined && want !== got ? ` (expected ${want})` : '') +
        (reportFile[id] ? ` -- ${path.relative(process.cwd(), path.join(o.outdir, reportFile[id]))}` : ''))
    }
  }
  if (!serverAliveAtEnd) failures.push(`echo server exited during the run (${serverDied})`)

  if (o.update) {
    const merged = o.cases ? { ...expected, ...actual } : actual
    writeJson(o.expected, merged)
    console.log(`autobahn: wrote ${Object.keys(merged).length} cases to ${path.relative(process.cwd(), o.expected) || o.expected}`)
  }

  if (newCases.length && !o.update) {
    console.log(`autobahn: note ${newCases.length} passing case(s) not in expected.json: ${newCases.join(' ')}`)
  }
  for (const n of notes) console.log(`autobahn: note ${n}`)
  for (const f of failures) console.log(`autobahn: FAIL ${f}`)
  const counts = {}
  for (const v of Object.values(actual)) counts[v] = (counts[v] || 0) + 1
  console.log(`autobahn: ${Object.keys(actual).length} cases in ${secs}s: ` +
    Object.entries(counts).map(([v, n]) => `${v} ${n}`).join(', ') +
    `; reports in ${path.relative(process.cwd(), o.outdir) || o.outdir}`)
  if ((notes.length || newCases.length) && !o.update) {
    console.log('autobahn: (notes do not fail the run; OK and NON-STRICT can swap with timing)')
  }
  console.log(`autobahn: ${passed} passed, ${failures.length} failed`)
  return failures.length ? 1 : 0
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll()
    process.exit(130)
  })
}

main().then((code) => {
  process.exitCode = code
}, (err) => {
  killAll()
  console.error(`run.js: ${err.message}`)
  console.log('autobahn: 0 passed, 1 failed')
  process.exitCode = 1
})
