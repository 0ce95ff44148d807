#!/usr/bin/env node
import { main } from '../dist/src/cli/main.js';

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything is closed by now; a handle some library forgot must not keep a stopped node alive.
setTimeout(() => process.exit(code), 3000).unref();
