'use strict'
// uWebSockets.js, from the npm package @trufflesuite/uws-js-unofficial.
//
// That package's loader (src/uws.js) requires
// binaries/uws_<platform>_<arch>_<ABI>.node and, if that fails (or if
// UWS_USE_FALLBACK is set), silently returns a TypeScript re-implementation
// built on the `ws` package (dist/index.js). Measuring that fallback as
// "uWS" would be meaningless, so this server refuses to start unless the
// native binary is what got loaded.
const fs = require('node:fs')
const path = require('node:path')
const { fail } = require('./control')
const { runUwsStyleServer } = require('./uws-style')

const PKG = '@trufflesuite/uws-js-unofficial'

function loadNativeUws () {
  if (process.env.UWS_USE_FALLBACK !== undefined) {
    fail(`UWS_USE_FALLBACK=${process.env.UWS_USE_FALLBACK} is set: it would select the ws-based fallback; unset it`)
  }
  let pkgDir
  try {
    pkgDir = path.dirname(require.resolve(`${PKG}/package.json`))
  } catch {
    fail(`${PKG} is not installed (npm install --save-dev ${PKG})`)
  }
  const pkg = require(path.join(pkgDir, 'package.json'))
  const binary = path.join(pkgDir, 'binaries',
    `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`)
  if (!fs.existsSync(binary)) {
    fail(`${PKG}@${pkg.version} ships no native binary for ${process.platform}-${process.arch} ABI ${process.versions.modules} (${binary}); it would fall back to ws`)
  }
  // Keep the loader's fallback warning visible but on stderr only.
  const uws = require(PKG)
  const cached = require.cache[binary]
  const fallbackLoaded = Object.keys(require.cache).some((k) => k.startsWith(path.join(pkgDir, 'dist') + path.sep))
  if (!cached || cached.exports !== uws || fallbackLoaded) {
    fail(`${PKG} did not load its native binary ${binary} (fallback to the ws-based implementation detected)`)
  }
  // And the shared object is really mapped into this process.
  const maps = fs.readFileSync('/proc/self/maps', 'utf8')
  if (!maps.includes(fs.realpathSync(binary))) {
    fail(`native uWS binary ${binary} is not mapped into the process`)
  }
  // Only the native addon has these (the fallback exports App, _cfg and the two us_* helpers).
  for (const name of ['SSLApp', 'DEDICATED_COMPRESSOR_3KB', 'getParts']) {
    if (!(name in uws)) fail(`loaded uWS lacks ${name}: not the native addon`)
  }
  return { uws, version: pkg.version, binary }
}

const { uws, version, binary } = loadNativeUws()
runUwsStyleServer(uws, { name: 'uws', impl: 'uws-native', version, binary: path.basename(binary) })
