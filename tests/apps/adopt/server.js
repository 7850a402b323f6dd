// A plain Node `http` app that binds its own fixed port and knows nothing of baton.
//
// Usage: node server.js PORT [HOST]   (HOST defaults to 127.0.0.1; "::" or "0.0.0.0" for wildcards)
//
// It answers every request with "node pid=<pid>" and, on SIGTERM, stops accepting, lets the
// requests in flight finish and exits: the ordinary graceful shutdown of a Node server.
'use strict';
const http = require('http');

const port = Number(process.argv[2]);
const host = process.argv[3] || '127.0.0.1';
const server = http.createServer((req, res) => {
  const body = `node pid=${process.pid}\n`;
  res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body)});
  res.end(body);
});
server.listen(port, host, () => {
  const a = server.address();
  console.log(`listening on ${a.address}:${a.port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
