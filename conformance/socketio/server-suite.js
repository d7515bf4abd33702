'use strict'
// Runs socket.io's own server test suite (socketio/socket.io,
// packages/socket.io/test, mocha + tsx) against this checkout, or against the
// real socket.io package for a reference count. The suite is not vendored:
// it is copied from --dir into a scratch workspace outside the repo, where
//   socket.io/test/           the suite, as is
//   socket.io/package.json    stands in for socket.io's own package.json
//   socket.io/index.js        what the suite's `from ".."` loads: this repo
//                             (ferrosocket) or the installed socket.io
//   socket.io/node_modules/uWebSockets.js
//                             ferrosocket's uWS-style API (App, SSLApp,
//                             us_listen_socket_close, us_socket_local_port);
//                             @trufflesuite/uws-js-unofficial for socket.io
//   node_modules/             the suite's devDependencies, from npm
// See README.md beside this file.
//
// Usage:
//   node conformance/socketio/server-suite.js --dir <socketio/socket.io checkout,
//        extracted snapshot, or bare git mirror> [--work <scratch dir>]
//        [--impl ferrosocket|socket.io] [--grep pattern] [--max-minutes 20]
// Ends with a per-file table and
//   `socket.io server suite (<impl>): P passed, F failed of T`
// (F counts failed cases and cases that never ran: after a failed hook, or
// cut by the overall time limit); exit 1 unless F is 0. The failing cases with
// their first error line are written to <work>/failures.txt.

const { spawn, execFileSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')

const ROOT = path.resolve(__dirname, '..', '..')

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string' },
    work: { type: 'string', default: path.join(os.tmpdir(), 'ferrosocket-sio-server-suite') },
    impl: { type: 'string', default: 'ferrosocket' },
    grep: { type: 'string' },
    'max-minutes': { type: 'string', default: '20' }
  }
})

function die (message) {
  console.error(`server-suite: ${message}`)
  process.exit(2)
}

if (!args.dir) die('--dir <path of a socketio/socket.io checkout or snapshot> is required (see README.md)')
if (!['ferrosocket', 'socket.io'].includes(args.impl)) die(`--impl must be ferrosocket or socket.io, not ${args.impl}`)
const maxMinutes = Number(args['max-minutes'])
if (!(maxMinutes > 0)) die(`bad --max-minutes ${args['max-minutes']}`)

// The suite's devDependencies (root package.json of socketio/socket.io) that
// its server tests load, plus the reference implementation and a uWS build
// from npm for it. Not installed: webtransport, wdio, rollup, babel, redis,
// pg, nyc, prettier, tsd, typescript (tsx strips types itself).
const DEPENDENCIES = {
  mocha: '^10.6.0',
  tsx: '~4.20.6',
  'expect.js': '^0.3.1',
  superagent: '^9.0.2',
  supertest: '^7.0.0',
  'socket.io-client': '~4.8.1',
  'socket.io-client-v2': 'npm:socket.io-client@^2.5.0',
  'engine.io-client-v3': 'npm:engine.io-client@^3.5.2',
  'socket.io-adapter': '~2.5.2',
  '@sinonjs/fake-timers': '^11.2.2',
  express: '^4.19.2',
  cookie: '~0.7.2',
  // --impl socket.io only
  'socket.io': '~4.8.1',
  '@trufflesuite/uws-js-unofficial': '^20.30.0-unofficial.0'
}

const work = path.resolve(args.work)
const pkgDir = path.join(work, 'socket.io')
const testDir = path.join(pkgDir, 'test')
const resultsFile = path.join(work, 'results.jsonl')
const failuresFile = path.join(work, 'failures.txt')
const logFile = path.join(work, 'mocha.log')

// Children run in their own process group; this kills the group by the
// child's PID (mocha re-spawns node for --import; close.ts execs fixtures).
const children = new Set()
function killGroup (child) {
  try { process.kill(-child.pid, 'SIGKILL') } catch {}
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    for (const child of children) killGroup(child)
    process.exit(130)
  })
}

