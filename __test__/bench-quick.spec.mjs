// Smoke test of the benchmark harness (`npm run bench -- --quick`): every
// server produces a number for every scenario, the JSON, markdown and SVG
// outputs are written, and the console report reads well (100 columns, no
// negative memory figure). It never asserts a speed: this machine is shared
// and --quick's N is far too small to mean anything.
//
// A server/scenario pair may be missing only when the server itself says
// the feature is not built yet (FERROSOCKET_UNSUPPORTED, e.g. TLS for the
// Socket.IO API before it can attach to an https.Server); set
// BENCH_QUICK_STRICT=1 to fail on those too.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import report from '../benchmark/report.js'

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
// The run estimates ~3 min for itself and takes ~1.5-2 on a shared 2-core
// machine; the cap is there to catch a hang, not to time it.
const RUN_MS = 180_000

test('benchmark/README.md lists every goal the report checks', () => {
  // report.js GOALS is the one list; the README repeats it for readers.
  const readme = fs.readFileSync(path.join(ROOT, 'benchmark/README.md'), 'utf8')
  const missing = report.GOALS.map((g) => g.text).filter((text) => !readme.includes(`- ${text}\n`))
  assert.deepEqual(missing, [], 'goals missing from the "Goals" section of benchmark/README.md')
})

function runQuick (outDir) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['benchmark/run.js', '--quick', '--out', outDir], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    // SIGINT lets run.js kill its own servers and load generators by PID.
    const timer = setTimeout(() => child.kill('SIGINT'), RUN_MS)
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, timedOut: signal === 'SIGINT' || code === 130 })
    })
  })
}

test('npm run bench -- --quick: every server gives a number in every scenario', { timeout: RUN_MS + 330_000 }, async (t) => {
  // Build the load generator first, outside the run's time budget (run.js
  // does it too, as a no-op once built).
  if (spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status === 0) {
    const build = spawnSync('cargo', ['build', '--release', '--quiet', '--manifest-path', 'benchmark/loadgen/Cargo.toml'],
      { cwd: ROOT, encoding: 'utf8', timeout: 300_000 })
    if (build.status !== 0) {
      assert.ok(fs.existsSync(path.join(ROOT, 'benchmark/loadgen/target/release/loadgen')), `loadgen build failed:\n${build.stderr}`)
      t.diagnostic('loadgen build failed; run.js uses the existing binary')
    }
  }
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrosocket-bench-quick-'))
  t.after(() => fs.rmSync(outDir, { recursive: true, force: true }))
  const run = await runQuick(outDir)
  const context = `exit ${run.code ?? run.signal}\n--- stdout\n${run.stdout.slice(-4000)}\n--- stderr\n${run.stderr.slice(-4000)}`
  assert.ok(!run.timedOut, `the quick run took longer than ${RUN_MS / 1000} s\n${context}`)

  const jsonFiles = fs.readdirSync(outDir).filter((f) => f.endsWith('.json'))
  assert.equal(jsonFiles.length, 1, `one results JSON expected in ${outDir}\n${context}`)
  const result = JSON.parse(fs.readFileSync(path.join(outDir, jsonFiles[0]), 'utf8'))

  assert.equal(result.quick, true)
  assert.equal(typeof result.machine.cpus, 'number')
  assert.ok(result.versions['socket.io'] && result.versions.ws && result.versions['uWebSockets.js'])
  assert.deepEqual(Object.keys(result.scenarios).sort(),
    ['broadcast', 'broadcast-deflate', 'cluster', 'connect', 'crossnode', 'echo', 'heartbeat', 'http', 'memory', 'memory-deflate', 'tls'])
  assert.deepEqual([...result.servers].sort(), ['ferrosocket-core', 'ferrosocket-sio', 'ferrosocket-sio-attached', 'socketio', 'uws', 'ws'])

  const missing = []
  const unsupported = []
  for (const [name, sc] of Object.entries(result.scenarios)) {
    assert.equal(sc.skipped, null, `${name} skipped: ${sc.skipped}`)
    for (const table of sc.tables) {
      for (const server of result.servers) {
        const row = table.rows[server]
        const value = row && row.metrics[table.primary].value
        if (typeof value === 'number' && Number.isFinite(value)) continue
        // Below the RSS noise floor (--quick's N is small): measured, shown
        // as "<noise", with the raw figures kept in every sample.
        if (row && row.metrics[table.primary].noise) {
          const raw = sc.samples.filter((s) => s.server === server).map((s) => s.noise[table.primary].rawKB)
          assert.ok(raw.length && raw.every(Number.isFinite), `${table.id} / ${server}: <noise without raw figures`)
          continue
        }
        if (row && row.unsupported && !process.env.BENCH_QUICK_STRICT) {
          unsupported.push(`${table.id} / ${server}: ${row.unsupported}`)
          continue
        }
        missing.push(`${table.id} / ${server}: ${row ? (row.errors[0] || 'no sample') : 'no row'}`.split('\n')[0])
      }
    }
  }
  for (const u of unsupported) t.diagnostic(`not supported by this build: ${u}`)
  assert.deepEqual(missing, [], `server/scenario pairs without a number:\n${missing.join('\n')}\n${context}`)

  // The console report: every table once, 100 columns, no negative KB.
  const lines = run.stdout.split('\n')
  const wide = lines.filter((l) => l.length > 100)
  assert.deepEqual(wide, [], `stdout lines over 100 characters\n${context}`)
  for (const table of Object.values(result.scenarios).flatMap((sc) => sc.tables)) {
    assert.equal(lines.filter((l) => l === `== ${table.title} ==`).length, 1, `table '${table.title}' printed once on stdout`)
  }
  const kbRows = lines.filter((l) => /^KB\/[^:]*$/.test(l)) // table lines, not the "KB/conn: ..." legend
  assert.equal(kbRows.length, 4, `a KB/conn (memory, memory-deflate), a KB/TLS conn (tls) and a KB/conn (cluster) line expected\n${context}`)
  for (const l of kbRows) assert.doesNotMatch(l, /\s-\d/, 'a negative KB per connection printed')
  assert.doesNotMatch(run.stdout, /-\d[\d.]*\s*KB/, 'a negative KB figure printed')
  assert.doesNotMatch(run.stdout, /DESIGN\.md|shared\/docs/, 'stdout cites a file outside the repository')

  // The human-facing outputs exist and refer to each other.
  const stamp = jsonFiles[0].replace(/\.json$/, '')
  const md = fs.readFileSync(path.join(outDir, `${stamp}.md`), 'utf8')
  const svgs = fs.readdirSync(outDir).filter((f) => f.endsWith('.svg'))
  assert.ok(svgs.length >= 7, `an SVG per table expected, got ${svgs.join(', ')}`)
  for (const svg of svgs) {
    assert.match(fs.readFileSync(path.join(outDir, svg), 'utf8'), /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>\n$/)
    assert.ok(md.includes(`](${svg})`), `${svg} linked from the markdown`)
  }
  assert.doesNotMatch(md, /DESIGN\.md|shared\/docs/, 'the markdown cites a file outside the repository')
  assert.ok(!fs.existsSync(path.join(outDir, 'latest.md')), 'a --quick run must not replace latest.md')
})
