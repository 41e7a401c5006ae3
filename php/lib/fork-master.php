<?php

/**
 * The classes of php/master.php (the fork root, master and spares): see that file for the protocol and the
 * process model. master.php compiles this file in a short-lived child before requiring it, so the compiler's
 * scratch pages never enter the heap that the masters and workers fork from.
 */

declare(strict_types=1);

namespace Rrts\Master;

/** A tiny MessagePack codec: just the types the control channel carries. */
final class MsgPack
{
    private const MAX_DEPTH = 32;

    public static function encode(mixed $value): string
    {
        return match (true) {
            $value === null => "\xc0",
            $value === false => "\xc2",
            $value === true => "\xc3",
            \is_int($value) => self::encodeInt($value),
            \is_float($value) => "\xcb" . \pack('E', $value),
            \is_string($value) => self::encodeString($value),
            \is_array($value) && $value !== [] && \array_is_list($value) => self::encodeList($value),
            \is_array($value) => self::encodeMap($value),
            default => throw new \InvalidArgumentException('cannot encode ' . \get_debug_type($value)),
        };
    }

    /** Decode one value that must span all of $bytes; throws \UnexpectedValueException on anything else. */
    public static function decode(string $bytes): mixed
    {
        $at = 0;
        $value = self::read($bytes, $at, 0);
        if ($at !== \strlen($bytes)) {
            throw new \UnexpectedValueException(\sprintf('%d bytes after the msgpack value', \strlen($bytes) - $at));
        }

        return $value;
    }

    private static function encodeInt(int $n): string
    {
        if ($n >= 0) {
            return match (true) {
                $n <= 0x7f => \chr($n),
                $n <= 0xff => "\xcc" . \chr($n),
                $n <= 0xffff => "\xcd" . \pack('n', $n),
                $n <= 0xffffffff => "\xce" . \pack('N', $n),
                default => "\xcf" . \pack('J', $n),
            };
        }

        return match (true) {
            $n >= -32 => \chr($n & 0xff),
            $n >= -0x80 => "\xd0" . \chr($n & 0xff),
            $n >= -0x8000 => "\xd1" . \pack('n', $n & 0xffff),
            $n >= -0x80000000 => "\xd2" . \pack('N', $n & 0xffffffff),
            default => "\xd3" . \pack('J', $n),
        };
    }

    private static function encodeString(string $s): string
    {
        $n = \strlen($s);
        if (\preg_match('//u', $s) !== 1) {
            return match (true) {
                $n <= 0xff => "\xc4" . \chr($n),
                $n <= 0xffff => "\xc5" . \pack('n', $n),
                default => "\xc6" . \pack('N', $n),
            } . $s;
        }

        return match (true) {
            $n < 32 => \chr(0xa0 | $n),
            $n <= 0xff => "\xd9" . \chr($n),
            $n <= 0xffff => "\xda" . \pack('n', $n),
            default => "\xdb" . \pack('N', $n),
        } . $s;
    }

    private static function encodeList(array $list): string
    {
        $n = \count($list);
        $out = $n < 16 ? \chr(0x90 | $n) : ($n <= 0xffff ? "\xdc" . \pack('n', $n) : "\xdd" . \pack('N', $n));
        foreach ($list as $item) {
            $out .= self::encode($item);
        }

        return $out;
    }

    private static function encodeMap(array $map): string
    {
        $n = \count($map);
        $out = $n < 16 ? \chr(0x80 | $n) : ($n <= 0xffff ? "\xde" . \pack('n', $n) : "\xdf" . \pack('N', $n));
        foreach ($map as $key => $item) {
            $out .= self::encodeString((string) $key) . self::encode($item);
        }

        return $out;
    }

    private static function read(string $b, int &$at, int $depth): mixed
    {
        if ($depth > self::MAX_DEPTH) {
            throw new \UnexpectedValueException('msgpack nested too deep');
        }
        $type = \ord(self::take($b, $at, 1));

        return match (true) {
            $type <= 0x7f => $type,
            $type >= 0xe0 => $type - 0x100,
            $type <= 0x8f => self::readMap($b, $at, $type & 0x0f, $depth),
            $type <= 0x9f => self::readList($b, $at, $type & 0x0f, $depth),
            $type <= 0xbf => self::take($b, $at, $type & 0x1f),
            default => match ($type) {
                0xc0 => null,
                0xc2 => false,
                0xc3 => true,
                0xc4, 0xd9 => self::take($b, $at, self::uint($b, $at, 1)),
                0xc5, 0xda => self::take($b, $at, self::uint($b, $at, 2)),
                0xc6, 0xdb => self::take($b, $at, self::uint($b, $at, 4)),
                0xca => \unpack('G', self::take($b, $at, 4))[1],
                0xcb => \unpack('E', self::take($b, $at, 8))[1],
                0xcc => self::uint($b, $at, 1),
                0xcd => self::uint($b, $at, 2),
                0xce => self::uint($b, $at, 4),
                0xcf => self::uint($b, $at, 8),
                0xd0 => self::signed(self::uint($b, $at, 1), 8),
                0xd1 => self::signed(self::uint($b, $at, 2), 16),
                0xd2 => self::signed(self::uint($b, $at, 4), 32),
                0xd3 => \unpack('J', self::take($b, $at, 8))[1], // two's complement: PHP ints are int64
                0xd4 => self::readUndefined($b, $at),
                0xdc => self::readList($b, $at, self::uint($b, $at, 2), $depth),
                0xdd => self::readList($b, $at, self::uint($b, $at, 4), $depth),
                0xde => self::readMap($b, $at, self::uint($b, $at, 2), $depth),
                0xdf => self::readMap($b, $at, self::uint($b, $at, 4), $depth),
                default => throw new \UnexpectedValueException(\sprintf('unsupported msgpack type 0x%02x', $type)),
            },
        };
    }

    private static function readList(string $b, int &$at, int $n, int $depth): array
    {
        self::checkCount($b, $at, $n);
        $list = [];
        for ($i = 0; $i < $n; $i++) {
            $list[] = self::read($b, $at, $depth + 1);
        }

        return $list;
    }

    private static function readMap(string $b, int &$at, int $n, int $depth): array
    {
        self::checkCount($b, $at, 2 * $n);
        $map = [];
        for ($i = 0; $i < $n; $i++) {
            $key = self::read($b, $at, $depth + 1);
            if (!\is_string($key) && !\is_int($key)) {
                throw new \UnexpectedValueException('msgpack map key of type ' . \get_debug_type($key));
            }
            $map[$key] = self::read($b, $at, $depth + 1);
        }

        return $map;
    }

