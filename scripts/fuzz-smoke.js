'use strict'
// A short fuzzing run of every target (fuzz/fuzz_targets), part of
// `npm test` where a nightly Rust toolchain is installed (libFuzzer needs
// it); elsewhere it says so and passes. cargo-fuzz is installed into a
// project-local directory, `.tools/` (git-ignored), once. Each target
// starts from a copy of its committed corpus (fuzz/corpus/<target>, from
// the long runs in docs/decisions.md), so the committed files never change.
//
//   node scripts/fuzz-smoke.js [seconds per target, default 10]
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const root = path.join(__dirname, '..')
const tools = path.join(root, '.tools')
const cargoFuzz = path.join(tools, 'bin', 'cargo-fuzz')
const seconds = Number(process.argv[2] || 10)

function hasNightly () {
  const r = spawnSync('rustup', ['run', 'nightly', 'rustc', '--version'], { encoding: 'utf8' })
  return r.status === 0
}

function run (cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], maxBuffer: 1 << 28, encoding: 'utf8', ...opts })
  if (r.error) throw new Error(`${cmd} could not start: ${r.error.message}`)
  return r
}

function main () {
  if (!hasNightly()) {
    console.error('fuzz-smoke: skipped, no nightly Rust toolchain (rustup toolchain install nightly to run it)')
    return 0
  }
  if (!fs.existsSync(cargoFuzz)) {
    console.error('fuzz-smoke: installing cargo-fuzz into .tools/ (once)')
    if (run('cargo', ['install', '--quiet', '--locked', '--root', tools, 'cargo-fuzz']).status !== 0) throw new Error('cargo install cargo-fuzz failed')
  }
  const targets = fs.readdirSync(path.join(root, 'fuzz', 'fuzz_targets')).filter((f) => f.endsWith('.rs')).map((f) => f.slice(0, -3)).sort()
  const env = { ...process.env, PATH: `${path.join(tools, 'bin')}:${process.env.PATH}` }
  for (const target of targets) {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), `ferrosocket-fuzz-${target}-`))
    try {
      const committed = path.join(root, 'fuzz', 'corpus', target)
      if (fs.existsSync(committed)) fs.cpSync(committed, work, { recursive: true })
      console.error(`fuzz-smoke: ${target}, ${seconds} s`)
      // libFuzzer's progress lines go to stderr: kept, and shown only in part.
      const r = run('cargo', ['+nightly', 'fuzz', 'run', '--fuzz-dir', path.join(root, 'fuzz'), target, work, '--',
        `-max_total_time=${seconds}`, '-max_len=65536', '-print_final_stats=1'], { env, stdio: ['ignore', 'ignore', 'pipe'] })
      const lines = (r.stderr || '').split('\n')
      if (r.status !== 0) {
        console.error(lines.slice(-60).join('\n'))
        console.error(`fuzz-smoke: ${target} found a failure (see fuzz/artifacts/${target}/)`)
        return 1
      }
      const runs = lines.find((l) => l.startsWith('stat::number_of_executed_units'))
      console.error(`fuzz-smoke: ${target}: ${runs ? runs.split(':').pop().trim() : '?'} executions, nothing found`)
    } finally {
      fs.rmSync(work, { recursive: true, force: true })
    }
  }
  console.error(`fuzz-smoke: ${targets.length} targets, ${seconds} s each, nothing found`)
  return 0
}

process.exitCode = main()
