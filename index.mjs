// ESM entry (package.json "exports" -> "import"). Node cannot see named
// exports through index.js's Object.assign, so they are listed here; the
// default export is the same object `require('ferrosocket')` returns, the
// socket.io-style factory. __test__/esm.spec.mjs keeps this list equal to
// the CommonJS keys.
import ferrosocket from './index.js'

export const {
  App,
  SSLApp,
  us_listen_socket_close, // eslint-disable-line camelcase
  us_socket_local_port, // eslint-disable-line camelcase
  DISABLED,
  SHARED_COMPRESSOR,
  SHARED_DECOMPRESSOR,
  DEDICATED_COMPRESSOR,
  DEDICATED_COMPRESSOR_3KB,
  DEDICATED_COMPRESSOR_4KB,
  DEDICATED_COMPRESSOR_8KB,
  DEDICATED_COMPRESSOR_16KB,
  DEDICATED_COMPRESSOR_32KB,
  DEDICATED_COMPRESSOR_64KB,
  DEDICATED_COMPRESSOR_128KB,
  DEDICATED_COMPRESSOR_256KB,
  DEDICATED_DECOMPRESSOR,
  DEDICATED_DECOMPRESSOR_32KB,
  DEDICATED_DECOMPRESSOR_16KB,
  DEDICATED_DECOMPRESSOR_8KB,
  DEDICATED_DECOMPRESSOR_4KB,
  DEDICATED_DECOMPRESSOR_2KB,
  DEDICATED_DECOMPRESSOR_1KB,
  DEDICATED_DECOMPRESSOR_512B,
  LIBUS_LISTEN_DEFAULT,
  LIBUS_LISTEN_EXCLUSIVE_PORT,
  Server,
  Namespace,
  Socket,
  BroadcastOperator,
  RemoteSocket,
  createRedisAdapter,
  EngineServer,
  EngineSocket,
  version
} = ferrosocket

export default ferrosocket
