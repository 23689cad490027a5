'use strict';
const http = require('http');

const server = http.createServer((req, res) => {
  let status = 200;
  let body;
  try {
    if (req.url === '/') {
      body = 'hello from node\n';
    } else if (req.url === '/version') {
      // Loaded on the first call only: the recording of "/" never sees these files.
      const check = require('./lib/check.js');
      body = check.report('1.4.2', '^1.2.0', 'data.json');
    } else {
      status = 404;
      body = 'not found\n';
    }
  } catch (err) {
    status = 500;
    body = `error: ${err.code || err.message}\n`;
  }
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Connection': 'close' });
  res.end(body);
});

server.listen(8080, '0.0.0.0');
