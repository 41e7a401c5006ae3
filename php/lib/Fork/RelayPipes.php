<?php

declare(strict_types=1);

namespace Rrts\Master;

/**
 * A fork worker's relay hand-over (docs/protocol.md §2.3, docs/fork-mode.md): before the script runs, the child
 * connects to rrts's unix relay itself and receives, in one message, the pid request and the ends of two real pipes
 * (SCM_RIGHTS); RR_RELAY then names them, `pipes://fd/<in>:fd/<out>`, which the SDK opens as it opens stdin and
 * stdout, and answers the pid request rrts wrote on them too. Pipes cost both sides less per frame than the socket.
 * Whatever fails leaves RR_RELAY as it was: the SDK then connects to the socket as without a hand-over.
 */
final class RelayPipes
{
    /** the env variable that turns the hand-over off ("0"), for a worker that must stay on the socket */
    public const SWITCH = 'RRTS_RELAY_PIPES';
    /** how long rrts may take to answer (s): it answers at once, or is gone and the worker's start fails anyway */
    private const ANSWER_TIMEOUT_S = 30;
    /** where the search for the received fds' numbers stops (they are the lowest free ones) */
    private const MAX_FD = 4096;
    /** more than rrts's pid request with the offer (~40 bytes) */
    private const OFFER_BYTES = 256;

    /** @var list<resource> the received pipe ends, held so their fds stay open for the SDK's php://fd/N */
    private static array $held = [];

    /** In a new worker, after its env is applied: RR_RELAY becomes the pipes rrts hands over, when it does. */
    public static function takeOver(): void
    {
        $relay = $_SERVER['RR_RELAY'] ?? $_ENV['RR_RELAY'] ?? null;
        if (!\is_string($relay) || !\str_starts_with($relay, 'unix://') || ($_SERVER[self::SWITCH] ?? '') === '0'
            || !\function_exists('socket_recvmsg')) {
            return;
        }
        $fds = self::receive(\substr($relay, \strlen('unix://')));
        if ($fds === null) {
            return;
        }
        $pipes = "pipes://fd/{$fds[0]}:fd/{$fds[1]}";
        $_SERVER['RR_RELAY'] = $_ENV['RR_RELAY'] = $pipes;
        \putenv("RR_RELAY=$pipes");
    }

    /** @return array{int, int}|null the fd numbers of the jobs pipe's read end and the answers pipe's write end */
    private static function receive(string $path): ?array
    {
        $socket = @\socket_create(\AF_UNIX, \SOCK_STREAM, 0);
        if ($socket === false) {
            return null;
        }
        try {
            \socket_set_option($socket, \SOL_SOCKET, \SO_RCVTIMEO, ['sec' => self::ANSWER_TIMEOUT_S, 'usec' => 0]);
            if (!@\socket_connect($socket, $path)) {
                return null;
            }
            // one read: rrts sends the pid request and the pipes in one sendmsg, at once (a listener that offers
            // none sends the request alone: it gets no answer here, and the SDK's own connection answers it)
            $message = ['name' => [], 'buffer_size' => self::OFFER_BYTES, 'controllen' => \socket_cmsg_space(\SOL_SOCKET, \SCM_RIGHTS, 2)];
            $read = @\socket_recvmsg($socket, $message, 0);
            $streams = [];
            foreach ($message['control'] ?? [] as $control) {
                if (($control['level'] ?? null) === \SOL_SOCKET && ($control['type'] ?? null) === \SCM_RIGHTS) {
                    $streams = \array_merge($streams, $control['data'] ?? []);
                }
            }
            $fds = $read !== false && \count($streams) === 2 && self::offersPipes((string) ($message['iov'][0] ?? ''))
                ? self::fdNumbers($streams) : null;
            if ($fds !== null) {
                self::$held = $streams;
            }

            return $fds; // without it, $streams go out of scope and close: rrts sees the answers pipe's end
        } finally {
            \socket_close($socket);
        }
    }

    /** Whether these bytes are one whole frame, rrts's pid request that comes with pipes (`"pipes":true`). */
    private static function offersPipes(string $bytes): bool
    {
        if (\strlen($bytes) < 12) {
            return false;
        }
        $h = \unpack('Cversion/Cflags/Vlength', $bytes);
        $offset = 12 + (((int) $h['version'] & 0x0f) - 3) * 4;
        if ($offset < 12 || \strlen($bytes) !== $offset + (int) $h['length']) {
            return false;
        }
        $request = \json_decode(\substr($bytes, $offset), true);

        return \is_array($request) && !empty($request['pid']) && ($request['pipes'] ?? false) === true;
    }

    /**
     * PHP gives received fds as streams without their numbers: each is the /proc/self/fd entry that links to its
     * pipe's inode (rrts made the pipes after the fork, so no other fd of this process refers to them). The kernel
     * gives received fds the lowest free numbers, so the entries are read upward from 3 until both are found:
     * listing the directory and reading every entry cost a woken spare ~0.3 ms.
     *
     * @param list<mixed> $streams
     * @return array{int, int}|null
     */
    private static function fdNumbers(array $streams): ?array
    {
        $wanted = [];
        foreach ($streams as $i => $stream) {
            $stat = \is_resource($stream) ? @\fstat($stream) : false;
            if ($stat === false) {
                return null;
            }
            $wanted['pipe:[' . $stat['ino'] . ']'] = $i;
        }
        $numbers = [];
        for ($fd = 3; $fd < self::MAX_FD && \count($numbers) < \count($wanted); $fd++) {
            $link = @\readlink("/proc/self/fd/$fd");
            if ($link !== false && isset($wanted[$link])) {
                $numbers[$wanted[$link]] = $fd;
            }
        }

        return isset($numbers[0], $numbers[1]) ? [$numbers[0], $numbers[1]] : null;
    }
}
