<?php

declare(strict_types=1);

namespace Rrts\Master;

/**
 * The start-up tricks: work done ahead, in the root or the master or a parked spare, so a worker's start does not
 * do it (the numbers behind each are in docs/fork-mode.md §2.3).
 */
final class Prewarm
{
    /**
     * The pattern the official SDK (spiral/goridge Relay::create) matches RR_RELAY against when a worker starts:
     * compiled once in the master, every worker finds it in the PCRE cache it inherits (see pcre()).
     */
    public const SDK_RELAY_PATTERN = '/(?P<protocol>[^:\/]+):\/\/(?P<arg1>[^:]+)(:(?P<arg2>[^:]+))?/';
    /** required once by the master and once more by every spare, so the script's require finds the path warm */
    private const REHEARSAL = __DIR__ . '/rehearsal.php';

    /**
     * In the root, with a preload and opcache on: a child requires the preload (the compiler's garbage stays in that
     * child) and dies; the first master then preloads from the opcache. True in that child.
     */
    public static function forkOpcacheFiller(): bool
    {
        $pid = \pcntl_fork();
        if ($pid === 0) {
            return true;
        }
        if ($pid > 0) {
            $status = 0;
            \pcntl_waitpid($pid, $status);
        }

        return false;
    }

    /** The opcache filler after the preload: its compiled scripts are in the shared opcache, no shutdown needed. */
    public static function endOpcacheFiller(): never
    {
        \posix_kill(\getmypid(), \SIGKILL);
        exit(1); // not reached
    }

    /**
     * In the idle root after ready: hand the file pages only its start-up touched back to the kernel with
     * madvise(MADV_PAGEOUT) (Linux 5.4+, FFI); the kernel skips pages other processes map. Without FFI they stay.
     */
    public static function pageOutStartupPages(): void
    {
        $libc = \PHP_OS_FAMILY === 'Linux' ? Libc::declare('int madvise(uintptr_t addr, size_t length, int advice);') : null;
        if ($libc === null) {
            return;
        }
        $maps = @\file('/proc/self/maps', \FILE_IGNORE_NEW_LINES) ?: [];
        foreach ($maps as $line) {
            // "start-end perms offset dev inode path": file-backed mappings only (inode not 0)
            if (\preg_match('/^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ ([1-9]\d*) +\//', $line, $m) !== 1) {
                continue;
            }
            $start = \hexdec($m[1]);
            $libc->madvise($start, \hexdec($m[2]) - $start, 21); // MADV_PAGEOUT
        }
    }

    /**
     * In the master after the preload (its locale): one match sets up PCRE (the linker's bindings, the character
     * tables, the JIT's first chunk) once for every child, and the SDK's own pattern lands in the PCRE cache they
     * inherit; then the empty rehearsal file, so its require is cached for the spares' rehearsal.
     */
    public static function master(): void
    {
        \preg_match('/^rrts-(?<name>[a-z]+)$/', 'rrts-master');
        \preg_match(self::SDK_RELAY_PATTERN, 'pipes://fd/5:fd/6'); // what a worker's RR_RELAY is after the hand-over
        require self::REHEARSAL;
    }

    /**
     * In the master after it parked spares: a fork request's own steps on a sample, so the copy-on-write faults the
     * fork left in the master's pages are taken now, not during the next request.
     */
    public static function rehearseFork(array $lastEnv): void
    {
        $request = MsgPack::encode(['op' => Protocol::FORK, 'id' => 1, 'env' => $lastEnv]);
        $message = MsgPack::decode($request);
        $env = $message['env'] ?? [];
        ForkEnv::check($env);
        \pack('V', $env === $lastEnv ? 0 : \strlen(MsgPack::encode($env))); // Spare::handOver()
        MsgPack::encode(Protocol::withIdOf(Protocol::forked(\getmypid()), ['id' => 1]));
    }

    /**
     * In a spare, before it parks: what happens first after the wake, on nothing (the env and the script globals
     * written again with the same values, the script's realpath, a MessagePack round trip, a require, what the
     * relay's hand-over does first: a unix socket and its connect, the JSON of the pid handshake, a frame header).
     * Their code pages are mapped and their first allocations made before the wake; a worker makes the same writes
     * anyway.
     *
     * @param array<string, string> $expected the env the spare applied
     */
    public static function rehearseWake(ForkEnv $forkEnv, array $expected, Options $options): void
    {
        $forkEnv->apply($expected, true);
        Child::setScriptGlobals($options);
        \realpath($options->scriptPath);
        MsgPack::decode(MsgPack::encode($expected));
        require self::REHEARSAL;
        $socket = \function_exists('socket_create') ? @\socket_create(\AF_UNIX, \SOCK_STREAM, 0) : false;
        if ($socket !== false) {
            @\socket_connect($socket, '/nonexistent/rrts-rehearsal.sock'); // fails: only the code path is wanted
            \socket_close($socket);
        }
        \json_decode((string) \json_encode(['pid' => \getmypid()]), true);
        \unpack('Cversion/Cflags/Vlength', \pack('CCV', 0x13, 0x09, 12));
    }
}