    /** msgpackr writes `undefined` as fixext 1 of type 0: nil here. Other extension types are not ours. */
    private static function readUndefined(string $b, int &$at): null
    {
        if (self::take($b, $at, 2) !== "\x00\x00") {
            throw new \UnexpectedValueException('msgpack extension types are not supported');
        }

        return null;
    }

    /** Every element takes at least one byte: refuse counts the bytes left cannot hold. */
    private static function checkCount(string $b, int $at, int $n): void
    {
        if ($n > \strlen($b) - $at) {
            $left = \strlen($b) - $at;
            throw new \UnexpectedValueException("msgpack container of $n elements in $left bytes");
        }
    }

    private static function uint(string $b, int &$at, int $size): int
    {
        $value = \unpack([1 => 'C', 2 => 'n', 4 => 'N', 8 => 'J'][$size], self::take($b, $at, $size))[1];
        if ($value < 0) {
            throw new \UnexpectedValueException('msgpack uint64 above PHP_INT_MAX');
        }

        return $value;
    }

    private static function signed(int $value, int $bits): int
    {
        return $value >= 1 << ($bits - 1) ? $value - (1 << $bits) : $value;
    }

    private static function take(string $b, int &$at, int $n): string
    {
        if ($at + $n > \strlen($b)) {
            throw new \UnexpectedValueException('msgpack value cut short');
        }
        $bytes = \substr($b, $at, $n);
        $at += $n;

        return $bytes;
    }
}

/**
 * The control protocol's messages (docs/protocol.md §6), every one in both directions, in one place: the ops rrts
 * sends, and a builder for each message this side sends. The Node mirror is src/spawn/fork/protocol.ts.
 */
final class Protocol
{
    // rrts -> root
    public const GENERATION = 'generation';
    // rrts -> master
    public const FORK = 'fork';
    public const REAP = 'reap';
    // rrts -> root or master
    public const PING = 'ping';

    /** root and master -> rrts, once: the root adds root and warm, a master given --output adds output. */
    public static function ready(?string $preload, int $resources, bool $opcache): array
    {
        return ['op' => 'ready', 'pid' => \getmypid(), 'php' => \PHP_VERSION, 'opcache' => $opcache, 'preload' => $preload, 'resources' => $resources];
    }

    /** master -> rrts: the first frame on its connection to the control socket. */
    public static function hello(): array
    {
        return ['op' => 'hello', 'pid' => \getmypid()];
    }

    /** root -> rrts: the answer to a generation request (the id as it came, nil when there was none). */
    public static function generation(mixed $id, int $pid): array
    {
        return ['op' => 'generation', 'id' => $id, 'pid' => $pid];
    }

    public static function generationFailed(mixed $id, string $error): array
    {
        return ['op' => 'generation_failed', 'id' => $id, 'error' => $error];
    }

    /** root -> rrts, unasked: a generation master exited; $status from pcntl_waitpid(). */
    public static function exited(int $pid, int $status): array
    {
        return ['op' => 'exited', 'pid' => $pid] + self::exitStatus($status);
    }

    public static function rootPong(int $masters): array
    {
        return ['op' => 'pong', 'masters' => $masters];
    }

    /** master -> rrts: the answers to a fork request. */
    public static function forked(int $pid): array
    {
        return ['op' => 'forked', 'pid' => $pid];
    }

    public static function forkFailed(string $error): array
    {
        return ['op' => 'fork_failed', 'error' => $error];
    }

    /** master -> rrts: the answer to a reap request; done false with no error: still running. */
    public static function reaped(mixed $pid, bool $done = false, ?int $code = null, ?int $signal = null, ?string $error = null): array
    {
        return ['op' => 'reaped', 'pid' => $pid, 'done' => $done, 'code' => $code, 'signal' => $signal, 'error' => $error];
    }

    public static function masterPong(int $children, int $spares, int $memory): array
    {
        return ['op' => 'pong', 'children' => $children, 'spares' => $spares, 'memory' => $memory];
    }

    /** root and master -> rrts: a request with an op neither knows. */
    public static function unknownOp(mixed $op): array
    {
        return ['op' => 'error', 'error' => 'unknown op ' . (\is_string($op) ? $op : \get_debug_type($op))];
    }

    /** A reply with the request's id when it had one (id second, as PHP's answers have always put it). */
    public static function withIdOf(array $reply, array $request): array
    {
        return \array_key_exists('id', $request) ? ['op' => $reply['op'], 'id' => $request['id']] + $reply : $reply;
    }

    /** A waitpid() status as the messages carry it: {code: exit code | nil, signal: number | nil}. */
    public static function exitStatus(int $status): array
    {
        return [
            'code' => \pcntl_wifexited($status) ? \pcntl_wexitstatus($status) : null,
            'signal' => \pcntl_wifsignaled($status) ? \pcntl_wtermsig($status) : null,
        ];
    }
}

/** libc through FFI: where the extension is loaded and allowed for the CLI (ffi.enable=preload, the default). */
final class Libc
{
    /** The declared functions, or null when FFI is not loaded or not allowed here. */
    public static function declare(string $declarations): ?\FFI
    {
        if (!\extension_loaded('ffi')) {
            return null;
        }
        try {
            return \FFI::cdef($declarations);
        } catch (\Throwable) {
            return null; // ffi.enable=0
        }
    }
}

/** The control channel on fd 3: one goridge frame (flags CODEC_MSGPACK, no options) per message. */
final class Channel
{
    private const HEADER = 12;
    private const FLAGS = 0x10;
    private const MAX_PAYLOAD = 16 * 1024 * 1024;

    /** @param resource $stream */
    private function __construct(public readonly mixed $stream)
    {
    }

    /** A generation master's channel: a connection to rrts' control socket (--control). Null if it cannot. */
    public static function connect(string $path): ?self
    {
        $stream = @\stream_socket_client('unix://' . $path, $errno, $error, 10.0);
        if ($stream === false) {
            return null;
        }
        \stream_set_blocking($stream, true);

        return new self($stream);
    }

    public static function open(): ?self
    {
        $stream = @\fopen('php://fd/3', 'r+');
        if ($stream === false) {
            return null;
        }
        \stream_set_blocking($stream, true);
        self::closeInheritedDescriptor();

        return new self($stream);
    }

