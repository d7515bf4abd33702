// The prebuilt package: `npm pack` of the main and platform packages,
// installed into a fresh directory with no Rust toolchain on PATH, must load
// and serve a WebSocket echo round trip.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname, delimiter } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

const { pack } = createRequire(import.meta.url)('../scripts/pack.js')

test('packed tarballs install without cargo and echo over a real socket', { timeout: 180_000 }, () => {
  assert.ok(existsSync(join(root, 'npm/linux-x64-gnu/ferrosocket.linux-x64-gnu.node')), 'run `npm run build` first')
  const work = mkdtempSync(join(tmpdir(), 'ferrosocket-pkg-'))
  try {
    const { main, platform } = pack(work)
    const app = join(work, 'app')
    execFileSync('mkdir', ['-p', app])
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
    // No cargo or rustc reachable: the install must not try to build anything.
    const path = process.env.PATH.split(delimiter).filter((p) => !existsSync(join(p, 'cargo')) && !existsSync(join(p, 'rustc')))
    const env = { ...process.env, PATH: path.join(delimiter) }
    assert.equal(spawnSync('cargo', ['--version'], { env }).error?.code, 'ENOENT', 'cargo still on PATH')
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', platform, main], { cwd: app, env, stdio: 'pipe' })
    assert.ok(!existsSync(join(app, 'node_modules/ferrosocket/ferrosocket.linux-x64-gnu.node')), 'main package must not carry the binary')

    writeFileSync(join(app, 'echo.mjs'), `
      import { createRequire } from 'node:module'
      const require = createRequire(import.meta.url)
      const { App, us_socket_local_port } = require('ferrosocket')
      const net = require('node:net')
      const crypto = require('node:crypto')
      const app = App().ws('/*', { message: (ws, m, b) => ws.send(m, b) })
      app.listen('127.0.0.1', 0, (ls) => {
        const port = us_socket_local_port(ls)
        const s = net.connect(port, '127.0.0.1', () => {
          s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n' +
            'Sec-WebSocket-Key: ' + crypto.randomBytes(16).toString('base64') + '\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n')
          const payload = Buffer.from('round trip')
          const mask = crypto.randomBytes(4)
          const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))
          s.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]))
        })
        let buf = Buffer.alloc(0)
        s.on('data', (d) => {
          buf = Buffer.concat([buf, d])
          const end = buf.indexOf('\\r\\n\\r\\n')
          if (end < 0) return
          const frame = buf.subarray(end + 4)
          if (frame.length < 2 || frame.length < 2 + frame[1]) return
          process.stdout.write(frame.subarray(2, 2 + frame[1]).toString())
          s.destroy()
          app.close()
        })
      })
    `)
    const r = spawnSync(process.execPath, ['echo.mjs'], { cwd: app, env, encoding: 'utf8', timeout: 20_000 })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'round trip')
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
})
