#!/usr/bin/env node
'use strict'
// Autobahn|Testsuite (fuzzingclient, sections 1-10, 12 and 13) against echo-server.js,
// driven by the PyPI runner `kosoku`, checked against expected.json.
//
//   node conformance/autobahn/run.js             run and compare (CI)
//   node conformance/autobahn/run.js --update    run and rewrite expected.json
//
// Options (all optional):
//   --impl SPEC          module to test (default: env AUTOBAHN_IMPL, else the repo root)
//   --cases 1.*,9.7.*    run only these case ids / globs (compares only those;
//                        with --update, merges them into expected.json)
//   --timeout SEC        bound for the whole run (default 1500, env AUTOBAHN_TIMEOUT)
//   --section-timeout SEC  bound for one section (default 180)
//   --case-timeout SEC   bound for one case when a timed-out section is re-run
//                        case by case to find the hanging cases (default 30)
//   --parallelism N      cases kosoku runs at once (default 1; 2 for 12 and 13)
//   --deflate-sizes small|all  12.x/13.x message sizes: up to 16 KiB (default,
//                        for npm test) or all 18 (env AUTOBAHN_FULL=1)
//   --outdir DIR         kosoku's Autobahn-format reports, one folder per section
//                        (index.json, per-case JSON/HTML), and results.json
//                        (default: ./reports here)
//   --expected FILE      expected results file (default: ./expected.json here)
// Env KOSOKU: the kosoku executable (default: the project's .venv, made on first use).
//
// kosoku itself has no per-case time limit (a server that accepts TCP but never
// answers hangs it forever), so each section runs as its own kosoku process
// under a time bound; a section that overruns is re-run one case at a time to
// name the hanging cases (verdict TIMEOUT).
//
// A case passes when its behavior is OK, NON-STRICT or INFORMATIONAL and its
// closing behavior is OK or INFORMATIONAL (kosoku's own definition), or when
// it is UNIMPLEMENTED and expected.json says UNIMPLEMENTED. Everything else
// (FAILED, ERROR, TIMEOUT, a bad close: UNCLEAN / WRONG CODE / FAILED BY
// CLIENT, a case expected but not reported, the echo server dying) fails the
// run. Differences among passing verdicts (OK <-> NON-STRICT) are only noted.
// The last line is `autobahn: N passed, N failed`.

const crypto = require('crypto')
const fs = require('fs')
const net = require('net')
const path = require('path')
const { spawn } = require('child_process')

const HERE = __dirname
const DEFAULT_OUTDIR = path.join(HERE, 'reports')
// Autobahn has no section 8 (nor 11). 12 and 13 are permessage-deflate: 12
// on the echo server's shared compressor, 13 (every offer combination) on
// its dedicated ones; they run two cases at a time, each with a longer bound.
const SECTIONS = ['1', '2', '3', '4', '5', '6', '7', '9', '10', '12', '13']
const SECTION_PATH = { 12: '/shared', 13: '/dedicated' }
const SECTION_PARALLELISM = { 12: 2, 13: 2 }
const SECTION_TIMEOUT = { 12: 420, 13: 540 }
// Each of 12.x and 13.x runs 18 message sizes; sizes 1-7 (16 B to 16 KiB)
// and 11-12 (8 and 16 KiB in 256-byte fragments) take a tenth of the time
// of the rest (32 KiB to 128 KiB, 1000 messages each). `npm test` runs
// those (--deflate-sizes small, the default); --deflate-sizes all (or
// AUTOBAHN_FULL=1) every case, as recorded in expected.json.
const SMALL_SIZES = ['1', '2', '3', '4', '5', '6', '7', '11', '12']
// Exact ids (kosoku's `*` also matches more digits: 12.*.1 takes 12.2.10):
// 12 has 5 data sets, 13 has 7 offer combinations.
const GROUPS_OF = { 12: 5, 13: 7 }
function smallCases (section) {
  const ids = []
  for (let g = 1; g <= GROUPS_OF[section]; g++) for (const n of SMALL_SIZES) ids.push(`${section}.${g}.${n}`)
  return ids
}
const PASSING = new Set(['OK', 'NON-STRICT', 'INFORMATIONAL'])
const PASSING_CLOSE = new Set(['OK', 'INFORMATIONAL'])
const SERVER_START_MS = 30000
const PROBE_MS = 5000
const KILL_GRACE_MS = 3000
const MAX_HUNG_PER_SECTION = 3

