<?php

/**
 * rrts fork master: one per pool. It requires an optional preload file (autoloader, framework boot) once, then forks
 * workers on request; each child becomes `php <script> <args>` as if started fresh, but with a warm process and a
 * shared opcache. The master never serves a request: it only forks, reaps and reports.
 *
 * Started by rrts (src/spawn/fork/master.ts) as
 *   php [-d ...] -d opcache.enable_cli=1 php/master.php --script=<worker.php> [--preload=<file>] [--spares=N]
 *       [--root --control=<socket> [--output=<socket>]] [-- <script args>]
 * with cwd = the app's directory, the pool's environment, stdin /dev/null, stdout/stderr read by rrts (the masters
 * inherit them; with --output each child connects its own, see step 0 below). A missing --script or --preload
 * file: a message on STDERR naming it, exit 1.
 *
 * Control channel: file descriptor 3 (a unix socketpair from Node), never stdout. Each message is ONE goridge v3
 * frame: byte0 0x13, byte1 flags 0x10 (CODEC_MSGPACK), payload length uint32 LE, CRC32 of bytes 0..5 uint32 LE,
 * byte10 0, byte11 0, no options; the payload is a MessagePack map with string keys. Every answer carries the
 * request's `id` when the request had one. Requests already waiting when the master reads one (up to 64) are
 * handled in order and answered together after the last of them: the forks of a burst (a pool start, a reset)
 * follow one another with nothing in between, and their workers may connect before rrts has their pids.
 *   master -> rrts, once, after the preload:
 *     {op: "ready", pid, php: PHP_VERSION, opcache: bool, preload: path as given | nil,
 *      resources: open stream resources besides STDIN/STDOUT/STDERR and the channel (a preload holding connections),
 *      with --output: output: true (the children get their own stdout/stderr) | why not (FFI not allowed, ...)}
 *   {op: "fork", id, env: {NAME: "value", ...}} -> {op: "forked", id, pid} | {op: "fork_failed", id, error}
 *   {op: "reap", pid} -> pcntl_waitpid(pid, WNOHANG) ->
 *     {op: "reaped", pid, done: bool, code: int|nil, signal: int|nil, error: nil | "not my child: N" | errno text}
 *     (done false with no error: the child is still running)
 *   {op: "ping", id} -> {op: "pong", id, children: forked and not yet reaped, spares: parked spares,
 *     memory: memory_get_usage(true)}
 *   any other op -> {op: "error", error: "unknown op X"}
 *   a malformed frame or payload -> one line on STDERR, exit 2.
 *   EOF on the channel (rrts closed it or died) -> SIGKILL every child not yet reaped, reap them, exit 0.
 * MessagePack subset: nil, bool, int (fixint, int8-64, uint8-64; uint64 above PHP_INT_MAX is refused), float32/64,
 * str (fixstr, str8/16/32), bin (decoded as a string), array, map; msgpackr's `undefined` (fixext 1, type 0) reads
 * as nil. Strings that are not UTF-8 are sent as bin, an empty PHP array as an empty map. Ints beyond 32 bits go
 * out as (u)int64, which msgpackr decodes to a BigInt unless asked otherwise (int64AsType); msgpackr itself sends
 * JS numbers beyond 32 bits as float64, which arrive here as floats and are echoed as such.
 *
 * Root mode (--root --control=<socket>; what rrts starts): the process is a root, not a master. It never requires
 * the preload or the script itself. With a preload and opcache on, it first forks a warm-up child that requires
 * the preload (filling the shared opcache) and SIGKILLs itself, and waits for it. Then on fd 3:
 *   root -> rrts, once: {op: "ready", pid, php, opcache, preload: nil, resources: 0, root: true,
 *     warm: opcache_get_status() answers (so a generation can find changed files)}
 *   {op: "generation", id} -> {op: "generation", id, pid} | {op: "generation_failed", id, error} (opcache full,
 *     more than 10% wasted, opcache_get_status() restricted, or pcntl_fork failed)
 *   {op: "ping", id} -> {op: "pong", id, masters}
 *   root -> rrts, unasked, when a generation master exits (SIGCHLD): {op: "exited", pid, code: int|nil,
 *     signal: int|nil}
 *   EOF -> wait up to 3 s for the masters to exit (their own channels closed too), SIGKILL the rest, exit 0.
 * A generation master is a forked child of the root: it closes fd 3, connects to --control (a unix socket of rrts),
 * sends {op: "hello", pid} there, invalidates every cached script whose mtime changed, requires the preload with
 * timestamp validation forced on, puts the opcache settings back, and then is a master as described above with that
 * connection as its control channel. After ready the root madvise(MADV_PAGEOUT)s its file mappings (FFI; pages
 * other processes map are skipped by the kernel). `ps` shows the root as "rrts: fork root: <command line>", the
 * masters and workers with the command line without " --root --control=...".
 *
 * The child, right after pcntl_fork() returns 0 (steps 4 and 5 are done by the master before it forks, and
 * inherited: each child would otherwise copy the pages they write, which it shares with the master):
 *   0. with --output and FFI: connects to that unix socket of rrts and dup2()s the connection onto fds 1 and 2
 *      (Output in lib/fork-master.php), so rrts logs its stdout and stderr under its own pid (SO_PEERCRED);
 *      otherwise, or if the connect fails (one line on the inherited stderr), it keeps the master's;
 *   1. closes the control channel (fclose), so only the master holds it (php://fd/3 is a dup: the bare fd 3 is
 *      closed in the master at start where FFI allows, see Channel::closeInheritedDescriptor());
 *   2. restores the default handler of every signal the master (or the preload) changed, async signals off, and
 *      the cycle collector as the preload left it (the master's loop runs without it);
 *   3. reseeds mt_rand() (rand() and srand() are its aliases) from random_int(), so no two workers share the
 *      random state the preload may have consumed;
 *   4. has every entry of the fork's env in $_SERVER (what the SDK reads), $_ENV and putenv() (the master sets
 *      them before each fork, and puts back what an earlier fork's env set that this one does not have; a pool's
 *      env does not change, so that is done once);
 *   5. has $argv/$argc, $_SERVER['argv'/'argc'/'SCRIPT_FILENAME'/'SCRIPT_NAME'/'PHP_SELF'/'PATH_TRANSLATED'] as
 *      `php <script> <args>` would (the script path exactly as given; the master sets them after its preload),
 *      and sets REQUEST_TIME(_FLOAT) to the fork's time;
 *   6. requires the script at the top level of this file (so its top-level variables are globals), then exit(0);
 *      a script that returned ends without PHP's module shutdown (FastExit in lib/fork-master.php: opened before
 *      step 6, it saved ~30 ms of CPU and ~800 page copies per exit here), one that called exit() with PHP's own.
 *
 * Spares (--spares=N, default 0; rrts passes server.fork.spares): the master keeps N children forked ahead of time,
 * parked after steps 0-3 (with the env of the last fork request), each blocked on its own socketpair.
 * After parking, the master rehearses a fork request's steps on a sample, so the copy-on-write faults the fork
 * left in its own pages are taken before the next request, not during it. A fork request hands the oldest live spare the env
 * (one message: uint32 LE length + a MessagePack map, or length 0 for the env it applied when parking) and answers its pid at once; the spare then runs steps 4-6.
 * A spare forked after a fork request has that request's env, as the master applied it (it is the pool's, so most
 * likely the next one's too); at the wake it applies only what differs. So the fork itself and most of the
 * child's first copy-on-write page faults happen before the request, not during it. The master forks replacement
 * spares once no fork was asked for 20 ms (other messages do not count): not while the worker that took one is
 * starting, nor within a burst of fork requests (a pool start or a reset forks on request, as without spares). A spare that finds EOF on
 * its socket (the master quit or died) exits 0 without running the script. `ps` shows a parked spare as
 * "rrts: fork spare (master <pid>)"; once woken it shows the master's command line again. Spares are not
 * "children" in ping or reap until handed out; the master SIGKILLs and reaps them when the channel closes, and
 * reaps a spare that died on its own when it would have handed it out.
 */

declare(strict_types=1);

namespace Rrts\Master;

// The classes live in lib/Fork/ (required by lib/fork-master.php). With opcache on, a short-lived child compiles them
// into the opcache first, so this process (the root every master and worker is forked from) never holds the
// compiler's scratch memory: freed but touched, those heap pages would be copied by every master that writes there.
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
if (Master::role() === Role::Root) {
    Master::runRoot(); // returns only in a new generation master or the opcache filler
}
if (Master::preloadPath() !== null) {
    require Master::preloadPath(); // at the top level: its variables are globals, as in `php <preload>`
}
Master::announceReady(); // the opcache filler dies here
require Master::serve(); // returns only in a new worker: its script, required at the top level
FastExit::arm();
exit(0);
