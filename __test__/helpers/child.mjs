// Runs a script in a child Node process with `uWS` bound to the
// implementation under test (ferrosocket, or FERRO_IMPL).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const implPath = process.env.FERRO_IMPL ?? fileURLToPath(new URL('../..', import.meta.url))

// Resolves { code, signal, stdout, stderr } when the child exits; rejects
// (after SIGKILL) when it is still alive after `ms`. onLine(line) sees each
// stdout line as it arrives. The child gets its own session (detached) so it
// has no controlling terminal: nothing in it can stop to prompt on a tty
// (OpenSSL asks for a PEM passphrase there).
export function runChild (body, ms, onLine) {
  const script = `const uWS = require(${JSON.stringify(implPath)});\n${body}`
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let stdout = ''
    let pending = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
      pending += d
      const lines = pending.split('\n')
      pending = lines.pop()
      for (const line of lines) onLine?.(line)
    })
    child.stderr.on('data', (d) => { stderr += d })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`child still running after ${ms} ms; stderr: ${stderr}`))
    }, ms)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}
