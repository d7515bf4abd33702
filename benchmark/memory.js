#!/usr/bin/env node
'use strict'
// The idle-memory scenario on its own: `node benchmark/memory.js [flags]` is
// `node benchmark/run.js --scenario memory [flags]` (see run.js --help).
// The scenario itself lives in scenarios/memory.js.
require('./run').main(['--scenario', 'memory', ...process.argv.slice(2)]).then((code) => { process.exitCode = code }, (err) => {
  console.error(`memory: ${err.stack || err}`)
  process.exitCode = 1
})
