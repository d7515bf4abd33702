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
 * Starts redis-server on `port` (again, after a `stop()`, to restart it):
 * resolves with its URL and `stop()`, which kills it and waits for the exit.
 */
export async function startRedisOn (t, port) {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
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