function usage (msg) {
  if (msg) console.error(`run.js: ${msg}`)
  console.error('usage: node run.js [--update] [--impl SPEC] [--cases LIST] [--timeout SEC] ' +
    '[--section-timeout SEC] [--case-timeout SEC] [--parallelism N] [--outdir DIR] [--expected FILE]')
  process.exit(2)
}

function parseArgs (argv) {
  const o = {
    update: false,
    impl: process.env.AUTOBAHN_IMPL || '',
    cases: null,
    timeout: Number(process.env.AUTOBAHN_TIMEOUT || 1500),
    sectionTimeout: 180,
    caseTimeout: 30,
    parallelism: 1,
    deflateSizes: process.env.AUTOBAHN_FULL === '1' ? 'all' : 'small',
    outdir: DEFAULT_OUTDIR,
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
      case '--deflate-sizes': o.deflateSizes = val(); break
      case '--timeout': o.timeout = Number(val()); break
      case '--section-timeout': o.sectionTimeout = Number(val()); break
      case '--case-timeout': o.caseTimeout = Number(val()); break
      case '--parallelism': o.parallelism = Number(val()); break
      case '--outdir': o.outdir = path.resolve(val()); break
      case '--expected': o.expected = path.resolve(val()); break
      case '-h': case '--help': usage(); break
      default: usage(`unknown argument ${a}`)
    }
  }
  for (const k of ['timeout', 'sectionTimeout', 'caseTimeout']) {
    if (!(o[k] > 0)) usage(`--${k.replace(/[A-Z]/g, c => '-' + c.toLowerCase())} must be > 0 seconds`)
  }
  if (!Number.isInteger(o.parallelism) || o.parallelism < 1) usage('--parallelism must be >= 1')
  if (o.cases && o.cases.length === 0) usage('--cases is empty')
  if (!['small', 'all'].includes(o.deflateSizes)) usage('--deflate-sizes is small or all')
  return o
}

function compareIds (a, b) {
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? -1) - (y[i] ?? -1)
    if (d) return d
  }
  return 0
}

// Same rule as kosoku's globs: `*` is any run of characters.
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

// Children we started; only these are ever signalled, and only by PID.
const children = new Set()

function alive (child) {
  return child.exitCode === null && child.signalCode === null
}

function killChild (child) {
  if (!child || !alive(child)) return Promise.resolve()
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      if (alive(child)) { try { process.kill(child.pid, 'SIGKILL') } catch (_) {} }
    }, KILL_GRACE_MS)
    child.once('exit', () => { clearTimeout(t); resolve() })
    try { process.kill(child.pid, 'SIGTERM') } catch (_) { clearTimeout(t); resolve() }
  })
}

function killAll () {
  return Promise.all([...children].map(killChild))
}

function track (child) {
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

// Start echo-server.js on `port`; resolve with { child, port } once it prints
// `listening <port>`, reject if it exits first or stays silent.
function startServer (impl, port) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env }
    if (impl) env.AUTOBAHN_IMPL = impl
    else delete env.AUTOBAHN_IMPL
    const child = track(spawn(process.execPath, [path.join(HERE, 'echo-server.js'), String(port)], {
      cwd: HERE, env, stdio: ['ignore', 'pipe', 'inherit']
    }))
    let buf = ''
    let done = false
    const finish = (err, value) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (err) { killChild(child); reject(err) } else resolve(value)
    }
    const timer = setTimeout(() => finish(new Error(
      `echo server did not print 'listening <port>' within ${SERVER_START_MS / 1000}s`)), SERVER_START_MS)
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk) => {
      if (done) { process.stderr.write(chunk); return }
      buf += chunk
      const m = /^listening (\d+)\s*$/m.exec(buf)
      if (m) finish(null, { child, port: Number(m[1]) })
    })
    child.on('exit', (code, signal) => finish(new Error(
      `echo server exited (${signal || 'code ' + code}) before listening` + (buf ? `; stdout: ${buf.trim()}` : ''))))
    child.on('error', (err) => finish(err))
  })
}

