<?php

/**
 * rrts fork mode's PHP process: the root, a generation master, a spare or a worker, by the pcntl_fork() branch it came
 * out of (docs/fork-mode.md §2.1). A master requires an optional preload once, then forks workers on request; each
 * becomes `php <script> <args>` as if started fresh, with a warm process and a shared opcache (docs/fork-mode.md §2.2). Started by rrts
 * (src/spawn/fork/root.ts) as
 *   php [-d ...] -d opcache.enable_cli=1 php/master.php --script=<worker.php> [--preload=<file>] [--spares=N]
 *       [--root --control=<socket> [--output=<socket>]] [-- <script args>]
 * with its control channel on fd 3. Every message: docs/protocol.md §6; the classes: lib/Fork/.
 */

declare(strict_types=1);

namespace Rrts\Master;

// What fork mode needs of this PHP, checked before anything else so a missing piece is named, not a fatal error later.
(static function (): void {
    $missing = [];
    foreach (['pcntl' => 'pcntl_fork', 'posix' => 'posix_kill', 'sockets' => 'socket_create'] as $extension => $probe) {
        if (!\extension_loaded($extension)) {
            $missing[] = $extension;
        }
    }
    $disabled = \array_values(\array_intersect(
        ['pcntl_fork', 'pcntl_waitpid', 'pcntl_signal', 'posix_kill', 'socket_create', 'socket_connect'],
        \array_map('trim', \explode(',', (string) \ini_get('disable_functions'))),
    ));
    $ini = \php_ini_loaded_file() ?: 'no php.ini';
    $problems = [];
    if ($missing !== []) {
        $problems[] = 'the PHP binary ' . \PHP_BINARY . ' (' . \PHP_VERSION . ') lacks the extension(s) ' . \implode(', ', $missing)
            . ' (Debian and Ubuntu: apt-get install php-cli, which has them; a build of your own: --enable-pcntl'
            . ' --enable-sockets; and no -n in server.command, which skips the ini files that load them)';
    }
    if ($disabled !== []) {
        $problems[] = \implode(', ', $disabled) . ' ' . (\count($disabled) === 1 ? 'is' : 'are') . ' in disable_functions ('
            . $ini . ', or a -d flag of server.command), and fork mode needs '
            . (\count($disabled) === 1 ? 'it' : 'them') . ': take it out there, or add -d disable_functions= to server.command';
    }
    if ($problems !== []) {
        \fwrite(\STDERR, 'rrts fork mode: ' . \implode('; ', $problems) . "\n");
        exit(78); // EX_CONFIG
    }
    if (!\extension_loaded('Zend OPcache')) {
        \fwrite(\STDERR, 'rrts fork mode: the PHP binary ' . \PHP_BINARY . ' has no opcache (Debian and Ubuntu: apt-get install'
            . ' php-opcache): the workers work, but each compiles the code again instead of sharing one opcache' . "\n");
    }
})();

// The classes live in lib/Fork/ (required by lib/fork-master.php). With opcache on, a short-lived child compiles them
// first, so the root every master is forked from never holds the compiler's scratch pages (docs/fork-mode.md §2.3).
(static function (string $classes): void {
    if (!\function_exists('opcache_compile_file') || !\function_exists('pcntl_fork')
        || !\filter_var(\ini_get('opcache.enable_cli'), \FILTER_VALIDATE_BOOL) || @\opcache_is_script_cached($classes)) {
        return;
    }
    $pid = \pcntl_fork();
    if ($pid === 0) {
        require $classes; // compiles every file it requires into the shared opcache (where it is not full)
        exit(0);
    }
    if ($pid > 0) {
        \pcntl_waitpid($pid, $status);
    }
})(__DIR__ . '/lib/fork-master.php');
require __DIR__ . '/lib/fork-master.php';

// The top level stays free of variables: whatever is defined here would be a global of the preload and the script.
Master::start($_SERVER['argv']);
if (Master::current()->role() === Role::Root) {
    Master::current()->runRoot(); // returns only in a new generation master or the opcache filler
}
if (Master::current()->preloadPath() !== null) {
    require Master::current()->preloadPath(); // at the top level: its variables are globals, as in `php <preload>`
}
Master::current()->announceReady(); // the opcache filler dies here
require Master::current()->serve(); // returns only in a new worker: its script, required at the top level
FastExit::arm();
exit(0);