function run (cmd, argv, { cwd, env, timeoutMs, log }) {
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { cwd, env: env || process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    const out = log ? fs.createWriteStream(log) : null
    child.stdout.on('data', (d) => { process.stdout.write(d); out?.write(d) })
    child.stderr.on('data', (d) => { process.stderr.write(d); out?.write(d) })
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; killGroup(child) }, timeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      killGroup(child) // whatever the run left behind in its group
      children.delete(child)
      out?.end()
      resolve({ code, signal, timedOut })
    })
  })
}

// --- 1. the suite's test folder ------------------------------------------

// Large fixtures a mirror may lack (big blobs left out). Stand-ins keep the
// two "very large" cases meaningful; the run says when they are used.
const STAND_INS = {
  'fixtures/big.json': () => {
    const rand = prng(1)
    const words = 'lorem ipsum dolor sit amet consectetur adipisicing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(' ')
    const pick = (n) => Array.from({ length: n }, () => words[Math.floor(rand() * words.length)])
    const items = []
    let size = 0
    for (let id = 0; size < 6_100_000; id++) {
      const item = {
        id,
        guid: crypto.createHash('md5').update(String(id)).digest('hex'),
        isActive: rand() < 0.5,
        balance: `$${(rand() * 4000).toFixed(2)}`,
        age: 20 + Math.floor(rand() * 20),
        name: pick(2).join(' '),
        about: pick(40).join(' ') + '.\r\n',
        latitude: rand() * 180 - 90,
        longitude: rand() * 360 - 180,
        tags: pick(7),
        friends: [0, 1, 2].map((i) => ({ id: i, name: pick(2).join(' ') })),
        greeting: `Hello! You have ${Math.floor(rand() * 10)} unread messages.`
      }
      items.push(item)
      size += JSON.stringify(item, null, 4).length + 10
    }
    return Buffer.from(JSON.stringify(items, null, 4))
  },
  // 500 kB: under maxHttpBufferSize (1e6) even base64-encoded over polling.
  'fixtures/big.jpg': () => {
    const rand = prng(2)
    const buf = Buffer.alloc(500_000)
    for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rand() * 256)
    buf.set([0xff, 0xd8, 0xff, 0xe0], 0)
    buf.set([0xff, 0xd9], buf.length - 2)
    return buf
  }
}