// One WebSocket opening handshake, to tell "server wedged" from "one case hangs".
function probe (port) {
  return new Promise((resolve) => {
    const key = crypto.randomBytes(16).toString('base64')
    const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
    const sock = net.connect(port, '127.0.0.1')
    let buf = ''
    const done = (err) => { clearTimeout(t); sock.destroy(); resolve(err) }
    const t = setTimeout(() => done(`no handshake response within ${PROBE_MS / 1000}s`), PROBE_MS)
    sock.on('error', (e) => done(e.message))
    sock.on('connect', () => sock.write(
      'GET / HTTP/1.1\r\nHost: 127.0.0.1:' + port + '\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`))
    sock.setEncoding('latin1')
    sock.on('data', (d) => {
      buf += d
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = buf.slice(0, end)
      if (!/^HTTP\/1\.1 101/.test(head)) done(`handshake answered: ${head.split('\r\n')[0]}`)
      else if (!new RegExp(`^sec-websocket-accept:\\s*${accept.replace(/[+/=]/g, '\\$&')}\\s*$`, 'im').test(head)) {
        done('handshake answered 101 with a wrong or missing Sec-WebSocket-Accept')
      } else done(null)
    })
    sock.on('close', () => done('connection closed during the handshake'))
  })
}

// How to start kosoku: $KOSOKU, else the project-local venv that
// scripts/test-tools.js provisions (created on first use, then reused).
let kosokuCommand = null
function findKosoku () {
  if (process.env.KOSOKU) return [process.env.KOSOKU, []]
  return [require('../../scripts/test-tools.js').provision(), []]
}

// Run kosoku on `globs` into `outdir`, killed after `seconds`. Resolves with
// { timedOut, index (parsed index.json or null), out (its output) }.
function runKosoku (globs, outdir, port, parallelism, seconds, urlPath = '/') {
  fs.mkdirSync(outdir, { recursive: true })
  const args = []
  for (const g of globs) args.push('-i', g)
  args.push('-p', String(parallelism), '-o', outdir, `ws://127.0.0.1:${port}${urlPath}`)
  return new Promise((resolve, reject) => {
    const [cmd, pre] = kosokuCommand
    const child = track(spawn(cmd, [...pre, ...args], { cwd: HERE, stdio: ['ignore', 'pipe', 'pipe'] }))
    let out = ''
    let timedOut = false
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { out += d })
    const timer = setTimeout(() => { timedOut = true; killChild(child) }, seconds * 1000)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err.code === 'ENOENT' ? new Error(`'${cmd}' not found (set KOSOKU to kosoku's path)`) : err)
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      const file = path.join(outdir, 'index.json')
      const index = !timedOut && fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : null
      resolve({ timedOut, index, out, code, signal })
    })
  })
}

function prepareOutdir (dir) {
  if (fs.existsSync(dir)) {
    if (dir === DEFAULT_OUTDIR) fs.rmSync(dir, { recursive: true, force: true })
    else if (fs.readdirSync(dir).length) throw new Error(`--outdir ${dir} is not empty`)
  }
  fs.mkdirSync(dir, { recursive: true })
}

function writeJson (file, obj) {
  const ids = Object.keys(obj).sort(compareIds)
  const lines = ids.map((id) => `  ${JSON.stringify(id)}: ${JSON.stringify(obj[id])}`)
  fs.writeFileSync(file, '{\n' + lines.join(',\n') + '\n}\n')
}

function rel (p) {
  const r = path.relative(process.cwd(), p)
  return r && !r.startsWith('..') ? r : p
}

