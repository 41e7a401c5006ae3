<?php

declare(strict_types=1);

namespace Rrts\Master;

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
                // A read that times out (default_socket_timeout, 60 s) is not the master leaving: a spare may park
                // for hours. Only EOF ends it.
                if (\stream_get_meta_data($socket)['timed_out'] && !\feof($socket)) {
                    continue;
                }

                return null; // blocking socket: '' means EOF
            }
            $data .= $chunk;
        }

        return $data;
    }
}
