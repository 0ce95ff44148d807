/**
 * Every relative link in README.md and docs/*.md resolves: the file exists and, for a
 * `#anchor`, the target Markdown file has a heading with that GitHub-style slug.
 * Links inside fenced code blocks and inline code are not links.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');

/** The text outside fenced code blocks, line by line (fenced lines become empty, keeping line numbers). */
function proseLines(markdown: string): string[] {
  let fence: string | undefined;
  return markdown.split('\n').map((line) => {
    const m = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (m && m[1]![0] === fence[0] && m[1]!.length >= fence.length && line.trim() === m[1]) fence = undefined;
      return '';
    }
    if (m) {
      fence = m[1]!;
      return '';
    }
    return line;
  });
}

/** GitHub's heading anchor: lower case, punctuation dropped (letters, digits, `_`, `-` and spaces kept), spaces to `-`. */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/`([^`]*)`/g, '$1')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** The anchors a Markdown file defines: one per heading, duplicates numbered `-1`, `-2`, … as GitHub does. */
export function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of proseLines(markdown)) {
    const m = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = githubSlug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

export interface MarkdownLink {
  line: number;
  target: string;
}

/** Inline links and images `[text](target "title")` outside code; targets with a scheme or `//` are external. */
export function relativeLinks(markdown: string): MarkdownLink[] {
  const links: MarkdownLink[] = [];
  proseLines(markdown).forEach((raw, i) => {
    const line = raw.replace(/(`+)[\s\S]*?\1/g, (code) => ' '.repeat(code.length));
    for (const m of line.matchAll(/!?\[(?:[^\]\\]|\\.)*\]\(\s*(?:<([^>]*)>|([^)\s]*))(?:\s+["'(][^)]*)?\)/g)) {
      const target = m[1] ?? m[2]!;
      if (target === '' || /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue;
      links.push({ line: i + 1, target });
    }
  });
  return links;
}

/** What is wrong with each relative link of `file` (empty when every link resolves). */
export function brokenLinks(file: string): string[] {
  const problems: string[] = [];
  for (const { line, target } of relativeLinks(readFileSync(file, 'utf8'))) {
    const hash = target.indexOf('#');
    const path = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
    const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const to = path === '' ? file : resolve(dirname(file), path);
    const where = `${relative(root, file)}:${line}: (${target})`;
    if (!existsSync(to)) {
      problems.push(`${where} no such file ${relative(root, to)}`);
      continue;
    }
    if (anchor === undefined) continue;
    if (statSync(to).isDirectory() || !to.endsWith('.md')) {
      problems.push(`${where} an anchor into ${relative(root, to)}, which is not a Markdown file`);
      continue;
    }
    if (!anchorsOf(readFileSync(to, 'utf8')).has(anchor)) {
      problems.push(`${where} ${relative(root, to)} has no heading with the anchor #${anchor}`);
    }
  }
  return problems;
}

const docs = readdirSync(join(root, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .sort()
  .map((f) => join(root, 'docs', f));

describe('links in README.md and docs/', () => {
  it('finds the pages and their links', () => {
    expect(docs.length).toBeGreaterThanOrEqual(14);
    const readmeLinks = relativeLinks(readFileSync(join(root, 'README.md'), 'utf8')).map((l) => l.target);
    // The README links to every docs page.
    for (const page of docs)
      expect(readmeLinks, `README.md links to ${relative(root, page)}`).toContain(relative(root, page));
  });

  for (const file of [join(root, 'README.md'), ...docs]) {
    it(`every relative link of ${relative(root, file)} resolves`, () => {
      expect(brokenLinks(file)).toEqual([]);
    });
  }

  it('the checker: GitHub slugs, duplicates, code is not a link, external links are skipped', () => {
    expect(githubSlug('The `whale` command')).toBe('the-whale-command');
    expect(githubSlug('whale.config.json')).toBe('whaleconfigjson');
    expect(githubSlug('Knowledge sharing: privacy and encryption')).toBe('knowledge-sharing-privacy-and-encryption');
    expect(githubSlug('Memory: quantized tensors and the tiered cache')).toBe(
      'memory-quantized-tensors-and-the-tiered-cache',
    );
    expect(githubSlug('Services over Kafka (or in-process)')).toBe('services-over-kafka-or-in-process');
    expect(githubSlug('One federated round')).toBe('one-federated-round');
    expect([...anchorsOf('# A\n## Usage\n```\n# not a heading\n```\n### Usage\n')]).toEqual(['a', 'usage', 'usage-1']);
    const md =
      'See [a](a.md#x), ![img](p.png "t"), [web](https://example.com), [mail](mailto:x@y), `[code](no.md)`\n```\n[fenced](no.md)\n```\n[b](<b c.md>)';
    expect(relativeLinks(md)).toEqual([
      { line: 1, target: 'a.md#x' },
      { line: 1, target: 'p.png' },
      { line: 5, target: 'b c.md' },
    ]);
  });

  it('the checker reports a missing file, a missing anchor and an anchor into a non-Markdown file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'whale-links-'));
    try {
      writeFileSync(join(dir, 'a.md'), '# Page A\n## Two words\n');
      writeFileSync(join(dir, 'x.txt'), 'x');
      writeFileSync(
        join(dir, 'b.md'),
        '# B\n[ok](a.md#two-words) [self](#b) [gone](c.md) [no anchor](a.md#three) [txt](x.txt#y) [dir](.)\n',
      );
      const problems = brokenLinks(join(dir, 'b.md'));
      expect(problems).toHaveLength(3);
      expect(problems[0]).toMatch(/\(c\.md\) no such file/);
      expect(problems[1]).toMatch(/\(a\.md#three\) .*a\.md has no heading with the anchor #three/);
      expect(problems[2]).toMatch(/\(x\.txt#y\) an anchor into .*x\.txt, which is not a Markdown file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
