// index.d.ts is hand-written: type-check a file of typical uWS.js and
// socket.io usage against it, so the declarations cannot drift from the API.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

test('index.d.ts accepts typical usage under tsc --strict', { timeout: 60000 }, () => {
  const tsc = join(root, 'node_modules/typescript/bin/tsc')
  const r = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--types', 'node', '__test__/fixtures/types-usage.ts'],
    { cwd: root, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
})
