'use strict'
// Broadcast fan-out with permessage-deflate (issue #15): the broadcast
// scenario with compression negotiated and messages large enough for every
// server to compress them (socket.io and ws skip messages under 1 KiB by
// default). ferrosocket and uWS.js publish with `compress` on a
// SHARED_COMPRESSOR route (one compression per message, shared by all
// subscribers); socket.io and ws compress per connection.
const broadcast = require('./broadcast')

module.exports = {
  ...broadcast,
  name: 'broadcast-deflate',
  title: 'Broadcast fan-out with permessage-deflate',
  params: { ...broadcast.params, connections: 2000, messages: 50, bytes: 2048, compress: true },
  quickParams: { connections: 100, messages: 10, hold: 20 },
  describe: (p) => `${p.connections} clients x ${p.messages} compressed broadcasts of ${p.bytes} B JSON`,
  tables: broadcast.tables.map((t) => ({
    ...t,
    id: 'broadcast-deflate',
    title: 'Broadcast fan-out with permessage-deflate: deliveries per second',
    note: (p) => `${t.note(p)} permessage-deflate negotiated by every client; messages sent compressed.`
  }))
}
