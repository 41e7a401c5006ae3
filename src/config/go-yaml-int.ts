// Plain scalars that start like numbers resolve as RoadRunner's YAML reader (Go's yaml.v3) resolves them: `0755`
// is octal 493, `0x1F`, `0o17`, `0b101` and `1_000` are ints, and what is no int is a float or stays a string.
import type { ScalarTag } from 'yaml';

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/** strconv.ParseInt/ParseUint(text, 0, 64): the sign, then 0x, 0o, 0b, a leading 0 (octal) or decimal digits. */
const GO_INT = /^([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/;
/** yaml.v3's yamlStyleFloat, tried when the text is no int (`09`, `1e3`, `1_000.5`). */
const GO_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
/** The scalars yaml.v3 sends down its int path: a digit first, after an optional sign (underscores go first). */
const NUMBER_LIKE = /^[-+]?_*[0-9][0-9a-zA-Z_.+-]*$/;

function goInt(plain: string): bigint | null {
  const match = GO_INT.exec(plain);
  if (!match) return null;
  const digits = match[2]!;
  // BigInt reads 0x, 0o and 0b itself; a leading 0 means octal to Go
  const magnitude = /^0[0-7]+$/.test(digits) ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits.toLowerCase());
  const value = match[1] === '-' ? -magnitude : magnitude;
  // out of int64 and uint64 range, Go's parse fails and the text falls through to the float rule
  return value < INT64_MIN || value > UINT64_MAX ? null : value;
}

/** What yaml.v3 makes of a plain scalar that starts like a number: an int, a float, or the text itself. */
export function resolveGoNumber(text: string): number | string {
  const plain = text.replaceAll('_', '');
  const int = goInt(plain);
  if (int !== null) return Number(int);
  if (GO_FLOAT.test(plain)) return Number(plain);
  // timestamps (`2001-12-14`) and the rest stay strings, as the core schema leaves them
  return text;
}

/** Put first in the schema's tags, so it is tried before YAML 1.2's int and float rules. */
export const goYamlNumber: ScalarTag = {
  identify: (value) => typeof value === 'number' && Number.isInteger(value),
  default: true,
  tag: 'tag:yaml.org,2002:int',
  test: NUMBER_LIKE,
  resolve: (text) => resolveGoNumber(text),
};
