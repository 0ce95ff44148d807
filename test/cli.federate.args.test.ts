// `whale federate` argument parsing: robust-aggregation options reach the run options, bad values name the flag.
import { describe, expect, it } from 'vitest';

import { parseFederateArgs } from '../src/cli/federate.js';
import { expectWhaleError } from './helpers.js';

describe('whale federate arguments', () => {
  it('passes multi-krum with --byzantine and trimmed mean with --trim', () => {
    const k = parseFederateArgs(['--strategy', 'multi-krum', '--byzantine', '2']);
    expect(k.strategy).toBe('multi-krum');
    expect(k.byzantine).toBe(2);
    const t = parseFederateArgs(['--strategy', 'trimmed-mean', '--trim', '0.2']);
    expect(t.strategy).toBe('trimmed-mean');
    expect(t.trim).toBe(0.2);
    const d = parseFederateArgs([]);
    expect(d.strategy).toBe('fedavg');
    expect('byzantine' in d).toBe(false);
    expect('trim' in d).toBe(false);
  });

  it('refuses bad values with ERR_CONFIG naming the flag', async () => {
    await expectWhaleError(() => parseFederateArgs(['--trim', '0.5']), 'ERR_CONFIG', 'trim');
    await expectWhaleError(() => parseFederateArgs(['--byzantine=-1']), 'ERR_CONFIG', 'byzantine');
    await expectWhaleError(() => parseFederateArgs(['--byzantine', '1.5']), 'ERR_CONFIG', 'byzantine');
    await expectWhaleError(() => parseFederateArgs(['--strategy', 'bulyan']), 'ERR_CONFIG', 'strategy');
    // 10 selected per round (100 x 0.1): Krum tolerates at most F = 3.
    expect(parseFederateArgs(['--strategy', 'krum', '--byzantine', '3']).byzantine).toBe(3);
    await expectWhaleError(
      () => parseFederateArgs(['--strategy', 'krum', '--byzantine', '4']),
      'ERR_CONFIG',
      'byzantine',
    );
  });

  it('--json is a switch (JSON lines on stdout) and --out FILE writes the file, as in every command', async () => {
    expect(parseFederateArgs(['--json'])).toMatchObject({ json: true });
    expect(parseFederateArgs(['--out', 'run.json'])).toMatchObject({ out: 'run.json' });
    expect('json' in parseFederateArgs([])).toBe(false);
    expect(() => parseFederateArgs(['--json', 'run.json'])).toThrow(/Unexpected argument 'run.json'/);
  });
});