    /** The next message (a map), or null at EOF. Throws \UnexpectedValueException on a malformed frame. */
    public function receive(): ?array
    {
        $header = $this->readExactly(self::HEADER);
        if ($header === null) {
            return null;
        }
        $h = \unpack('Cversion/Cflags/Vlength/Vcrc', $header);
        if ($h['version'] !== 0x13 || $h['flags'] !== self::FLAGS) {
            throw new \UnexpectedValueException('expected a 0x13 header with flags 0x10, got ' . \bin2hex($header));
        }
        if ($h['crc'] !== \crc32(\substr($header, 0, 6))) {
            throw new \UnexpectedValueException('CRC mismatch in header ' . \bin2hex($header));
        }
        if ($h['length'] > self::MAX_PAYLOAD) {
            throw new \UnexpectedValueException("payload of {$h['length']} bytes is over the limit");
        }
        $payload = $h['length'] === 0 ? '' : $this->readExactly($h['length']);
        if ($payload === null) {
            return null; // rrts went away in the middle of a frame: that is EOF too
        }
        $type = $payload === '' ? -1 : \ord($payload[0]);
        if (($type & 0xf0) !== 0x80 && $type !== 0xde && $type !== 0xdf) {
            throw new \UnexpectedValueException('payload is not a msgpack map: ' . \bin2hex(\substr($payload, 0, 32)));
        }

        return MsgPack::decode($payload);
    }

    /** receive(), but a malformed frame is a line on STDERR (naming `$who`) and exit 2: rrts broke the protocol. */
    public function receiveOrExit(string $who): ?array
    {
        try {
            return $this->receive();
        } catch (\UnexpectedValueException $e) {
            \fwrite(\STDERR, "rrts $who: malformed control frame: " . $e->getMessage() . "\n");
            exit(2);
        }
    }

    /** False when the channel is closed. */
    public function send(array $message): bool
    {
        return $this->sendAll([$message]);
    }

    /** One frame per message, written together. False when the channel is closed. */
    public function sendAll(array $messages): bool
    {
        $bytes = '';
        foreach ($messages as $message) {
            $payload = MsgPack::encode($message);
            $head = \pack('CCV', 0x13, self::FLAGS, \strlen($payload));
            $bytes .= $head . \pack('V', \crc32($head)) . "\0\0" . $payload;
        }
        while ($bytes !== '') {
            $n = @\fwrite($this->stream, $bytes);
            if ($n === false || $n === 0) {
                return false;
            }
            $bytes = \substr($bytes, $n);
        }

        return true;
    }

    public function close(): void
    {
        \fclose($this->stream);
    }

    /** True when a message (or EOF) is waiting, within $microseconds. */
    public function waitReadable(int $microseconds): bool
    {
        $read = [$this->stream];
        $none = null;

        return (int) @\stream_select($read, $none, $none, 0, $microseconds) > 0;
    }

    private function readExactly(int $length): ?string
    {
        $data = '';
        while (\strlen($data) < $length) {
            $chunk = \fread($this->stream, $length - \strlen($data));
            if ($chunk === false || $chunk === '') {
                if (\feof($this->stream)) {
                    return null;
                }
                $read = [$this->stream];
                $none = null;
                @\stream_select($read, $none, $none, null); // not readable yet (EAGAIN, EINTR): wait
                continue;
            }
            $data .= $chunk;
        }

        return $data;
    }

    /**
     * php://fd/3 is a dup() of descriptor 3, and PHP cannot close a bare descriptor, so every worker would keep an
     * inert copy of the channel. FFI can, where it is loaded and allowed for the CLI (ffi.enable=preload, the
     * default); without it the copy stays, harmless: nothing in a worker reads or writes it.
     */
    private static function closeInheritedDescriptor(): void
    {
        Libc::declare('int close(int fd);')?->close(3);
    }
}

/**
 * A worker's exit without PHP's module shutdown. PHP ends a process by freeing its runtime tables (functions,
 * classes, the PCRE cache, extensions' globals) one block at a time: in a forked worker each of those pages is still
 * shared with the master, so freeing it copies it first. That took ~50 ms of CPU and ~1,500 page faults (~6 MiB
 * copied only to be freed) per worker exit here, against ~20 ms and ~700 faults without the module shutdown.
 *
 * So a worker opens a stream of this wrapper before its script runs: PHP closes resources newest first, after the
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

/**
 * A child's own stdout and stderr: right after its fork (a spare: before it parks) it connects to rrts' output
 * socket (--output) and puts that connection on fds 1 and 2, so rrts logs what it writes under its pid
 * (SO_PEERCRED), line by line, never mixed with another worker's bytes (all children used to share the root's pipe:
 * logged under the root's pid, lines over PIPE_BUF interleaved). PHP cannot put a descriptor on fd 2 itself
 * (fclose(STDERR) and a new fopen would leave the STDERR constant closed), so this is FFI's dup2(): STDERR,
 * STDOUT, error_log(), php://stderr and PHP's own error messages all write to fds 1 and 2 and keep working. The
 * declarations and the address are made once in the master; a child only makes the system calls. Without FFI (or
 * without --output) the children keep the inherited descriptors.
 */
final class Output
{
    private const AF_UNIX = 1;
    private const SOCK_STREAM_CLOEXEC = 1 | 0o2000000; // SOCK_STREAM | SOCK_CLOEXEC: only fds 1 and 2 stay
    private static ?\FFI $libc = null;
    /** the socket's address (kept: $addressPointer points into it) */
    private static ?\FFI\CData $address = null;
    /** made in the master: FFI::addr() in each child cost it 3-4 page faults more here */
    private static ?\FFI\CData $addressPointer = null;
    private static int $addressLength = 0;

    /** In the master, before its first fork: true when its children will get their own output, or why not. */
    public static function prepare(string $path): bool|string
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
        self::$libc = $libc;
        self::$address = $address;
        self::$addressPointer = \FFI::addr($address);
        self::$addressLength = \FFI::sizeof($address);

        return true;
    }

    /** In a new child: connect to rrts' output socket and put the connection on fds 1 and 2. */
    public static function attach(): void
    {
        $libc = self::$libc;
        if ($libc === null) {
            return;
        }
        $fd = $libc->socket(self::AF_UNIX, self::SOCK_STREAM_CLOEXEC, 0);
        if ($fd < 0 || $libc->connect($fd, self::$addressPointer, self::$addressLength) !== 0
            || $libc->dup2($fd, 1) !== 1 || $libc->dup2($fd, 2) !== 2) {
            if ($fd >= 0) {
                $libc->close($fd);
            }
            \fwrite(\STDERR, 'rrts worker ' . \getmypid() . ": cannot connect to rrts' output socket; this worker's output goes to the master's\n");

            return;
        }
        $libc->close($fd);
    }
}

/** A child forked ahead of a fork request and parked on its socketpair until the master hands it an env. */
final class Spare
{
    /**
     * @param resource $socket the master's end
     * @param array<string, string> $expected the env the spare applied before parking
     */
    public function __construct(public readonly int $pid, public readonly mixed $socket, public readonly array $expected)
    {
    }