function prng (seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function git (dir, ...argv) {
  return execFileSync('git', ['-C', dir, ...argv], { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Copies the suite into testDir; returns { source, missing[] }. */
function copySuite (dir) {
  dir = path.resolve(dir)
  fs.rmSync(testDir, { recursive: true, force: true })
  fs.mkdirSync(testDir, { recursive: true })
  const candidates = [path.join(dir, 'packages', 'socket.io', 'test'), path.join(dir, 'test'), dir]
  const found = candidates.find((d) => fs.existsSync(path.join(d, 'index.ts')) && fs.existsSync(path.join(d, 'socket.ts')))
  let source
  if (found) {
    fs.cpSync(found, testDir, { recursive: true })
    source = found
    if (fs.existsSync(path.join(dir, '.git'))) {
      try { source += ` @ ${git(dir, 'rev-parse', '--short', 'HEAD').toString().trim()}` } catch {}
    }
  } else if (fs.existsSync(path.join(dir, 'HEAD')) && fs.existsSync(path.join(dir, 'objects'))) {
    // A git directory without a work tree (a mirror): read HEAD's blobs.
    const prefix = 'packages/socket.io/test/'
    const listing = git(dir, 'ls-tree', '-r', '-z', 'HEAD', '--', prefix).toString().split('\0').filter(Boolean)
    if (listing.length === 0) die(`${dir}: HEAD has no ${prefix}`)
    for (const line of listing) {
      const [meta, file] = line.split('\t')
      const [, type, sha] = meta.split(' ')
      if (type !== 'blob') continue
      const dest = path.join(testDir, file.slice(prefix.length))
      fs.mkdirSync(path.dirname(dest), { recursive: true })
      try {
        fs.writeFileSync(dest, git(dir, 'cat-file', 'blob', sha))
      } catch {} // blob absent from the mirror: handled as missing below
    }
    source = `${dir} (git) @ ${git(dir, 'rev-parse', '--short', 'HEAD').toString().trim()}`
  } else {
    die(`${dir}: no packages/socket.io/test/index.ts, test/index.ts or index.ts, and not a git directory`)
  }
  const missing = []
  for (const [rel, make] of Object.entries(STAND_INS)) {
    const file = path.join(testDir, rel)
    const isLfsPointer = fs.existsSync(file) && fs.statSync(file).size < 200 &&
      fs.readFileSync(file, 'utf8').startsWith('version https://git-lfs')
    if (!fs.existsSync(file) || isLfsPointer) {
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file, make())
      missing.push(`${rel} (stand-in, ${fs.statSync(file).size} bytes)`)
    }
  }
  return { source, missing }
}

// --- 2. dependencies ----------------------------------------------------

async function install () {
  const stamp = path.join(work, '.install-stamp')
  const want = JSON.stringify({ node: process.versions.node, dependencies: DEPENDENCIES })
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === want &&
      fs.existsSync(path.join(work, 'node_modules', 'mocha', 'bin', 'mocha.js'))) {
    return
  }
  fs.rmSync(stamp, { force: true })
  fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({
    name: 'ferrosocket-sio-server-suite-workspace',
    private: true,
    description: 'scratch workspace of conformance/socketio/server-suite.js',
    dependencies: DEPENDENCIES
  }, null, 2) + '\n')
  console.log(`server-suite: installing the suite's dependencies into ${work} (npm)`)
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const r = await run(npm, ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: work, timeoutMs: 10 * 60_000 })
  if (r.code !== 0) die(`npm install failed in ${work}${r.timedOut ? ' (timed out)' : ''}`)
  fs.writeFileSync(stamp, want)
}

// --- 3. the package the suite tests -----------------------------------

function writePackage () {
  const fromWork = (id) => require.resolve(id, { paths: [work] })
  let entry, uws, version
  if (args.impl === 'ferrosocket') {
    entry = ROOT
    // `require("../package.json").version` is compared with the ETag of the
    // served client bundle; socket.io-client's and socket.io's versions move
    // together, and ferrosocket serves the socket.io-client it depends on.
    version = require(require.resolve('socket.io-client/package.json', { paths: [ROOT] })).version
    uws = [
      `const f = require(${JSON.stringify(ROOT)})`,
      'module.exports = {',
      '  App: f.App,',
      '  SSLApp: f.SSLApp,',
      '  us_listen_socket_close: f.us_listen_socket_close,',
      '  us_socket_local_port: f.us_socket_local_port,',
      '  DISABLED: f.DISABLED,',
      '  SHARED_COMPRESSOR: f.SHARED_COMPRESSOR,',
      '  DEDICATED_COMPRESSOR_3KB: f.DEDICATED_COMPRESSOR_3KB',
      '}'
    ].join('\n')
  } else {
    entry = fromWork('socket.io')
    version = require(fromWork('socket.io/package.json')).version
    uws = `module.exports = require(${JSON.stringify(fromWork('@trufflesuite/uws-js-unofficial'))})`
  }
  fs.writeFileSync(path.join(pkgDir, 'package.json'), JSON.stringify({
    name: 'socket.io',
    version,
    private: true,
    type: 'commonjs',
    main: 'index.js'
  }, null, 2) + '\n')
  fs.writeFileSync(path.join(pkgDir, 'index.js'),
    `'use strict'\n// --impl ${args.impl}\nmodule.exports = require(${JSON.stringify(entry)})\n`)
  const uwsDir = path.join(pkgDir, 'node_modules', 'uWebSockets.js')
  fs.mkdirSync(uwsDir, { recursive: true })
  fs.writeFileSync(path.join(uwsDir, 'package.json'), JSON.stringify({ name: 'uWebSockets.js', version: '0.0.0-shim', main: 'index.js' }) + '\n')
  fs.writeFileSync(path.join(uwsDir, 'index.js'), `'use strict'\n// --impl ${args.impl}\n${uws}\n`)

  // Imports of socket.io's lib/ (e.g. "../../lib/typed-events"): tsx erases
  // type-only ones; any runtime one gets a lib/<name>.js answering with the
  // implementation's exports (a name it lacks is undefined: that case fails).
  fs.rmSync(path.join(pkgDir, 'lib'), { recursive: true, force: true })
  const shims = []
  for (const file of listTs(testDir)) {
    const text = fs.readFileSync(file, 'utf8')
    const re = /^\s*import\s+(type\s+)?[^;]*?from\s+["']((?:\.\.\/)+lib\/[^"']+)["']/gm
    for (let m; (m = re.exec(text));) {
      if (m[1]) continue
      const target = path.resolve(path.dirname(file), m[2])
      if (!target.startsWith(path.join(pkgDir, 'lib'))) continue
      fs.mkdirSync(path.dirname(target), { recursive: true })
      fs.writeFileSync(target + '.js', `'use strict'\nmodule.exports = require(${JSON.stringify(path.join(pkgDir, 'index.js'))})\n`)
      shims.push(path.relative(pkgDir, target))
    }
  }
  return { version, shims }
}

