'use strict';
// A module of the app that pulls in Debian-packaged modules and a built-in.
const crypto = require('node:crypto');
const semver = require('semver');
const mime = require('mime');

function report(version, range, file) {
  const ok = semver.satisfies(version, range);
  const next = semver.inc(version, 'minor');
  const type = mime.getType(file);
  const digest = crypto.createHash('sha256').update(`${version} ${range}`).digest('hex');
  return `${version} satisfies ${range}: ${ok}; next minor ${next}; ${file} is ${type}; ` +
    `sha256 ${digest.slice(0, 16)}\n`;
}

module.exports = { report };
