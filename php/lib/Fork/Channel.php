<?php

declare(strict_types=1);

namespace Rrts\Master;

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