/** The suite's .ts files that mocha loads (not *.d.ts, nor tsd's *.test-d.ts). */
function listTs (dir) {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && !e.name.endsWith('.test-d.ts'))
    .map((e) => path.join(e.parentPath || e.path, e.name))
}

// --- 4. the reporter: spec output, plus one JSON line per event -------

const REPORTER = `'use strict'
// Written by conformance/socketio/server-suite.js.
const fs = require('node:fs')
const Mocha = require('mocha')
const C = Mocha.Runner.constants
const OUT = process.env.SERVER_SUITE_RESULTS
const write = (o) => fs.appendFileSync(OUT, JSON.stringify(o) + '\\n')
function firstLine (err, testDir) {
  const msg = String((err && err.message) || err).split('\\n')[0]
  const name = (err && err.name && err.name !== 'Error') ? err.name + ': ' : ''
  // first frame in the suite's own files (mocha has made paths cwd-relative)
  let at = ''
  for (const l of String((err && err.stack) || '').split('\\n').slice(1)) {
    const m = /([^\\s(]+\\.ts:\\d+:\\d+)\\)?$/.exec(l)
    if (!m || l.includes('node_modules')) continue
    at = m[1].startsWith(testDir) ? m[1].slice(testDir.length) : m[1].replace(/^test\\//, '')
    break
  }
  const short = msg.replace(/^(Timeout of \\d+ms exceeded)\\. .*$/, '$1')
  return { error: ((err && err.uncaught) ? 'Uncaught ' : '') + name + short, at }
}
class ServerSuiteReporter extends Mocha.reporters.Spec {
  constructor (runner, options) {
    super(runner, options)
    const testDir = process.env.SERVER_SUITE_TEST_DIR + '/'
    let next = 0
    runner.once(C.EVENT_RUN_BEGIN, () => {
      const tests = []
      const grep = runner._grep
      const walk = (s) => {
        for (const t of s.tests) {
          t.__serverSuiteId = next++
          let selected = true
          if (grep instanceof RegExp) {
            selected = grep.test(t.fullTitle())
            if (runner._invert) selected = !selected
          }
          tests.push({ id: t.__serverSuiteId, path: t.titlePath(), selected })
        }
        s.suites.forEach(walk)
      }
      walk(runner.suite)
      write({ type: 'begin', tests })
    })
    // Process warnings while a case runs (ferrosocket reports a throwing
    // event handler, or an option it ignores, as a warning): the cause of
    // many timeouts, so they go with the case's failure.
    let warnings = []
    runner.on(C.EVENT_TEST_BEGIN, () => { warnings = [] })
    process.on('warning', (w) => {
      const d = firstLine(w, testDir)
      d.error = (w.code ? '[' + w.code + '] ' : '') + (w.name && w.name !== 'Warning' ? w.name + ': ' : '') +
        String(w.message).split('\\n')[0]
      if (warnings.length < 3 && !warnings.some((x) => x.error === d.error)) warnings.push(d)
    })
    runner.on(C.EVENT_TEST_PASS, (t) => write({ type: 'pass', id: t.__serverSuiteId, ms: t.duration }))
    runner.on(C.EVENT_TEST_PENDING, (t) => write({ type: 'pending', id: t.__serverSuiteId }))
    runner.on(C.EVENT_TEST_FAIL, (t, err) => {
      if (t.type === 'hook') write({ type: 'hook', path: t.titlePath(), ...firstLine(err, testDir), warnings })
      else write({ type: 'fail', id: t.__serverSuiteId, ...firstLine(err, testDir), warnings })
    })
    runner.once(C.EVENT_RUN_END, () => write({ type: 'end' }))
  }
}
module.exports = ServerSuiteReporter
`

