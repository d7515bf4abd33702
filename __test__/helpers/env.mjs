// True when the specs run against a reference implementation (FERRO_IMPL set)
// rather than ferrosocket. Tests of ferrosocket-only behaviour skip on it.
export const UNDER_REFERENCE = Boolean(process.env.FERRO_IMPL)

// Skip option for node:test: `test(name, { skip: ferroOnly('why') }, fn)`.
// The reason shows in the test output next to the test name.
// FERRO_RUN_ALL=1 runs these against the reference too, to see exactly how
// the reference differs.
export function ferroOnly (reason) {
  return UNDER_REFERENCE && !process.env.FERRO_RUN_ALL ? `ferrosocket-only: ${reason}` : false
}

// Rejects after `ms` with a message naming what was awaited, so a hung
// await fails with a useful message instead of the generic test timeout.
export function withTimeout (promise, ms, what) {
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Polls `predicate` every 10 ms until it returns truthy or `ms` runs out.
export async function waitFor (predicate, ms, what) {
  const deadline = Date.now() + ms
  for (;;) {
    const value = predicate()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await delay(10)
  }
}
