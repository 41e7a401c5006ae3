// Takes a worker command apart for fork mode: the php binary, its flags, the script and the script's arguments.
// The fork master needs them separately; a command it cannot take apart is a config error that says how to write it.
import { basename } from 'node:path';
import { ConfigError } from '../errors.js';

export interface PhpCommand {
  php: string;
  /** interpreter flags, e.g. ['-d', 'memory_limit=256M'] */
  flags: string[];
  /** the script as written (relative to the working directory) */
  script: string;
  args: string[];
}

const PHP_BINARY = /^php(\d+(\.\d+)*)?(-cli)?$/;
/** php-cli flags that take a value, attached (-dfoo=1) or as the next word. */
const WITH_VALUE = new Set(['-d', '-c', '-z']);
const PLAIN = new Set(['-n', '-q', '-e', '-H', '-C']);

const HOW = 'write it as "php [-d key=value …] path/to/worker.php [args]"';

/** The parts of a php invocation; a ConfigError (without a place: the caller knows the key) saying why it is not one. */
export function parsePhpCommand(argv: readonly string[]): PhpCommand {
  const [php, ...rest] = argv;
  if (!php || !PHP_BINARY.test(basename(php))) {
    throw new ConfigError(`fork mode starts the PHP master itself, so the command must run php directly; got ${JSON.stringify(argv.join(' '))}: ${HOW}`);
  }
  const flags: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i]!;
    if (word === '-f') {
      const script = rest[i + 1];
      if (!script) throw new ConfigError(`'-f' needs a script: ${HOW}`);
      return { php, flags, script, args: rest.slice(i + 2).filter((a, j) => !(j === 0 && a === '--')) };
    }
    if (!word.startsWith('-') || word === '-') {
      return { php, flags, script: word, args: rest.slice(i + 1) };
    }
    const head = word.slice(0, 2);
    if (WITH_VALUE.has(head)) {
      if (word.length > 2) flags.push(word);
      else {
        const value = rest[i + 1];
        if (value === undefined) throw new ConfigError(`'${word}' needs a value: ${HOW}`);
        flags.push(word, value);
        i++;
      }
      continue;
    }
    if (PLAIN.has(word)) {
      flags.push(word);
      continue;
    }
    throw new ConfigError(`fork mode cannot use the php flag '${word}' in ${JSON.stringify(argv.join(' '))}: ${HOW}`);
  }
  throw new ConfigError(`no worker script in ${JSON.stringify(argv.join(' '))}: ${HOW}`);
}
