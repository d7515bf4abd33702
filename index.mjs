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
  DEDICATED_COMPRESSOR_3KB,
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