// --- 5. run, then summarize -------------------------------------------

/** Top-level describe() title -> source file, read from the suite's files. */
function describeToFile () {
  const map = new Map()
  for (const file of listTs(testDir)) {
    const rel = path.relative(testDir, file)
    if (rel === 'index.ts' || rel.includes(path.sep)) continue
    const re = /^describe\(\s*(["'`])(.*?)\1/gm
    for (let m; (m = re.exec(fs.readFileSync(file, 'utf8')));) map.set(m[2], rel)
  }
  return map
}

function summarize (runResult) {
  if (!fs.existsSync(resultsFile)) die(`mocha wrote no results (exit ${runResult.code}); see ${logFile}`)
  const events = fs.readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
  const begin = events.find((e) => e.type === 'begin')
  if (!begin) die(`mocha did not start the run (exit ${runResult.code}); see ${logFile}`)
  const ended = events.some((e) => e.type === 'end')
  const titleToFile = describeToFile()
  const fileOf = (p) => {
    for (const t of p) if (titleToFile.has(t)) return titleToFile.get(t)
    return p[0] || '?'
  }
  const tests = begin.tests.filter((t) => t.selected)
  const byId = new Map(tests.map((t) => [t.id, { ...t, file: fileOf(t.path), state: 'not run', errors: [] }]))
  const hooks = []
  for (const e of events) {
    const t = byId.get(e.id)
    if (e.type === 'pass' && t && t.state === 'not run') t.state = 'passed'
    else if (e.type === 'pending' && t) t.state = 'pending'
    else if (e.type === 'fail' && t) { t.state = 'failed'; t.errors.push(e) }
    else if (e.type === 'hook') hooks.push({ ...e, file: fileOf(e.path) })
  }

  const rows = new Map()
  for (const t of byId.values()) {
    if (!rows.has(t.file)) rows.set(t.file, { file: t.file, describe: t.path[1] ?? '', passed: 0, failed: 0, pending: 0, 'not run': 0, total: 0 })
    const r = rows.get(t.file)
    r[t.state]++
    r.total++
  }
  const cols = ['passed', 'failed', 'pending', 'not run', 'total']
  const head = ['file (describe)', ...cols]
  const body = [...rows.values()].map((r) => [`${r.file} (${r.describe})`, ...cols.map((c) => String(r[c]))])
  const sum = (c) => [...rows.values()].reduce((a, r) => a + r[c], 0)
  body.push(['total', ...cols.map((c) => String(sum(c)))])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)))
  const line = (cells) => cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ')
  console.log('\n' + line(head))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  body.forEach((b, i) => { if (i === body.length - 1) console.log(widths.map((w) => '-'.repeat(w)).join('  ')); console.log(line(b)) })

  // failures.txt: every case that did not pass, grouped by file.
  const out = [`socket.io server suite (${args.impl}): cases that did not pass`, '']
  for (const file of rows.keys()) {
    const bad = [...byId.values()].filter((t) => t.file === file && (t.state === 'failed' || t.state === 'not run'))
    const fileHooks = hooks.filter((h) => h.file === file)
    if (bad.length === 0 && fileHooks.length === 0) continue
    out.push(`## ${file}`)
    for (const t of bad) {
      const title = t.path.slice(2).join(' > ') || t.path.join(' > ')
      if (t.state === 'failed') {
        const e = t.errors[0]
        out.push(`- ${title}\n    ${e.error}${e.at ? `  [${e.at}]` : ''}`)
        for (const w of e.warnings || []) out.push(`    warning: ${w.error}${w.at ? `  [${w.at}]` : ''}`)
      } else {
        const within = (h) => h.path.length - 1 <= t.path.length && h.path.slice(0, -1).every((x, i) => x === t.path[i])
        const hook = hooks.find(within)
        const why = hook ? `${hook.path[hook.path.length - 1].replace(/ for .*/, '')} failed: ${hook.error}`
          : ended ? 'skipped after a failed hook' : 'the run was cut off'
        out.push(`- ${title}\n    (not run: ${why})`)
      }
    }
    for (const h of fileHooks) {
      out.push(`- hook: ${h.path.slice(2).join(' > ')}\n    ${h.error}${h.at ? `  [${h.at}]` : ''}`)
      for (const w of h.warnings || []) out.push(`    warning: ${w.error}${w.at ? `  [${w.at}]` : ''}`)
    }
    out.push('')
  }
  fs.writeFileSync(failuresFile, out.join('\n') + '\n')

  const passed = sum('passed')
  const pending = sum('pending')
  const total = tests.length
  const failed = total - passed - pending
  if (!ended) console.log(`\nserver-suite: the run did not finish (${runResult.timedOut ? `cut at ${maxMinutes} min` : `mocha exit ${runResult.code ?? runResult.signal}`})`)
  if (hooks.length) console.log(`server-suite: ${hooks.length} hook failure(s), listed in failures.txt`)
  console.log(`failing cases: ${failuresFile}`)
  console.log(`socket.io server suite (${args.impl}): ${passed} passed, ${failed} failed of ${total}` +
    (pending ? ` (${pending} pending)` : '') + (sum('not run') ? ` (${sum('not run')} of the failed never ran)` : ''))
  return failed === 0 && passed > 0 && ended ? 0 : 1
}

