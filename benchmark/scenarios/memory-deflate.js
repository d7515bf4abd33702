'use strict'
// Idle memory with permessage-deflate negotiated (issue #15): the memory
// scenario with every server asked for compression (`--compress`:
// ferrosocket and uWS.js SHARED_COMPRESSOR, socket.io and ws
// perMessageDeflate with their defaults) and every client offering it, so
// each connection carries what its server keeps for compression.
const memory = require('./memory')

module.exports = {
  ...memory,
  name: 'memory-deflate',
  title: 'Idle memory with permessage-deflate',
  params: { ...memory.params, connections: 5000, compress: true },
  describe: (p) => `${p.connections} idle connections per server with permessage-deflate negotiated, server RSS growth after GC`,
  tables: memory.tables.map((t) => ({
    ...t,
    id: 'memory-deflate',
    title: 'Idle memory with permessage-deflate: server RSS per connection',
    note: (p) => `${t.note(p)} Every client offers permessage-deflate; servers run with compression on ` +
      '(ferrosocket, uWS.js: SHARED_COMPRESSOR; socket.io, ws: perMessageDeflate: true).'
  }))
}
