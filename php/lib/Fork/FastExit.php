<?php

declare(strict_types=1);

namespace Rrts\Master;

/**
 * A worker's exit without PHP's module shutdown, whose freeing of the runtime tables would copy every page a forked
 * worker still shares with the master only to free it (docs/fork-mode.md §2, item 8, has the cost).
 *
 * A worker opens a stream of this wrapper before its script runs: PHP closes resources newest first, after the
 * shutdown functions, the destructors, the output buffers, the extensions' request shutdown (sessions are written)
 * and freeing the objects, so this one closes after every resource the script opened. If the script returned (an
 * exit() in it or an uncaught error keeps PHP's own exit and its status), no shutdown function called exit() and
 * no fatal error came after it (a destructor's), its close ends the process with _exit(0) through FFI. What it
 * skips is invisible to the script: freeing memory and the extensions' module shutdown; persistent connections
 * are closed by the kernel rather than said goodbye to. Without FFI (not loaded, or ffi.enable=0) the exit stays
 * PHP's own.
 */
final class FastExit
{
    private const PROTOCOL = 'rrts-fast-exit';
    /** @var resource|null the stream, opened before the script */
    private static mixed $stream = null;
    private static bool $armed = false;
    /** @var resource|null set by PHP on every stream wrapper instance */
    public mixed $context = null;

    /** In a new child, before the script or the spare's wait: open the stream (once). */
    public static function open(): void
    {
        if (self::$stream !== null || !\extension_loaded('ffi')) {
            return;
        }
        if (!@\stream_wrapper_register(self::PROTOCOL, self::class)) {
            return; // taken (by the preload?): PHP's own exit
        }
        self::$stream = \fopen(self::PROTOCOL . '://', 'r') ?: null;
    }

    /** The script returned (or a spare was dropped): exit(0) follows; its shutdown ends in _exit(0). */
    public static function arm(): void
    {
        if (self::$stream !== null) {
            // registered last: it runs only if no shutdown function before it called exit()
            \register_shutdown_function(static function (): void {
                self::$armed = true;
            });
        }
    }

    public function stream_open(string $path, string $mode, int $options, ?string &$openedPath): bool
    {
        return true;
    }

    public function stream_close(): void
    {
        if (!self::$armed) {
            return; // closed by the script (fclose on every resource), or not a clean exit: PHP's own
        }
        $fatal = \E_ERROR | \E_CORE_ERROR | \E_COMPILE_ERROR | \E_USER_ERROR | \E_RECOVERABLE_ERROR;
        if ((\error_get_last()['type'] ?? 0) & $fatal) {
            return; // a fatal error after the script returned (in a destructor, say): PHP's exit, status 255
        }
        Libc::declare('void _exit(int status);')?->_exit(0); // null (FFI not allowed): PHP's own exit
    }
}
