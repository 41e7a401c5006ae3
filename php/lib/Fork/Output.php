<?php

declare(strict_types=1);

namespace Rrts\Master;

/**
 * A child's own stdout and stderr: right after its fork (a spare: before it parks; a generation master: before its
 * preload) it connects to its pool's output socket (the generation request's, or --output) and puts that connection
 * on fds 1 and 2, so the pool logs what it writes under its pid (SO_PEERCRED), line by line, never mixed with another
 * worker's bytes, and quotes it when its start fails (all children used to share the root's pipe: logged under the
 * root's pid, lines over PIPE_BUF interleaved). PHP cannot put a descriptor on fd 2 itself
 * (fclose(STDERR) and a new fopen would leave the STDERR constant closed), so this is FFI's dup2(): STDERR,
 * STDOUT, error_log(), php://stderr and PHP's own error messages all write to fds 1 and 2 and keep working. The
 * declarations and the address are made once in the master; a child only makes the system calls. Without FFI (or
 * without an output socket) the children keep the inherited descriptors.
 */
final class Output
{
    private const AF_UNIX = 1;
    private const SOCK_STREAM_CLOEXEC = 1 | 0o2000000; // SOCK_STREAM | SOCK_CLOEXEC: only fds 1 and 2 stay
    /**
     * @param \FFI\CData $address the socket's address (kept: $addressPointer points into it)
     * @param \FFI\CData $addressPointer made in the master: FFI::addr() in each child would cost it page faults
     *     (docs/fork-mode.md §2.3)
     */
    private function __construct(
        private readonly \FFI $libc,
        private readonly \FFI\CData $address,
        private readonly \FFI\CData $addressPointer,
        private readonly int $addressLength,
    ) {
    }

    /** In the master, before its first fork: what its children attach(), or why they cannot. */
    public static function prepare(string $path): self|string
    {
        if (\strlen($path) > 107) {
            return "the output socket path is longer than 107 bytes: $path";
        }
        $libc = Libc::declare('struct sockaddr_un { unsigned short sun_family; char sun_path[108]; };
            int socket(int domain, int type, int protocol);
            int connect(int fd, const struct sockaddr_un *address, unsigned int length);
            int dup2(int from, int to);
            int close(int fd);');
        if ($libc === null) {
            return 'FFI is not loaded or not allowed (ffi.enable)';
        }
        $address = $libc->new('struct sockaddr_un');
        $address->sun_family = self::AF_UNIX;
        \FFI::memcpy($address->sun_path, $path, \strlen($path)); // new() zeroed it: the path ends with a NUL

        return new self($libc, $address, \FFI::addr($address), \FFI::sizeof($address));
    }

    /**
     * In a new child (or a new generation master, before its preload): connect to rrts' output socket and put the
     * connection on fds 1 and 2. $who: what the warning calls this process when it cannot.
     */
    public function attach(string $who): void
    {
        $libc = $this->libc;
        $fd = $libc->socket(self::AF_UNIX, self::SOCK_STREAM_CLOEXEC, 0);
        if ($fd < 0 || $libc->connect($fd, $this->addressPointer, $this->addressLength) !== 0
            || $libc->dup2($fd, 1) !== 1 || $libc->dup2($fd, 2) !== 2) {
            if ($fd >= 0) {
                $libc->close($fd);
            }
            \fwrite(\STDERR, "rrts $who " . \getmypid() . ": cannot connect to rrts' output socket; this $who's output goes to its parent's\n");

            return;
        }
        $libc->close($fd);
    }
}
