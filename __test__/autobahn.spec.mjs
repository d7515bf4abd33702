// RFC 6455 conformance: Autobahn|Testsuite sections 1-10, and 12-13
// (permessage-deflate, RFC 7692; messages up to 16 KiB here, all sizes with
// AUTOBAHN_FULL=1), via the PyPI runner
// kosoku) against conformance/autobahn/echo-server.js, compared with the
// committed conformance/autobahn/expected.json. Any FAILED case, or any case
// worse than expected, fails this test. kosoku comes from the project venv
// (scripts/test-tools.js, run by `npm test` before the specs).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

test('Autobahn sections 1-10, 12 and 13: no case FAILED, none worse than expected.json', { timeout: 1_560_000 }, () => {
  const r = spawnSync(process.execPath, [join(root, 'conformance/autobahn/run.js')], {
    cwd: root, encoding: 'utf8', timeout: 1_550_000
  })
  const out = `${r.stdout}\n${r.stderr}`
  const summary = out.match(/autobahn: (\d+) passed, (\d+) failed/)
  assert.ok(summary, `no summary line in:\n${out.slice(-3000)}`)
  assert.equal(Number(summary[2]), 0, out.slice(-3000))
  assert.ok(Number(summary[1]) >= 301 + 108, `only ${summary[1]} cases ran`)
  assert.equal(r.status, 0, out.slice(-3000))
})