async function main () {
  const o = parseArgs(process.argv.slice(2))
  const started = Date.now()
  const left = () => o.timeout - (Date.now() - started) / 1000

  let expected = {}
  if (fs.existsSync(o.expected)) {
    expected = JSON.parse(fs.readFileSync(o.expected, 'utf8'))
  } else if (!o.update) {
    throw new Error(`${o.expected} missing (create it with --update)`)
  }
  kosokuCommand = findKosoku()
  prepareOutdir(o.outdir)

  // Free loopback port handed to the server; retry if someone took it meanwhile.
  let server
  for (let attempt = 1; ; attempt++) {
    try {
      server = await startServer(o.impl, await freePort())
      break
    } catch (err) {
      if (attempt >= 3) throw err
      console.error(`run.js: ${err.message}; retrying`)
    }
  }
  let serverDied = null
  server.child.on('exit', (code, signal) => { serverDied = signal || `code ${code}` })
  console.log(`autobahn: echo server (${o.impl || 'ferrosocket, repo root'}) pid ${server.child.pid} ` +
    `on 127.0.0.1:${server.port}`)

  const actual = {} // case id -> verdict
  const reportFile = {} // case id -> per-case HTML report
  const problems = [] // run-level failures (not tied to a case)
  const record = (index, dir) => {
    // index.json: { agent: { caseId: { behavior, behaviorClose, reportfile, ... } } };
    // the agent is the server's `Server` header, else host:port.
    for (const cases of Object.values(index)) {
      for (const [id, entry] of Object.entries(cases)) {
        actual[id] = verdictOf(entry)
        if (entry.reportfile) reportFile[id] = path.join(dir, entry.reportfile.replace(/\.json$/, '.html'))
      }
    }
  }

  // A selection runs section by section too (each on its own path).
  const sectionOf = (glob) => glob.split('.')[0]
  const groups = o.cases
    ? [...new Set(o.cases.map(sectionOf))].map((s) => ({ name: `selected-${s}`, section: s, globs: o.cases.filter((g) => sectionOf(g) === s) }))
    : SECTIONS.map((s) => ({
      name: `section-${s}`,
      section: s,
      globs: SECTION_PATH[s] && o.deflateSizes === 'small' ? smallCases(s) : [`${s}.*`]
    }))
  const wanted = (id) => groups.some((g) => g.globs.some((glob) => globMatch(glob, id)))

  let probeError = await probe(server.port)
  for (const g of groups) {
    if (probeError) break
    if (serverDied !== null) break
    if (left() <= 0) { problems.push(`overall time bound of ${o.timeout}s reached before ${g.name}`); break }
    const dir = path.join(o.outdir, g.name)
    const parallelism = Math.max(o.parallelism, SECTION_PARALLELISM[g.section] || 1)
    const bound = Math.max(o.sectionTimeout, SECTION_TIMEOUT[g.section] || 0)
    const urlPath = SECTION_PATH[g.section] || '/'
    const r = await runKosoku(g.globs, dir, server.port, parallelism, Math.min(bound, left()), urlPath)
    if (r.index) { record(r.index, dir); continue }
    if (!r.timedOut) {
      process.stderr.write(r.out.slice(-3000))
      problems.push(`kosoku (${g.name}) exited ${r.signal || 'with code ' + r.code} without writing index.json`)
      continue
    }
    if (left() < 1) { problems.push(`overall time bound of ${o.timeout}s reached during ${g.name}`); break }
    console.log(`autobahn: ${g.name} did not finish within ${o.sectionTimeout}s; finding the hanging case(s)`)
    probeError = await probe(server.port)
    if (probeError) break
    // Re-run the section's known cases (from expected.json) one at a time.
    const ids = Object.keys(expected).filter((id) => g.globs.some((glob) => globMatch(glob, id))).sort(compareIds)
    if (!ids.length) problems.push(`${g.name} timed out and expected.json lists none of its cases`)
    let hung = 0
    for (const id of ids) {
      if (hung >= MAX_HUNG_PER_SECTION || left() <= 0 || serverDied !== null) break
      const cdir = path.join(o.outdir, `${g.name}-case-${id}`)
      const c = await runKosoku([id], cdir, server.port, 1, Math.min(o.caseTimeout, left()), urlPath)
      if (c.index) record(c.index, cdir)
      else if (c.timedOut) { actual[id] = 'TIMEOUT'; hung++ } else problems.push(`kosoku (${id}) exited without a result`)
    }
  }
  if (probeError) problems.push(`echo server does not complete a WebSocket handshake: ${probeError}`)
  const serverAliveAtEnd = serverDied === null
  await killChild(server.child)
  if (!serverAliveAtEnd) problems.push(`echo server exited during the run (${serverDied})`)
  const secs = ((Date.now() - started) / 1000).toFixed(1)
  writeJson(path.join(o.outdir, 'results.json'), actual)

  // Compare with expected.json.
  const ids = new Set(Object.keys(actual))
  for (const id of Object.keys(expected)) if (wanted(id)) ids.add(id)
  let passed = 0
  const failures = []
  const notes = []
  const newCases = []
  const missing = []
  for (const id of [...ids].sort(compareIds)) {
    const got = actual[id]
    const want = expected[id]
    if (got === undefined) {
      missing.push(id)
    } else if (passes(got, want)) {
      passed++
      if (want === undefined) newCases.push(id)
      else if (got !== want) notes.push(`${id}: ${want} -> ${got}`)
    } else {
      failures.push(`${id}: ${got}` + (want !== undefined && want !== got ? ` (expected ${want})` : '') +
        (reportFile[id] ? ` -- ${rel(reportFile[id])}` : ''))
    }
  }

  if (o.update) {
    const merged = o.cases || o.deflateSizes === 'small' ? { ...expected, ...actual } : actual
    writeJson(o.expected, merged)
    console.log(`autobahn: wrote ${Object.keys(merged).length} cases to ${rel(o.expected)}`)
  } else {
    if (newCases.length) console.log(`autobahn: note: passing case(s) not in expected.json: ${newCases.join(' ')}`)
    // OK <-> NON-STRICT swaps with timing (e.g. whether an echo leaves before
    // the server fails the connection): one line for those, one per other change.
    const swap = (n) => /^\S+: (OK -> NON-STRICT|NON-STRICT -> OK)$/.test(n)
    const swaps = notes.filter(swap).map((n) => n.split(':')[0])
    if (swaps.length) console.log(`autobahn: note: OK <-> NON-STRICT vs expected.json (passes): ${swaps.join(' ')}`)
    for (const n of notes.filter((n) => !swap(n))) console.log(`autobahn: note: ${n} (passes)`)
  }
  for (const f of failures) console.log(`autobahn: FAIL ${f}`)
  if (missing.length) {
    const list = missing.length > 12 ? `${missing.slice(0, 12).join(' ')} ... ${missing[missing.length - 1]}` : missing.join(' ')
    console.log(`autobahn: FAIL ${missing.length} expected case(s) not run or not reported: ${list}`)
  }
  for (const p of problems) console.log(`autobahn: FAIL ${p}`)
  const counts = {}
  for (const v of Object.values(actual)) counts[v] = (counts[v] || 0) + 1
  console.log(`autobahn: ${Object.keys(actual).length} cases in ${secs}s (` +
    (Object.entries(counts).map(([v, n]) => `${v} ${n}`).join(', ') || 'none') +
    `); reports in ${rel(o.outdir)}`)
  const failed = failures.length + missing.length + problems.length
  console.log(`autobahn: ${passed} passed, ${failed} failed`)
  return failed ? 1 : 0
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll().then(() => process.exit(130))
  })
}

main().then((code) => {
  process.exitCode = code
}, (err) => {
  console.error(`run.js: ${err.message}`)
  console.log('autobahn: 0 passed, 1 failed')
  return killAll().then(() => { process.exitCode = 1 })
})