    /**
     * The env for the spare: uint32 LE length, then the MessagePack map; length 0 when it is the env the spare
     * expected (the usual case: a pool's env does not change), which it then has nothing to decode or apply.
     * False if the spare cannot take it.
     */
    public function handOver(array $env): bool
    {
        $payload = $env === $this->expected ? '' : MsgPack::encode($env);
        $bytes = \pack('V', \strlen($payload)) . $payload;
        $n = @\fwrite($this->socket, $bytes); // a few hundred bytes into an empty socket buffer: one write
        \fclose($this->socket);

        return $n === \strlen($bytes);
    }

    /**
     * In the spare: wait for the env. Null at EOF (the master quit, died, or dropped this spare).
     *
     * @param resource $socket the spare's end
     * @param array<string, string> $expected the env it applied before parking (what an empty message means)
     */
    public static function awaitEnv(mixed $socket, array $expected): ?array
    {
        $head = self::readExactly($socket, 4);
        if ($head === null) {
            return null;
        }
        $length = \unpack('V', $head)[1];
        if ($length === 0) {
            \fclose($socket);

            return $expected;
        }
        $payload = $length > 16 * 1024 * 1024 ? null : self::readExactly($socket, $length);
        \fclose($socket);
        $env = $payload === null ? null : MsgPack::decode($payload);

        return \is_array($env) ? $env : null;
    }

    /** @param resource $socket */
    private static function readExactly(mixed $socket, int $length): ?string
    {
        $data = '';
        while (\strlen($data) < $length) {
            $chunk = @\fread($socket, $length - \strlen($data));
            if ($chunk === false || $chunk === '') {
                return null; // blocking socket: '' means EOF
            }
            $data .= $chunk;
        }

        return $data;
    }
}

/**
 * The root (--root): started by rrts once per pool, it never requires the preload or the script. It forks one
 * generation master per start or reset; the masters inherit its opcache segment, so a reset's master finds the
 * app compiled and only recompiles what changed. It reaps the masters and reports how they exited.
 */
final class Root
{
    /** opcache this full or wasted (percent) makes the root refuse a generation: rrts then starts a fresh root */
    private const MAX_WASTED_PERCENT = 10;
    /** how long the masters get to quit by themselves after rrts closed the channel, before SIGKILL (us) */
    private const EOF_GRACE_US = 3_000_000;

    /** true in the warm-up child: it requires the preload to fill the opcache, then dies */
    public static bool $warming = false;
    /** @var array<int, true> generation masters not yet reaped */
    private static array $masters = [];

    /** The loop; returns only in a new generation master (or the warm-up child). */
    public static function run(Channel $channel, bool $warmUp): void
    {
        if ($warmUp && self::warmUp()) {
            $channel->close();

            return;
        }
        \pcntl_signal(\SIGCHLD, static function (): void {
        }, false); // a handler without SA_RESTART: a dead master wakes the select below
        $status = Master::opcacheEnabled() ? @\opcache_get_status(false) : false;
        self::send($channel, Master::readyMessage(null, 0) + [
            'root' => true,
            'warm' => \is_array($status), // opcache_get_status() answers (not restricted): resets can revalidate
        ]);
        self::pageOutStartupPages();
        while (true) {
            $readable = $channel->waitReadable(1_000_000);
            \pcntl_signal_dispatch();
            self::reapMasters($channel);
            if (!$readable) {
                continue;
            }
            $message = $channel->receiveOrExit('root');
            if ($message === null) {
                self::awaitMastersAndExit();
            }
            $op = $message['op'] ?? null;
            if ($op === Protocol::GENERATION) {
                $refused = self::opcacheProblem();
                if ($refused !== null) {
                    self::send($channel, Protocol::generationFailed($message['id'] ?? null, $refused));
                    continue;
                }
                $pid = \pcntl_fork();
                if ($pid === 0) {
                    $channel->close();
                    \pcntl_signal(\SIGCHLD, \SIG_DFL);
                    self::$masters = [];

                    return;
                }
                if ($pid < 0) {
                    $error = 'pcntl_fork: ' . \pcntl_strerror(\pcntl_get_last_error());
                    self::send($channel, Protocol::generationFailed($message['id'] ?? null, $error));
                    continue;
                }
                self::$masters[$pid] = true;
                self::send($channel, Protocol::generation($message['id'] ?? null, $pid));
                continue;
            }
            $reply = $op === Protocol::PING ? Protocol::rootPong(\count(self::$masters)) : Protocol::unknownOp($op);
            self::send($channel, Protocol::withIdOf($reply, $message));
        }
    }

    /**
     * Fill the opcache before the first master: a child requires the preload (the compiler's garbage stays in
     * that child) and dies; the first master then preloads from the opcache and keeps a smaller heap to share with
     * its workers. True in that child.
     */
    private static function warmUp(): bool
    {
        $pid = \pcntl_fork();
        if ($pid === 0) {
            self::$warming = true;

            return true;
        }
        if ($pid > 0) {
            $status = 0;
            \pcntl_waitpid($pid, $status);
        }

        return false;
    }

    /**
     * The root sits idle from now on; the file pages only its start-up touched (extension start-up code, ICU and
     * OpenSSL tables: ~10 MiB here) are handed back to the kernel with madvise(MADV_PAGEOUT) (Linux 5.4+, through
     * FFI). The kernel skips every page another process maps too, so the masters and workers lose nothing. Without
     * FFI (or on an older kernel) the pages stay, which costs memory only.
     */
    private static function pageOutStartupPages(): void
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

    /** Why a new generation should not share this opcache (null: it may). */
    private static function opcacheProblem(): ?string
    {
        if (!Master::opcacheEnabled()) {
            return null; // nothing shared: a generation is as fresh as a new root
        }
        $status = @\opcache_get_status(false);
        if (!\is_array($status)) {
            return 'opcache_get_status() is not available (opcache.restrict_api?)';
        }
        if (!empty($status['cache_full'])) {
            return 'the opcache is full';
        }
        $wasted = (float) ($status['memory_usage']['current_wasted_percentage'] ?? 0);
        if ($wasted > self::MAX_WASTED_PERCENT) {
            return \sprintf('%.1f%% of the opcache is wasted', $wasted);
        }

        return null;
    }

    private static function reapMasters(Channel $channel): void
    {
        $status = 0;
        while (($pid = \pcntl_waitpid(-1, $status, \WNOHANG)) > 0) {
            if (!isset(self::$masters[$pid])) {
                continue;
            }
            unset(self::$masters[$pid]);
            self::send($channel, Protocol::exited($pid, $status));
        }
    }

