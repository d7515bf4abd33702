'use strict'
// Copies the freshly built addon into the platform package folder, so that
// `npm pack npm/linux-x64-gnu` ships exactly what the tests ran against,
// together with the project's LICENSE (one copy in git, at the root).
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const name = 'ferrosocket.linux-x64-gnu.node'
for (const file of [name, 'LICENSE']) {
  fs.copyFileSync(path.join(root, file), path.join(root, 'npm', 'linux-x64-gnu', file))
}
