// A small dotenv reader (the godotenv subset people use): KEY=VALUE lines, `export ` prefix, # comments,
// 'literal' and "escaped\n" values, ${VAR} in unquoted and double-quoted values. Never overwrites a set variable.
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { expandString, type EnvLookup } from './expand.js';

const KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const DOUBLE_QUOTE_ESCAPES: Readonly<Record<string, string>> = { n: '\n', r: '\r', t: '\t' };

/** Parses dotenv text. `file` only names the file in errors. Later keys win; ${VAR} sees earlier keys, then `env`. */
export function parseDotenv(text: string, file = '.env', env: NodeJS.ProcessEnv = {}): Record<string, string> {
  const result: Record<string, string> = {};
  const lookup: EnvLookup = (name) => result[name] ?? env[name];
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const lineNumber = index + 1;
    const assignment = line.startsWith('export ') ? line.slice('export '.length).trimStart() : line;
    const equals = assignment.indexOf('=');
    const key = equals === -1 ? '' : assignment.slice(0, equals).trim();
    if (!KEY.test(key)) throw new ConfigError(`expected KEY=VALUE, got ${JSON.stringify(line)}`, { file, line: lineNumber });
    const rest = assignment.slice(equals + 1).trimStart();
    const value = readValue(rest, lines, index, file);
    index = value.lastLine;
    result[key] = value.quote === "'" ? value.text : expandUnlessEscaped(value.text, lookup);
  }
  return result;
}

/** ${VAR} expansion where a backslash-dollar stands for a literal "$". */
function expandUnlessEscaped(text: string, lookup: EnvLookup): string {
  return text
    .split('\\$')
    .map((part) => expandString(part, lookup))
    .join('$');
}

interface RawValue {
  text: string;
  quote: '"' | "'" | '';
  /** Index of the last line the value used (quoted values may span lines). */
  lastLine: number;
}

function readValue(rest: string, lines: readonly string[], index: number, file: string): RawValue {
  const quote = rest[0];
  if (quote !== '"' && quote !== "'") return { text: stripInlineComment(rest), quote: '', lastLine: index };
  let body = rest.slice(1);
  let lastLine = index;
  for (;;) {
    const close = findClosingQuote(body, quote);
    if (close !== -1) {
      const inner = body.slice(0, close);
      return { text: quote === '"' ? unescapeDoubleQuoted(inner) : inner, quote, lastLine };
    }
    lastLine++;
    if (lastLine >= lines.length) throw new ConfigError(`unterminated ${quote} quote`, { file, line: index + 1 });
    body += '\n' + lines[lastLine];
  }
}

function findClosingQuote(body: string, quote: string): number {
  for (let at = 0; at < body.length; at++) {
    if (quote === '"' && body[at] === '\\') at++;
    else if (body[at] === quote) return at;
  }
  return -1;
}

function unescapeDoubleQuoted(text: string): string {
  return text.replace(/\\(.)/gs, (match, char: string) => {
    if (char === '$') return match; // "\$" keeps its backslash, as godotenv does
    return DOUBLE_QUOTE_ESCAPES[char] ?? char;
  });
}

/** Unquoted values end at " #" (a comment); a "#" inside a word stays. */
function stripInlineComment(text: string): string {
  const comment = text.search(/\s#/);
  return (comment === -1 ? text : text.slice(0, comment)).trim();
}

/**
 * Loads a dotenv file into `env` without overwriting variables already set there. Returns the names it set.
 * A missing or unreadable file is a ConfigError.
 */
export function loadDotenv(path: string, env: NodeJS.ProcessEnv): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`unable to read the dotenv file: ${(error as Error).message}`, { file: path });
  }
  const added: string[] = [];
  for (const [key, value] of Object.entries(parseDotenv(text, path, env))) {
    if (env[key] !== undefined) continue;
    env[key] = value;
    added.push(key);
  }
  return added;
}
