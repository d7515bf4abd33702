// The prebuilt package: `npm pack` of the main and platform packages,
// installed into a fresh directory with no Rust toolchain on PATH, must load
// through every entry point (require, the factory, ESM named and default
// imports) and serve a WebSocket echo round trip; without its platform
// package it must fail with a message that says what is missing.
// Installs fetch the dependencies (cors, socket.io-client) from the
// registry, as a user's install does: no test relies on a warm npm cache.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname, delimiter } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

const { pack } = createRequire(import.meta.url)('../scripts/pack.js')

// No cargo or rustc reachable: the install must not try to build anything.
const noRust = process.env.PATH.split(delimiter).filter((p) => !existsSync(join(p, 'cargo')) && !existsSync(join(p, 'rustc')))
const env = { ...process.env, PATH: noRust.join(delimiter) }

/** A consumer project in `work` with `tarballs` installed. */
function consumer (work, name, tarballs, flags = []) {
  const app = join(work, name)
  execFileSync('mkdir', ['-p', app])
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
  execFileSync('npm', ['install', '--no-audit', '--no-fund', ...flags, ...tarballs], { cwd: app, env, stdio: 'pipe' })
  return app
}

test('packed tarballs install without cargo and load through require, the factory and ESM', { timeout: 300_000 }, () => {
  assert.ok(existsSync(join(root, 'npm/linux-x64-gnu/ferrosocket.linux-x64-gnu.node')), 'run `npm run build` first')
  assert.equal(spawnSync('cargo', ['--version'], { env }).error?.code, 'ENOENT', 'cargo still on PATH')
  const work = mkdtempSync(join(tmpdir(), 'ferrosocket-pkg-'))
  try {
    const { main, platform } = pack(work)
    const app = consumer(work, 'app', [platform, main])
    assert.ok(!existsSync(join(app, 'node_modules/ferrosocket/ferrosocket.linux-x64-gnu.node')), 'main package must not carry the binary')
    // Only what users run or read: no tests, sources, benchmark or internal type stubs.
    const shipped = execFileSync('find', ['.', '-type', 'f'], { cwd: join(app, 'node_modules/ferrosocket'), encoding: 'utf8' })
      .split('\n').filter(Boolean).map((f) => f.slice(2)).sort()
    assert.deepEqual(shipped.filter((f) => !f.startsWith('lib/')),
      ['LICENSE', 'README.md', 'binding.js', 'index.d.ts', 'index.js', 'index.mjs', 'package.json'])
    assert.ok(shipped.every((f) => !f.startsWith('lib/') || /\.(js|d\.ts)$/.test(f)), shipped.join(' '))
    const manifest = JSON.parse(readFileSync(join(app, 'node_modules/ferrosocket/package.json'), 'utf8'))
    assert.deepEqual(Object.keys(manifest.optionalDependencies), ['ferrosocket-linux-x64-gnu'])

    // ESM named and default imports, and the CommonJS factory form.
    writeFileSync(join(app, 'entry.mjs'), `
      import ferrosocket, { Server, Namespace, Socket, BroadcastOperator, RemoteSocket, App, SSLApp,
        EngineServer, us_listen_socket_close, us_socket_local_port } from 'ferrosocket'
      import { createRequire } from 'node:module'
      const cjs = createRequire(import.meta.url)('ferrosocket')
      const named = { Server, Namespace, Socket, BroadcastOperator, RemoteSocket, App, SSLApp, EngineServer,
        us_listen_socket_close, us_socket_local_port }
      for (const [k, v] of Object.entries(named)) if (typeof v !== 'function' || v !== cjs[k]) throw new Error(k)
      if (ferrosocket !== cjs) throw new Error('default export is not the CommonJS module')
      const io = cjs(0)
      if (!(io instanceof Server) || !io.httpServer.listening) throw new Error('factory gave no listening Server')
      await io.close()
      process.stdout.write('entry points ok')
    `)
    const e = spawnSync(process.execPath, ['entry.mjs'], { cwd: app, env, encoding: 'utf8', timeout: 20_000 })
    assert.equal(e.status, 0, e.stderr)
    assert.equal(e.stdout, 'entry points ok')

    // The installed types resolve through the exports map, for ESM and CommonJS.
    writeFileSync(join(app, 'typed.mts'), `
      import { Server, type DefaultEventsMap, type RemoteSocket } from 'ferrosocket'
      const io = new Server<DefaultEventsMap, { tick: (n: number) => void }>()
      io.emit('tick', 1)
      // @ts-expect-error tick takes a number
      io.emit('tick', 'one')
      export type R = RemoteSocket<DefaultEventsMap, unknown>
    `)
    writeFileSync(join(app, 'typed.cts'), `
      import { App } from 'ferrosocket'
      App().ws('/*', {}).listen(0, (ls, err) => { if (!ls) throw err })
    `)
    const tsc = join(root, 'node_modules/typescript/bin/tsc')
    const types = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext',
      '--moduleResolution', 'nodenext', '--typeRoots', join(root, 'node_modules/@types'), '--types', 'node',
      'typed.mts', 'typed.cts'], { cwd: app, env, encoding: 'utf8' })
    assert.equal(types.status, 0, types.stdout + types.stderr)

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

    // A platform package that is there but cannot load (a broken or foreign
    // binary) is named as such, with the loader's reason.
    writeFileSync(join(app, 'node_modules/ferrosocket-linux-x64-gnu/ferrosocket.linux-x64-gnu.node'), 'not an ELF file')
    const broken = spawnSync(process.execPath, ['-e', `
      try { require('ferrosocket') } catch (e) { process.stdout.write(JSON.stringify({ code: e.code, message: e.message })) }
    `], { cwd: app, env, encoding: 'utf8', timeout: 20_000 })
    const b = JSON.parse(broken.stdout)
    assert.equal(b.code, 'FERROSOCKET_NO_BINARY')
    assert.match(b.message, /ferrosocket-linux-x64-gnu is installed but did not load \(.*(ELF|invalid|too short)/)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
})

test('without its platform package, require names the missing package and how to get it', { timeout: 300_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'ferrosocket-pkg-'))
  try {
    const { main } = pack(work)
    const app = consumer(work, 'app', [main], ['--omit=optional'])
    assert.ok(!existsSync(join(app, 'node_modules/ferrosocket-linux-x64-gnu')))
    const r = spawnSync(process.execPath, ['-e', `
      try { require('ferrosocket') } catch (e) { process.stdout.write(JSON.stringify({ code: e.code, message: e.message })) }
    `], { cwd: app, env, encoding: 'utf8', timeout: 20_000 })
    assert.equal(r.status, 0, r.stderr)
    const err = JSON.parse(r.stdout)
    assert.equal(err.code, 'FERROSOCKET_NO_BINARY')
    assert.match(err.message, /platform package ferrosocket-linux-x64-gnu is not installed/)
    assert.match(err.message, /--omit=optional/)
    assert.match(err.message, /npm ci && npm run build/)
    assert.doesNotMatch(err.message, /npm has a bug/)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
})