    /** rrts closed the channel (or died): its masters see their own channels close and quit; reap them. */
    private static function awaitMastersAndExit(): never
    {
        $until = \hrtime(true) + self::EOF_GRACE_US * 1000;
        $status = 0;
        while (self::$masters !== [] && \hrtime(true) < $until) {
            while (($pid = \pcntl_waitpid(-1, $status, \WNOHANG)) > 0) {
                unset(self::$masters[$pid]);
            }
            \usleep(10_000);
        }
        foreach (\array_keys(self::$masters) as $pid) {
            \posix_kill($pid, \SIGKILL);
            \pcntl_waitpid($pid, $status);
        }
        exit(0);
    }

    private static function send(Channel $channel, array $message): void
    {
        if (!$channel->send($message)) {
            self::awaitMastersAndExit();
        }
    }
}

/** The master's state and loop; serve() returns only in a freshly forked child, with the script to require. */
final class Master
{
    private const USAGE = 'usage: php master.php --script=<worker.php> [--preload=<file>] [--spares=N] [--root --control=<socket>] [--output=<socket>] [-- <script args>]';
    private const MAX_SPARES = 16;
    /** the most messages read ahead before the first is handled (see receiveWaiting()) */
    private const MAX_BURST = 64;
    /** @var list<array<string, mixed>> replies not yet sent (see answer()) */
    private static array $answers = [];
    /**
     * Spares are refilled once no fork was asked for this long (us): not while the worker that just took one is
     * starting on the other core, and not in the middle of a burst of fork requests (a pool start or reset), which
     * fork on request as without spares. Other messages (reap, ping) do not put it off: workers that exit often
     * would never leave the channel quiet that long.
     */
    private const SPARE_REFILL_IDLE_US = 20_000;
    /** whether the cycle collector was on after the preload: the master turns it off, its children back on */
    private static bool $gcEnabled = true;
    /** hrtime() of the last fork request (of the ready message until the first) */
    private static int $lastForkAt = 0;
    /**
     * The pattern the official SDK (spiral/goridge Relay::create) matches RR_RELAY against when a worker starts:
     * compiled once in the master, every worker finds it in the PCRE cache it inherits (see warmUpPcre()).
     */
    public const SDK_RELAY_PATTERN = '/(?P<protocol>[^:\/]+):\/\/(?P<arg1>[^:]+)(:(?P<arg2>[^:]+))?/';
    /** what `ps` shows for a parked spare; a woken one shows the master's command line again, like any worker */
    public const SPARE_TITLE = 'rrts: fork spare';
    /** what `ps` shows for the root */
    public const ROOT_TITLE = 'rrts: fork root';

    private static Channel $channel;
    private static string $script;
    private static string $scriptPath;
    /** @var list<string> */
    private static array $scriptArgs = [];
    private static ?string $preload = null;
    private static ?string $preloadPath = null;
    /** @var array<int, true> pids forked and not yet reaped */
    private static array $children = [];
    private static int $spareCount = 0;
    /** the master's command line, args joined by spaces ('' when /proc is not there: then titles stay as they are) */
    private static string $title = '';
    /** @var list<Spare> parked, oldest first */
    private static array $spares = [];
    /**
     * @var array<string, string> the env of the last fork request, as it came (a spare forked after it expects it:
     * Spare::handOver() compares a request's env to it with ===, which $appliedEnv's key order may not match)
     */
    private static array $lastEnv = [];
    /**
     * @var array<string, string> the fork env this process applied (the master applies each request's before it
     * forks, so its children inherit it; a spare applied the one it expected)
     */
    private static array $appliedEnv = [];
    /** @var array<string, array{mixed, mixed, string|false}> a name's $_SERVER, $_ENV and getenv() before applyEnv() */
    private static array $envBefore = [];
    /** --root: this process is the root; --control: the socket a generation master connects to */
    private static bool $root = false;
    private static ?string $control = null;
    /** --output: the socket each child connects its stdout and stderr to (see Output) */
    private static ?string $output = null;
    /** @var array<string, string|false> opcache settings a generation master changed for its preload */
    private static array $savedIni = [];

    /** Parse the arguments, check the files, open the channel; exit 1 on any problem. */
    public static function start(array $argv): void
    {
        $script = null;
        foreach (\array_slice($argv, 1) as $i => $arg) {
            if ($arg === '--') {
                self::$scriptArgs = \array_slice($argv, $i + 2);
                break;
            }
            if (\str_starts_with($arg, '--script=')) {
                $script = \substr($arg, 9);
            } elseif (\str_starts_with($arg, '--preload=')) {
                self::$preload = \substr($arg, 10);
            } elseif ($arg === '--root') {
                self::$root = true;
            } elseif (\str_starts_with($arg, '--control=')) {
                self::$control = \substr($arg, 10);
            } elseif (\str_starts_with($arg, '--output=')) {
                self::$output = \substr($arg, 9);
            } elseif (\str_starts_with($arg, '--spares=')) {
                $n = \filter_var(\substr($arg, 9), \FILTER_VALIDATE_INT, ['options' => ['min_range' => 0, 'max_range' => self::MAX_SPARES]]);
                if ($n === false) {
                    self::fail("--spares must be an integer from 0 to " . self::MAX_SPARES . ", got '" . \substr($arg, 9) . "'");
                }
                self::$spareCount = $n;
            } else {
                self::fail("unknown argument '$arg'; " . self::USAGE);
            }
        }
        if ($script === null || $script === '') {
            self::fail('--script is required; ' . self::USAGE);
        }
        self::$script = $script;
        self::$scriptPath = self::existingFile($script, 'worker script');
        if (self::$preload !== null) {
            self::$preloadPath = self::existingFile(self::$preload, 'preload file');
        }
        if (self::$root && (self::$control === null || self::$control === '')) {
            self::fail('--root needs --control=<socket>; ' . self::USAGE);
        }
        self::$channel = Channel::open() ?? self::fail('no control channel on file descriptor 3 (rrts starts this)');
        self::$title = \str_replace("\0", ' ', \rtrim((string) @\file_get_contents('/proc/self/cmdline'), "\0"));
        if (self::$root) {
            // the masters (and their workers) show the command line without the root's arguments
            $rootArguments = ' --root --control=' . self::$control . (self::$output === null ? '' : ' --output=' . self::$output);
            self::$title = \str_replace($rootArguments, '', self::$title);
            self::setTitle(self::ROOT_TITLE . ': ' . self::$title);
        }
    }

    public static function setTitle(string $title): void
    {
        if (self::$title !== '') {
            @\cli_set_process_title($title);
        }
    }

