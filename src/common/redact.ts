/**
 * What an anonymous client may read of a server-side message: absolute
 * filesystem paths (POSIX, Windows, file:// URLs) are replaced by `<path>`.
 * Logs and the operator's console keep the full text; HTTP answers, health
 * reasons and model metadata go through here (docs/safety.md, "What clients see").
 */

/** An absolute path: a `/` or `X:\` not preceded by a word character, `.`, `:` or `/` (so URLs and relative paths stay). */
const ABSOLUTE_PATH = /(?<![\w.:/\\-])(?:file:\/\/)?(?:[A-Za-z]:)?(?:[\\/](?:[\w.@+~-]|%[0-9A-Fa-f]{2})+)+[\\/]?/g;

/** A quoted absolute path (may hold spaces): 'C:\\a b\\c', "/a b/c". */
const QUOTED_PATH = /(['"`])(?:file:\/\/)?(?:[A-Za-z]:)?[\\/][^'"`\n]*\1/g;

/** `text` with every absolute filesystem path replaced by `<path>`. */
export function redactPaths(text: string): string {
  return text.replace(QUOTED_PATH, '$1<path>$1').replace(ABSOLUTE_PATH, '<path>');
}
