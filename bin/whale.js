#!/usr/bin/env node
import { main } from '../dist/src/cli/main.js';

// A reader that stops early (`whale anomaly big.csv | head -1`) closes our stdout: a normal end, not a crash.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything is closed by now; a handle some library forgot must not keep a stopped node alive.
setTimeout(() => process.exit(code), 3000).unref();