    /** Absolute path of the preload to require, or null. */
    public static function preloadPath(): ?string
    {
        return self::$preloadPath;
    }

    public static function isRoot(): bool
    {
        return self::$root;
    }

    /**
     * The root's loop (see the top comment). Returns only in a freshly forked generation master, connected to rrts'
     * control socket and ready for its preload; a warm-up child returns too, with Root::$warming set.
     */
    public static function runRoot(): void
    {
        Root::run(self::$channel, self::$preloadPath !== null && self::opcacheEnabled());
        self::$root = false;
        self::setTitle(self::$title);
        if (Root::$warming) {
            return;
        }
        self::$channel = Channel::connect((string) self::$control)
            ?? self::fail('cannot connect to the control socket ' . self::$control);
        if (!self::$channel->send(Protocol::hello())) {
            exit(1);
        }
        self::revalidateOpcache();
    }

    /**
     * A generation master shares the opcache of the masters before it: before its preload, every cached script
     * whose file changed since it was compiled is invalidated, and the preload itself checks every file it
     * includes (validate_timestamps on, revalidate_freq 0, no file_update_protection: the shared process start
     * time opcache compares against is the root's). announceReady() puts the user's settings back.
     */
    private static function revalidateOpcache(): void
    {
        if (!self::opcacheEnabled()) {
            return;
        }
        foreach (['opcache.validate_timestamps' => '1', 'opcache.revalidate_freq' => '0', 'opcache.file_update_protection' => '0'] as $name => $value) {
            self::$savedIni[$name] = \ini_get($name);
            @\ini_set($name, $value);
        }
        $status = @\opcache_get_status(true);
        foreach (\is_array($status) ? \array_keys($status['scripts'] ?? []) : [] as $path) {
            @\opcache_invalidate((string) $path, false); // only if its mtime changed (validate_timestamps is on)
        }
    }

    public static function announceReady(): void
    {
        if (Root::$warming) {
            \posix_kill(\getmypid(), \SIGKILL); // the compiled scripts are in the shared opcache: no shutdown
        }
        foreach (self::$savedIni as $name => $value) {
            if ($value !== false) {
                @\ini_set($name, $value);
            }
        }
        self::$savedIni = [];
        self::warmUpPcre();
        require __DIR__ . '/rehearsal.php'; // cached, for the spares' rehearsal (see rehearseWake())
        // The loop makes no cycles (arrays of scalars), so the cycle collector has nothing to find there, and each
        // run after a fork wrote to pages the new child shares (its copy-on-write faults showed in `perf` during
        // a reset's forks). One run now, for the preload's garbage; the children get it back as the preload left it.
        self::$gcEnabled = \gc_enabled();
        \gc_collect_cycles();
        \gc_disable();
        $resources = 0;
        $ours = [\STDIN, \STDOUT, \STDERR, self::$channel->stream];
        foreach (\get_resources('stream') as $stream) {
            if (!\in_array($stream, $ours, true)) {
                $resources++;
            }
        }
        self::setScriptGlobals(); // child step 5 once here: a child inherits it rather than writing it
        $output = self::$output === null ? [] : ['output' => Output::prepare(self::$output)];
        self::answer(self::readyMessage(self::$preload, $resources) + $output);
        self::sendAnswers();
    }

    /**
     * A worker's first regular expression used to cost it ~1 ms on a virtual machine (~40 page faults): the
     * dynamic linker binding libpcre2's compile functions, PCRE's character tables for the locale, the JIT's first
     * code chunk, and the compile itself. Every SDK worker matches one at start (Relay::create parses RR_RELAY).
     * One match here, after the preload (its locale), does that setup once for every child, and compiling the
     * SDK's own pattern puts it in the PCRE cache the children inherit. The master then maps the file pages that
     * setup reads (~0.4 MiB: libpcre2's compiler, the libraries' symbol tables) instead of every worker.
     */
    private static function warmUpPcre(): void
    {
        \preg_match('/^rrts-(?<name>[a-z]+)$/', 'rrts-master');
        \preg_match(self::SDK_RELAY_PATTERN, 'unix:///rrts.sock');
    }

    /** The ready message (the root adds root and warm). */
    public static function readyMessage(?string $preload, int $resources): array
    {
        return Protocol::ready($preload, $resources, self::opcacheEnabled());
    }

    /** The loop. Returns (the script's absolute path) only in a new child, ready to become the worker. */
    public static function serve(): string
    {
        self::$lastForkAt = \hrtime(true);
        while (true) {
            if (\count(self::$spares) < self::$spareCount) {
                $quietFor = self::SPARE_REFILL_IDLE_US - \intdiv(\hrtime(true) - self::$lastForkAt, 1000);
                if (!self::$channel->waitReadable(\max(0, $quietFor))) {
                    if ($quietFor > 0) {
                        continue; // timed out (or a signal woke it early): look at the time again
                    }
                    $env = self::parkSpares();
                    if ($env !== null) {
                        return self::becomeWorker($env); // a spare that was handed its env
                    }
                }
            }
            foreach (self::receiveWaiting() as $message) {
                if ($message === null) {
                    self::killChildrenAndExit();
                }
                $op = $message['op'] ?? null;
                if ($op === Protocol::FORK) {
                    $env = self::fork($message);
                    if ($env !== null) {
                        self::prepareChild();

                        return self::becomeWorker($env);
                    }
                    continue;
                }
                self::answer(match ($op) {
                    Protocol::REAP => self::reap($message['pid'] ?? null),
                    Protocol::PING => Protocol::masterPong(\count(self::$children), \count(self::$spares), \memory_get_usage(true)),
                    default => Protocol::unknownOp($op),
                }, $message);
            }
            self::sendAnswers();
        }
    }

    /**
     * The next message (waiting for it), then every one that is already there, in order; null for EOF (last).
     * A burst of fork requests (a pool start, a reset) is read and decoded before the first fork, and answered
     * after the last (see answer()): each fork then follows the previous one with nothing in between that writes
     * to pages the children share. In a reset of 16 each answer took ~20 copy-on-write faults in the master.
     *
     * @return non-empty-list<array<mixed>|null>
     */
    private static function receiveWaiting(): array
    {
        $messages = [self::$channel->receiveOrExit('master')];
        while (\end($messages) !== null && \count($messages) < self::MAX_BURST && self::$channel->waitReadable(0)) {
            $messages[] = self::$channel->receiveOrExit('master');
        }

        return $messages;
    }

