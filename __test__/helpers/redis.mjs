// A real redis-server for a test, on a free loopback port, stopped by PID
// when the test ends. The Debian package (redis-server) is a prerequisite,
// as .ci/run installs it.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'

// The benchmark's own: a free loopback port (closed again for the caller).
const { freePort } = createRequire(import.meta.url)('../../benchmark/harness.js')

/** Starts redis-server; resolves with its URL once it accepts connections. */
export async function startRedis (t) {
  const { url } = await startRedisOn(t, await freePort())
  return url
}

/**
 * Starts redis-server on `port` (again, after a `stop()`, to restart it),
 * with `extra` arguments:
 * resolves with its URL and `stop()`, which kills it and waits for the exit.
 */
export async function startRedisOn (t, port, extra = []) {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.after(() => child.kill('SIGKILL'))
  let out = ''
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10000)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`redis-server could not run (install the redis-server package): ${err.message}`))
    })
    // It exits at once when it cannot listen: say so then, not at the timeout.
    child.once('exit', () => {
      clearTimeout(timer)
      reject(new Error(`redis-server did not start: ${out}`))
    })
    child.stdout.on('data', (d) => {
      out += d
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill('SIGKILL')
  })
  return { url: `redis://127.0.0.1:${port}`, port, stop }
}

export { freePort }

/**
 * A Redis cluster of `n` primaries (no replicas) on loopback, each node
 * with its own free client and bus ports and a scratch directory for its
 * cluster file; slots assigned by `redis-cli --cluster create`. Resolves
 * with the `redis-cluster://` URL naming every node, and the nodes' ports,
 * once every node reports `cluster_state:ok`.
 */
export async function startRedisCluster (t, n = 3) {
  const { mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const dir = mkdtempSync(join(tmpdir(), 'ferrosocket-redis-cluster-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const ports = []
  for (let i = 0; i < n; i++) {
    // A free port is free when asked, not when redis binds it: another
    // test's connection can take it in between ("Address already in use",
    // seen on a fresh-machine run). Then new ports, up to 5 times.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort()
      const bus = await freePort()
      try {
        await startRedisOn(t, port, ['--cluster-enabled', 'yes', '--cluster-port', String(bus),
          '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir])
        ports.push(port)
        break
      } catch (err) {
        if (attempt >= 5 || !/Address already in use/.test(err.message)) throw err
      }
    }
  }
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'])
  for (let i = 0; i < 250; i++) {
    const infos = await Promise.all(ports.map((p) => run('redis-cli', ['-p', String(p), 'cluster', 'info'])))
    if (infos.every((info) => info.includes('cluster_state:ok'))) {
      const [first, ...rest] = ports
      return { url: `redis-cluster://127.0.0.1:${first}?${rest.map((p) => `node=127.0.0.1:${p}`).join('&')}`, ports }
    }
    await new Promise((resolve) => setTimeout(resolve, 40))
  }
  throw new Error(`the Redis cluster on ports ${ports.join(', ')} did not reach cluster_state:ok`)
}

function run (cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { out += d })
    child.once('error', reject)
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${out}`))))
  })
}

/**
 * A redis-server speaking only TLS (`--tls-port`, client certificates
 * required), with a throwaway CA, server and client certificates made by
 * openssl in a scratch directory. Resolves with the `rediss://` URL and
 * the PEMs: `ca`, and the client's `cert` and `key`.
 */
export async function startRedisTls (t) {
  const { mkdtempSync, rmSync, readFileSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const dir = mkdtempSync(join(tmpdir(), 'ferrosocket-redis-tls-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const f = (name) => join(dir, name)
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  await run('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=ferrosocket test CA'])
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n')
  for (const who of ['server', 'client']) {
    await run('openssl', ['req', ...ec, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${who}`])
    await run('openssl', ['x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
      '-out', f(`${who}.pem`), '-days', '1', '-extfile', f('ext.cnf')])
  }
  const port = await freePort()
  await startRedisOn(t, port, ['--port', '0', '--tls-port', String(port), '--tls-cert-file', f('server.pem'),
    '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.pem'), '--tls-auth-clients', 'yes'])
  const read = (name) => readFileSync(f(name), 'utf8')
  return { url: `rediss://127.0.0.1:${port}`, port, ca: read('ca.pem'), cert: read('client.pem'), key: read('client.key') }
}
