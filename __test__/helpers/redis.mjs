// A real redis-server for a test, on a free loopback port, stopped by PID
// when the test ends. The Debian package (redis-server) is a prerequisite,
// as .ci/run installs it.
import { spawn } from 'node:child_process'
import net from 'node:net'

function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** Starts redis-server; resolves with its URL once it accepts connections. */
export async function startRedis (t) {
  const port = await freePort()
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
  return `redis://127.0.0.1:${port}`
}