    /** Parent: answers and returns null. Child: returns the env to apply. */
    private static function fork(array $message): ?array
    {
        self::$lastForkAt = \hrtime(true);
        $env = $message['env'] ?? [];
        $problem = self::checkEnv($env);
        if ($problem !== null) {
            self::answer(Protocol::forkFailed($problem), $message);

            return null;
        }
        self::$lastEnv = $env;
        self::applyEnv($env); // here, once: the children forked from now on inherit it (usually a no-op)
        $spare = self::takeSpare($env);
        if ($spare !== null) {
            self::$children[$spare] = true;
            self::answer(Protocol::forked($spare), $message);

            return null;
        }
        $pid = \pcntl_fork();
        if ($pid === 0) {
            return $env;
        }
        if ($pid < 0) {
            $error = 'pcntl_fork: ' . \pcntl_strerror(\pcntl_get_last_error());
            self::answer(Protocol::forkFailed($error), $message);

            return null;
        }
        self::$children[$pid] = true;
        self::answer(Protocol::forked($pid), $message);

        return null;
    }

    /** Hand the env to the oldest live spare; its pid, or null when none could take it (then fork as usual). */
    private static function takeSpare(array $env): ?int
    {
        while (($spare = \array_shift(self::$spares)) !== null) {
            $status = 0;
            if (\pcntl_waitpid($spare->pid, $status, \WNOHANG) !== 0) {
                \fclose($spare->socket); // died while parked (killed from outside): reaped, try the next
                continue;
            }
            if ($spare->handOver($env)) {
                return $spare->pid;
            }
            \posix_kill($spare->pid, \SIGKILL);
            \pcntl_waitpid($spare->pid, $status);
        }

        return null;
    }

    /**
     * Fork spares until --spares are parked. In the master: returns null. In a spare: parks it (child steps 1-3),
     * and returns its env once the master hands one over; a spare that gets EOF instead exits 0.
     */
    private static function parkSpares(): ?array
    {
        while (\count(self::$spares) < self::$spareCount) {
            $pair = \stream_socket_pair(\STREAM_PF_UNIX, \STREAM_SOCK_STREAM, \STREAM_IPPROTO_IP);
            if ($pair === false) {
                \fwrite(\STDERR, "rrts master: cannot create a socketpair for a spare; forking on request instead\n");
                self::$spareCount = 0;

                return null;
            }
            [$ours, $theirs] = $pair;
            $pid = \pcntl_fork();
            if ($pid === 0) {
                self::setTitle(self::SPARE_TITLE . ' (master ' . \posix_getppid() . ')'); // first: `ps` never shows it as a worker
                \fclose($ours);
                $expected = self::$lastEnv; // applied by the master (most likely the next request's too: the pool's)
                self::prepareChild();
                self::rehearseWake($expected);
                $env = Spare::awaitEnv($theirs, $expected);
                self::setTitle(self::$title);
                if ($env === null) {
                    FastExit::arm();
                    exit(0);
                }

                return $env;
            }
            \fclose($theirs);
            if ($pid < 0) {
                \fclose($ours);
                \fwrite(\STDERR, 'rrts master: cannot fork a spare: ' . \pcntl_strerror(\pcntl_get_last_error()) . "; forking on request instead\n");
                self::$spareCount = 0;

                return null;
            }
            self::$spares[] = new Spare($pid, $ours, self::$lastEnv);
        }
        self::rehearseFork();

        return null;
    }

    /**
     * Every fork leaves the master's pages shared with the child, so the next request's first writes to them are
     * copy-on-write faults (~25 us each on a virtual machine). Running the request's own steps on a sample now
     * takes those faults while nothing waits.
     */
    private static function rehearseFork(): void
    {
        $request = MsgPack::encode(['op' => Protocol::FORK, 'id' => 1, 'env' => self::$lastEnv]);
        $message = MsgPack::decode($request);
        $env = $message['env'] ?? [];
        self::checkEnv($env);
        \pack('V', $env === self::$lastEnv ? 0 : \strlen(MsgPack::encode($env))); // Spare::handOver()
        MsgPack::encode(Protocol::withIdOf(Protocol::forked(\getmypid()), ['id' => 1]));
    }

    /**
     * In a spare, before it parks: what happens first after the wake, on nothing. The env and the script globals
     * it inherited from the master, written again with the same values (the pages the wake writes next to are then
     * its own: 13 page faults after the wake instead of 20 without), the script's realpath cache entry, a
     * MessagePack round trip of the env (decoding a wake-up message, and allocator pages the start writes next), a
     * require (of the empty lib/rehearsal.php, which the master required once already), and what the SDK
     * does first (a unix socket and its connect, the JSON of the pid handshake, a frame header). Their code pages
     * are mapped and their first allocations made before the wake, not after it: ~70 -> 13-16 page faults on the
     * start's path here. A worker makes the same writes anyway, so the spare holds nothing a worker would not.
     *
     * @param array<string, string> $expected the env the spare applied
     */
    private static function rehearseWake(array $expected): void
    {
        self::applyEnv($expected, true);
        self::setScriptGlobals();
        \realpath(self::$scriptPath);
        MsgPack::decode(MsgPack::encode($expected));
        require __DIR__ . '/rehearsal.php';
        $socket = \function_exists('socket_create') ? @\socket_create(\AF_UNIX, \SOCK_STREAM, 0) : false;
        if ($socket !== false) {
            @\socket_connect($socket, '/nonexistent/rrts-rehearsal.sock'); // fails: only the code path is wanted
            \socket_close($socket);
        }
        \json_decode((string) \json_encode(['pid' => \getmypid()]), true);
        \unpack('Cversion/Cflags/Vlength', \pack('CCV', 0x13, 0x09, 12));
    }

    /** Checked before forking, so a bad env is a fork_failed answer and not a dead child. */
    private static function checkEnv(mixed $env): ?string
    {
        if (!\is_array($env)) {
            return 'env must be a map of strings';
        }
        foreach ($env as $name => $value) {
            $name = (string) $name;
            if ($name === '' || \strpbrk($name, "=\0") !== false) {
                return "bad environment variable name '$name'";
            }
            if (!\is_string($value) || \str_contains($value, "\0")) {
                return "the value of $name must be a string without NUL bytes";
            }
        }

        return null;
    }

    private static function reap(mixed $pid): array
    {
        if (!\is_int($pid) || !isset(self::$children[$pid])) {
            return Protocol::reaped($pid, error: 'not my child: ' . \var_export($pid, true));
        }
        $status = 0;
        $result = \pcntl_waitpid($pid, $status, \WNOHANG);
        if ($result === 0) {
            return Protocol::reaped($pid); // still running
        }
        if ($result < 0) {
            $errno = \pcntl_get_last_error();
            if ($errno === \PCNTL_ECHILD) {
                unset(self::$children[$pid]); // someone else reaped it (SIGCHLD ignored?): it is gone either way
            }

            return Protocol::reaped($pid, error: 'pcntl_waitpid: ' . \pcntl_strerror($errno));
        }
        unset(self::$children[$pid]);
        ['code' => $code, 'signal' => $signal] = Protocol::exitStatus($status);

        return Protocol::reaped($pid, true, $code, $signal);
    }

