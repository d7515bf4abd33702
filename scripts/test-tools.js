'use strict'
// Provisions the test tools that do not come from npm, so that
// `npm ci && npm test` is the whole set-up on a fresh machine.
//
// Today that is kosoku (the Autobahn|Testsuite runner, from PyPI), installed
// pinned by hash into a project-local virtual environment, `.venv/`
// (git-ignored). A venv because Debian's system Python refuses `pip install`
// outside one (PEP 668), and because a user's own Python should not be
// touched by our tests. The venv is created once and reused: a stamp file
// holds the requirements it was made from, and a changed requirements file
// rebuilds it.
//
//   node scripts/test-tools.js          provision (no-op when up to date)
//   node scripts/test-tools.js --print  print the kosoku path it would use
//
// Env PYTHON: the interpreter that creates the venv (default python3).
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const root = path.join(__dirname, '..')
const venv = path.join(root, '.venv')
const requirements = path.join(root, 'conformance', 'autobahn', 'requirements.txt')
const stamp = path.join(venv, 'ferrosocket-requirements.txt')
const kosoku = path.join(venv, 'bin', 'kosoku')

function run (cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' })
  if (r.error) throw new Error(`${what}: ${cmd} could not start (${r.error.code}); ${hint()}`)
  if (r.status !== 0) throw new Error(`${what} failed (${cmd} ${args.join(' ')}):\n${r.stderr}\n${hint()}`)
}

function hint () {
  return 'the tests need Python 3.10+ with venv and pip (Debian/Ubuntu: apt-get install python3-venv)'
}

function upToDate () {
  try {
    return fs.existsSync(kosoku) && fs.readFileSync(stamp, 'utf8') === fs.readFileSync(requirements, 'utf8')
  } catch (_) {
    return false
  }
}

function provision () {
  if (upToDate()) return kosoku
  const python = process.env.PYTHON || 'python3'
  fs.rmSync(venv, { recursive: true, force: true })
  console.error(`test-tools: creating ${path.relative(root, venv)}/ with ${python} and installing kosoku`)
  run(python, ['-m', 'venv', venv], 'creating the venv')
  const pip = path.join(venv, 'bin', 'python')
  run(pip, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-input',
    '--require-hashes', '-r', requirements], 'installing kosoku')
  if (!fs.existsSync(kosoku)) throw new Error(`kosoku missing at ${kosoku} after install`)
  // Written last: a half-made venv is rebuilt on the next run.
  fs.copyFileSync(requirements, stamp)
  return kosoku
}

module.exports = { provision, kosoku }

if (require.main === module) {
  if (process.argv.includes('--print')) console.log(kosoku)
  else provision()
}
