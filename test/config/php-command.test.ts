// parsePhpCommand: the parts fork mode needs from a worker command, or a ConfigError saying how to write it; and
// the loader placing that error at the key the command came from.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePhpCommand } from '../../src/config/php-command.js';
import { ConfigError } from '../../src/errors.js';
import { loadYamlError } from './tmp.js';

const HOW = 'write it as "php [-d key=value …] path/to/worker.php [args]"';

describe('parsePhpCommand', () => {
  test('takes a php invocation apart: binary, flags, script, arguments', () => {
    assert.deepEqual(parsePhpCommand(['php', 'worker.php']), { php: 'php', flags: [], script: 'worker.php', args: [] });
    assert.deepEqual(parsePhpCommand(['/usr/bin/php8.2', '-d', 'memory_limit=1G', '-dopcache.enable_cli=1', '-n', 'app/worker.php', 'a', '-b']), {
      php: '/usr/bin/php8.2',
      flags: ['-d', 'memory_limit=1G', '-dopcache.enable_cli=1', '-n'],
      script: 'app/worker.php',
      args: ['a', '-b'],
    });
    assert.deepEqual(parsePhpCommand(['php-cli', '-f', 'worker.php', '--', 'x']), { php: 'php-cli', flags: [], script: 'worker.php', args: ['x'] });
  });

  test('a command it cannot take apart throws a ConfigError that says how to write it', () => {
    const cases: Array<[string[], string]> = [
      [['bash', 'start.sh'], `fork mode starts the PHP master itself, so the command must run php directly; got "bash start.sh": ${HOW}`],
      [[], `fork mode starts the PHP master itself, so the command must run php directly; got "": ${HOW}`],
      [['php', '-f'], `'-f' needs a script: ${HOW}`],
      [['php', '-d'], `'-d' needs a value: ${HOW}`],
      [['php', '-r', 'echo 1;'], `fork mode cannot use the php flag '-r' in "php -r echo 1;": ${HOW}`],
      [['php', '-n'], `no worker script in "php -n": ${HOW}`],
    ];
    for (const [argv, message] of cases) {
      assert.throws(
        () => parsePhpCommand(argv),
        (error: unknown) => error instanceof ConfigError && error.message === message && error.key === undefined,
        JSON.stringify(argv),
      );
    }
  });

  test('loadConfig names the key the command came from when fork mode is on', () => {
    const fork = '  fork:\n    enabled: true\n';
    const fromServer = loadYamlError(`version: '3'\nserver:\n  command: bash start.sh\n${fork}http:\n  address: 127.0.0.1:8080\n`);
    assert.equal(fromServer.key, 'server.command');
    assert.equal(fromServer.line, 3);
    assert.match(fromServer.message, /\.rr\.yaml:3, key 'server\.command': fork mode starts the PHP master itself.* \(server\.fork\.enabled is true\)$/);
    const fromPool = loadYamlError(
      `version: '3'\nserver:\n  command: php worker.php\n${fork}http:\n  address: 127.0.0.1:8080\n  pool:\n    command: php -r x\n`,
    );
    assert.equal(fromPool.key, 'http.pool.command');
    assert.match(fromPool.message, /key 'http\.pool\.command': fork mode cannot use the php flag '-r' in "php -r x": .* \(server\.fork\.enabled is true\)$/);
  });
});