async function main () {
  fs.mkdirSync(work, { recursive: true })
  const { source, missing } = copySuite(args.dir)
  await install()
  const { version, shims } = writePackage()
  const v = (id) => { try { return require(require.resolve(`${id}/package.json`, { paths: [work] })).version } catch { return '?' } }
  console.log(`server-suite: suite ${source}`)
  for (const m of missing) console.log(`server-suite: not in the source, using a ${m}`)
  console.log(`server-suite: --impl ${args.impl} -> ${args.impl === 'ferrosocket' ? ROOT : `socket.io ${version}`}; ` +
    `package.json version ${version}; lib shims: ${shims.length ? shims.join(', ') : 'none needed'}`)
  console.log(`server-suite: mocha ${v('mocha')}, tsx ${v('tsx')}, socket.io-client ${v('socket.io-client')}, workspace ${work}`)

  fs.rmSync(resultsFile, { force: true })
  const reporter = path.join(work, 'server-suite-reporter.js')
  fs.writeFileSync(reporter, REPORTER)
  const argv = [path.join(work, 'node_modules', 'mocha', 'bin', 'mocha.js'),
    '--import=tsx', '--timeout', '10000', '--slow', '200', '--exit',
    '--reporter', reporter]
  if (args.grep) argv.push('--grep', args.grep)
  argv.push('test/index.ts')
  const result = await run(process.execPath, argv, {
    cwd: pkgDir,
    env: { ...process.env, SERVER_SUITE_RESULTS: resultsFile, SERVER_SUITE_TEST_DIR: testDir },
    timeoutMs: maxMinutes * 60_000,
    log: logFile
  })
  process.exitCode = summarize(result)
}

main().catch((err) => {
  for (const child of children) killGroup(child)
  console.error(err)
  process.exit(2)
})
