#!/usr/bin/env node
'use strict'
// Benchmark orchestrator (`npm run bench`). Scenarios so far: memory.
//   node benchmark/run.js [--scenario memory] [scenario flags...]
// e.g. node benchmark/run.js --quick
//      node benchmark/run.js --connections 10000 --rounds 3 --servers ferrosocket,uws
const { runMemoryScenario, formatMemoryTable, parseMemoryArgs, USAGE: MEMORY_USAGE } = require('./memory')

const SCENARIOS = {
  memory: { parse: parseMemoryArgs, run: runMemoryScenario, table: formatMemoryTable, usage: MEMORY_USAGE }
}

function splitScenario (argv) {
  const rest = []
  let scenario = 'memory'
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--scenario') scenario = argv[++i]
    else if (argv[i].startsWith('--scenario=')) scenario = argv[i].slice('--scenario='.length)
    else rest.push(argv[i])
  }
  return { scenario, rest }
}

async function main () {
  const { scenario, rest } = splitScenario(process.argv.slice(2))
  const sc = SCENARIOS[scenario]
  if (!sc) {
    console.error(`unknown scenario '${scenario}' (known: ${Object.keys(SCENARIOS).join(', ')})`)
    return 2
  }
  let opts
  try {
    opts = sc.parse(rest)
  } catch (err) {
    console.error(`${err.message}\n${sc.usage.replace('benchmark/memory.js', 'benchmark/run.js [--scenario memory]')}`)
    return 2
  }
  if (opts.help) {
    console.log(sc.usage.replace('benchmark/memory.js', 'benchmark/run.js [--scenario memory]'))
    return 0
  }
  const result = await sc.run(opts)
  console.log(`\n== ${scenario} ==`)
  console.log(sc.table(result))
  return result.errors && result.errors.length ? 1 : 0
}

main().then((code) => { process.exitCode = code }, (err) => {
  console.error(`bench: ${err.stack || err}`)
  process.exitCode = 1
})
