// ${VAR}, $VAR and ${VAR:-default} substitution over a parsed config document (docs/compatibility.md §1.2).
// Same scanning rules as Go's os.Expand, but each reference is expanded on its own (no rr "mixed forms" quirk).

export type EnvLookup = (name: string) => string | undefined;

const DEFAULT_SEPARATOR = ':-';
/** Go treats these as one-character shell variables: `$1`, `$$`, `${?}`. */
const SPECIAL = new Set(['*', '#', '$', '@', '!', '?', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
const NAME_CHAR = /[A-Za-z0-9_]/;

export function envLookup(env: NodeJS.ProcessEnv): EnvLookup {
  return (name) => env[name];
}

/** Expands every string (map values and list items, at any depth); keys are left alone. Returns a new tree. */
export function expandTree(value: unknown, lookup: EnvLookup): unknown {
  if (typeof value === 'string') return expandString(value, lookup);
  if (Array.isArray(value)) return value.map((item) => expandTree(item, lookup));
  if (typeof value === 'object' && value !== null) {
    const result: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) result[key] = expandTree(item, lookup);
    return result;
  }
  return value;
}

/** Unset variables (without a default) become "". The default is used when the variable is unset or empty. */
export function expandString(text: string, lookup: EnvLookup): string {
  if (!text.includes('$')) return text;
  let out = '';
  let copiedUpTo = 0;
  for (let at = 0; at < text.length - 1; at++) {
    if (text[at] !== '$') continue;
    out += text.slice(copiedUpTo, at);
    const ref = readReference(text, at + 1);
    if (ref.name !== '') out += resolve(ref.name, lookup);
    else if (ref.width === 0) out += '$'; // "$" not followed by a name stays as it is
    at += ref.width;
    copiedUpTo = at + 1;
  }
  return out + text.slice(copiedUpTo);
}

function resolve(reference: string, lookup: EnvLookup): string {
  const split = reference.indexOf(DEFAULT_SEPARATOR);
  if (split === -1) return lookup(reference) ?? '';
  const value = lookup(reference.slice(0, split));
  return value === undefined || value === '' ? reference.slice(split + DEFAULT_SEPARATOR.length) : value;
}

/** The name after a `$` and how many characters it used (Go's getShellName); an empty name with width > 0 is bad syntax, eaten. */
function readReference(text: string, start: number): { name: string; width: number } {
  const first = text[start]!;
  if (first === '{') return readBraced(text, start);
  if (SPECIAL.has(first)) return { name: first, width: 1 };
  let end = start;
  while (end < text.length && NAME_CHAR.test(text[end]!)) end++;
  return { name: text.slice(start, end), width: end - start };
}

function readBraced(text: string, start: number): { name: string; width: number } {
  if (SPECIAL.has(text[start + 1] ?? '') && text[start + 2] === '}') return { name: text[start + 1]!, width: 3 };
  const close = text.indexOf('}', start + 1);
  if (close === -1) return { name: '', width: 1 }; // "${" without "}": eat "${"
  if (close === start + 1) return { name: '', width: 2 }; // "${}": eat it
  return { name: text.slice(start + 1, close), width: close - start + 1 };
}