    /** rrts is gone: no worker may outlive it. */
    private static function killChildrenAndExit(): never
    {
        foreach (self::$spares as $spare) {
            self::$children[$spare->pid] = true;
        }
        foreach (\array_keys(self::$children) as $pid) {
            \posix_kill($pid, \SIGKILL);
        }
        foreach (\array_keys(self::$children) as $pid) {
            $status = 0;
            \pcntl_waitpid($pid, $status);
        }
        exit(0);
    }

    /** Queue a reply, with the request's id when it had one; sendAnswers() writes it. */
    private static function answer(array $reply, array $request = []): void
    {
        self::$answers[] = Protocol::withIdOf($reply, $request);
    }

    /** Write the queued replies in one go (after the messages read together); a closed channel means rrts is gone. */
    private static function sendAnswers(): void
    {
        $answers = self::$answers;
        self::$answers = [];
        if ($answers !== [] && !self::$channel->sendAll($answers)) {
            self::killChildrenAndExit();
        }
    }

    /** In a new child: drop the master's channel, its bookkeeping and the spares' sockets it inherited. */
    private static function forgetInherited(): void
    {
        self::$channel->close();
        self::$answers = []; // the master's, for the requests read with this fork's
        self::$children = [];
        foreach (self::$spares as $spare) {
            \fclose($spare->socket);
        }
        self::$spares = [];
        self::$spareCount = 0;
    }

    /** Child steps 0-3 (see the top comment), and the stream of its exit (FastExit): a direct fork and a spare. */
    private static function prepareChild(): void
    {
        Output::attach(); // first: whatever the child writes from now on is logged under its own pid
        self::forgetInherited();
        self::resetProcessState();
        FastExit::open();
    }

    /** Child steps 2-3 (see the top comment). */
    private static function resetProcessState(): void
    {
        for ($signal = 1; $signal < 32; $signal++) {
            if ($signal !== \SIGKILL && $signal !== \SIGSTOP && \pcntl_signal_get_handler($signal) !== \SIG_DFL) {
                // php-cli itself starts with SIGPIPE ignored; everything else starts at the default
                \pcntl_signal($signal, $signal === \SIGPIPE ? \SIG_IGN : \SIG_DFL);
            }
        }
        if (\pcntl_async_signals()) {
            \pcntl_async_signals(false);
        }
        if (self::$gcEnabled) {
            \gc_enable();
        }

        \mt_srand(\random_int(\PHP_INT_MIN, \PHP_INT_MAX));
    }

    /**
     * Step 4: sets every variable of the env not already applied with this value, and puts back the ones an earlier
     * env set that this one does not have. Runs in the master before each fork (the children inherit the result:
     * a pool's env does not change, so after the first fork it writes nothing), and in a spare woken with an env
     * other than the one it expected. $rewrite: write the applied values again too (a spare's rehearsal).
     */
    private static function applyEnv(array $env, bool $rewrite = false): void
    {
        foreach (self::$appliedEnv as $name => $value) {
            if (!\array_key_exists($name, $env)) {
                [$server, $environment, $real] = self::$envBefore[$name];
                self::setEnvEntry($name, $server, $environment, $real);
                unset(self::$appliedEnv[$name], self::$envBefore[$name]);
            }
        }
        foreach ($env as $name => $value) {
            $name = (string) $name;
            if (!$rewrite && (self::$appliedEnv[$name] ?? null) === $value) {
                continue;
            }
            self::$envBefore[$name] ??= [$_SERVER[$name] ?? null, $_ENV[$name] ?? null, \getenv($name)];
            self::setEnvEntry($name, $value, $value, $value);
            self::$appliedEnv[$name] = $value;
        }
    }

    /** $_SERVER[$name], $_ENV[$name] and the process environment's entry; null (false for the last) removes it. */
    private static function setEnvEntry(string $name, mixed $server, mixed $environment, string|false $real): void
    {
        if ($server === null) {
            unset($_SERVER[$name]);
        } else {
            $_SERVER[$name] = $server;
        }
        if ($environment === null) {
            unset($_ENV[$name]);
        } else {
            $_ENV[$name] = $environment;
        }
        \putenv($real === false ? $name : "$name=$real");
    }

    /** Step 5: $argv, $argc and the SCRIPT_* entries as `php <script> <args>` sets them; once, in the master. */
    private static function setScriptGlobals(): void
    {
        $argv = [self::$script, ...self::$scriptArgs];
        $GLOBALS['argv'] = $_SERVER['argv'] = $argv;
        $GLOBALS['argc'] = $_SERVER['argc'] = \count($argv);
        foreach (['SCRIPT_FILENAME', 'SCRIPT_NAME', 'PHP_SELF', 'PATH_TRANSLATED'] as $key) {
            $_SERVER[$key] = self::$script;
        }
    }

    /** The last of steps 4-5 in a new child (a spare: when it is woken); returns the script to require. */
    private static function becomeWorker(array $env): string
    {
        self::applyEnv($env); // a direct fork inherited it; a spare woken with another env than it expected
        $_SERVER['REQUEST_TIME_FLOAT'] = \microtime(true);
        $_SERVER['REQUEST_TIME'] = (int) $_SERVER['REQUEST_TIME_FLOAT'];

        return self::$scriptPath;
    }

    public static function opcacheEnabled(): bool
    {
        $status = \function_exists('opcache_get_status') ? @\opcache_get_status(false) : false;
        if (\is_array($status)) {
            return (bool) ($status['opcache_enabled'] ?? false);
        }

        return \extension_loaded('Zend OPcache') && \filter_var(\ini_get('opcache.enable_cli'), \FILTER_VALIDATE_BOOL);
    }

    /** Absolute path of a file given relative to the cwd (require would search include_path first). */
    private static function existingFile(string $path, string $what): string
    {
        $absolute = $path[0] === '/' ? $path : \getcwd() . '/' . $path;
        if (!\is_file($absolute) || !\is_readable($absolute)) {
            self::fail("$what not found or not readable: $path (cwd " . \getcwd() . ')');
        }

        return $absolute;
    }

    public static function fail(string $message): never
    {
        \fwrite(\STDERR, "rrts master: $message\n");
        exit(1);
    }
}
