/** `whale keys`: create, list and revoke API keys in a keys file (only hashes are stored). */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { WhaleError } from '../common/errors.js';
import { createApiKey, ROLES, type ApiKeyRecord, type Role } from '../config/api-keys.js';
import { readKeysFile } from '../config/auth.js';
import type { CliIO } from './main.js';

export const KEYS_USAGE = `Usage: whale keys create --role user|operator|admin [--tenant NAME] [--name TEXT] [--file FILE]
       whale keys list [--file FILE] [--json]
       whale keys revoke ID [--file FILE]

API keys for the HTTP routes (docs/security-and-privacy.md). 'create' prints a new key once on
stdout (wk_<id>_<secret>) and adds its SHA-256 hash, never the key, to FILE (default
whale.keys.json, created with mode 600). Point the server at the file with auth.keysFile in
whale.config.json or WHALE_API_KEYS_FILE. Roles: user (inference and feedback when
auth.inference is 'keyed'), operator (also routes that change state, e.g. quotas), admin.
A key with --tenant counts its requests against that tenant's quotas and fair share.
Exit codes: 0 ok, 2 usage error.
`;

const DEFAULT_FILE = 'whale.keys.json';

export function keysCommand(argv: string[], io: CliIO): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      role: { type: 'string' },
      tenant: { type: 'string' },
      name: { type: 'string' },
      file: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(KEYS_USAGE);
    return 0;
  }
  const [action, ...rest] = positionals;
  const file = values.file ?? DEFAULT_FILE;
  const usage = (msg: string): never => {
    throw new WhaleError('ERR_INVALID_ARG', `${msg} (whale keys --help)`, { field: 'argv' });
  };
  const load = (): ApiKeyRecord[] => (existsSync(file) ? readKeysFile(file, file) : []);
  if (action === 'create') {
    if (rest.length > 0) usage(`unexpected argument '${rest[0]}'`);
    if (!ROLES.includes(values.role as Role)) usage(`--role: must be one of ${ROLES.join(', ')}`);
    const records = load();
    const { key, record } = createApiKey(values.role as Role, {
      ...(values.tenant === undefined ? {} : { tenant: values.tenant }),
      ...(values.name === undefined ? {} : { name: values.name }),
    });
    save(file, [...records, record]);
    io.out(`${key}\n`);
    io.err(
      `whale keys: key ${record.id} (role ${record.role}${record.tenant ? `, tenant ${record.tenant}` : ''}) added to ${file}; it is shown only now\n`,
    );
    return 0;
  }
  if (action === 'list') {
    if (rest.length > 0) usage(`unexpected argument '${rest[0]}'`);
    const records = load().map(({ hash: _hash, ...r }) => r);
    if (values.json) io.out(`${JSON.stringify(records)}\n`);
    else
      for (const r of records)
        io.out(`${r.id}  ${r.role.padEnd(8)} ${r.tenant ?? '-'}${r.name ? `  ${r.name}` : ''}\n`);
    return 0;
  }
  if (action === 'revoke') {
    if (rest.length !== 1) usage('revoke takes one key id');
    const records = load();
    const kept = records.filter((r) => r.id !== rest[0]);
    if (kept.length === records.length)
      throw new WhaleError('ERR_NOT_FOUND', `no key '${rest[0]}' in ${file}`, { field: 'id' });
    save(file, kept);
    io.err(`whale keys: key ${rest[0]} removed from ${file} (a running server reads its keys at start)\n`);
    return 0;
  }
  return usage(action === undefined ? 'give an action: create, list or revoke' : `unknown action '${action}'`);
}

function save(file: string, records: ApiKeyRecord[]): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(records, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}
