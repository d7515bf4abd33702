'use strict'
// Packs the two npm packages for publishing: the platform package
// (npm/linux-x64-gnu, holding the .node built by `npm run build`) and the
// main package, whose published package.json gains the platform package as
// an optional dependency (napi-rs's `prepublish` does the same). The repo's
// package.json does not list it, since it is not on the registry until
// published and `npm ci` would then fail.
//
// usage: node scripts/pack.js [outDir]   -> prints the two tarball paths
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const root = path.join(__dirname, '..')

function npmPack (dir, outDir) {
  const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', outDir], { cwd: dir, encoding: 'utf8' })
  return path.join(outDir, out.trim().split('\n').pop())
}

function pack (outDir) {
  fs.mkdirSync(outDir, { recursive: true })
  const platformDir = path.join(root, 'npm', 'linux-x64-gnu')
  const platformPkg = JSON.parse(fs.readFileSync(path.join(platformDir, 'package.json'), 'utf8'))
  if (!fs.existsSync(path.join(platformDir, platformPkg.main))) {
    throw new Error(`${platformPkg.main} missing in npm/linux-x64-gnu: run \`npm run build\` first`)
  }
  const platform = npmPack(platformDir, outDir)

  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrosocket-stage-'))
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
    for (const f of pkg.files) fs.cpSync(path.join(root, f), path.join(stage, f), { recursive: true })
    delete pkg.devDependencies
    delete pkg.scripts
    pkg.optionalDependencies = { [platformPkg.name]: platformPkg.version }
    fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(pkg, null, 2) + '\n')
    for (const f of ['README.md', 'LICENSE']) fs.copyFileSync(path.join(root, f), path.join(stage, f))
    return { main: npmPack(stage, outDir), platform }
  } finally {
    fs.rmSync(stage, { recursive: true, force: true })
  }
}

module.exports = { pack }

if (require.main === module) {
  const r = pack(path.resolve(process.argv[2] || '.'))
  console.log(r.platform)
  console.log(r.main)
}
