#!/usr/bin/env node
// `prepare` (npm install in a checkout): checks that the native build can run — cmake >= 3.18,
// a C++17 compiler and make or ninja — and otherwise stops with ONE message saying what to install
// on this OS. It never installs anything itself (no apt, no sudo): the test path
// (scripts/ensure-toolchain.sh, run by `npm test` and .ci/run) installs what only the tests need.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? `${r.stdout}${r.stderr}` : undefined;
};

const missing = [];
const cmake = run('cmake', ['--version']);
const version = /cmake version (\d+)\.(\d+)/.exec(cmake ?? '');
if (!version) missing.push('cmake (>= 3.18)');
else if (Number(version[1]) < 3 || (Number(version[1]) === 3 && Number(version[2]) < 18))
  missing.push(`cmake >= 3.18 (found ${version[0]})`);
const cxx =
  process.env.CXX ??
  (run('c++', ['--version'])
    ? 'c++'
    : run('g++', ['--version'])
      ? 'g++'
      : run('clang++', ['--version'])
        ? 'clang++'
        : undefined);
if (!cxx) missing.push('a C++17 compiler (g++ or clang++)');
if (!run('make', ['--version']) && !run('ninja', ['--version'])) missing.push('make (or ninja)');

if (missing.length === 0) process.exit(0);

let osId = process.platform;
if (process.platform === 'linux') {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    const like = /^ID_LIKE=(.*)$/m.exec(text)?.[1] ?? '';
    const id = /^ID=(.*)$/m.exec(text)?.[1] ?? '';
    osId = `${id} ${like}`.replace(/"/g, '');
  } catch {
    /* no os-release: generic advice */
  }
}
const how = /debian|ubuntu/.test(osId)
  ? 'sudo apt-get install cmake g++ make'
  : /rhel|fedora|centos|rocky|alma/.test(osId)
    ? 'sudo dnf install cmake gcc-c++ make'
    : /alpine/.test(osId)
      ? 'sudo apk add cmake g++ make'
      : /suse/.test(osId)
        ? 'sudo zypper install cmake gcc-c++ make'
        : process.platform === 'darwin'
          ? 'xcode-select --install && brew install cmake'
          : 'install cmake (>= 3.18), a C++17 compiler and make with your package manager';
console.error(
  `whale: the native addon needs ${missing.join(', ')}, which this machine lacks. Install them (${how}), then run npm install again.`,
);
process.exit(1);
