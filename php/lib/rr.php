<?php

/**
 * Rrts\Lite: a tiny, dependency-free PHP side of RoadRunner's worker protocol (goridge v3 frames, pid handshake,
 * request/response, errors, restart request, streaming with PING/PONG/STOP, HTTP JSON contexts).
 *
 * It exists so the rrts example and test workers run without composer. It behaves like the official SDK
 * (spiral/goridge + spiral/roadrunner-worker + spiral/roadrunner-http, JSON mode) on the wire, but it is not that
 * SDK: real applications should use spiral/roadrunner-http with PSR-7. Wire format: docs/protocol.md §1–§4.
 */

declare(strict_types=1);

namespace Rrts\Lite;

/** Anything that breaks the protocol: short header, closed relay, unexpected control message. */
class ProtocolException extends \RuntimeException
{
}

/** Thrown into a streaming generator when the server asked to stop the stream. */
class StreamStoppedException extends \RuntimeException
{
}

/** One goridge v3 frame, and its byte encoding (docs/protocol.md §1). */
final class Frame
{
    public const CONTROL = 0x01;
    public const CODEC_RAW = 0x04;
    public const CODEC_JSON = 0x08;
    public const CODEC_MSGPACK = 0x10;
    public const CODEC_GOB = 0x20;
    public const ERROR = 0x40;
    public const CODEC_PROTO = 0x80;

    // byte 10
    public const STREAM = 0x01;
    public const STOP = 0x02;
    public const PING = 0x04;
    public const PONG = 0x08;

    public const HEADER_SIZE = 12;
    public const MAX_OPTIONS = 10;

    /** @param list<int> $options */
    public function __construct(
        public string $payload = '',
        public array $options = [],
        public int $flags = 0,
        public int $byte10 = 0,
    ) {
    }

    /** Header (version 1, HL, flags, length, CRC of bytes 0..5, byte10, byte11=0), options, payload. */
    public static function pack(Frame $frame): string
    {
        $count = \count($frame->options);
        if ($count > self::MAX_OPTIONS) {
            throw new \InvalidArgumentException('goridge frames carry at most 10 options');
        }
        $head = \pack('CCV', 0x10 | (3 + $count), $frame->flags & 0xff, \strlen($frame->payload));
        $options = $count > 0 ? \pack('V*', ...$frame->options) : '';

        return $head . \pack('V', \crc32($head)) . \chr($frame->byte10 & 0xff) . "\0" . $options . $frame->payload;
    }

    /**
     * Decode a 12-byte header. The CRC is not checked (the SDK does not either).
     *
     * @return array{hl: int, flags: int, length: int, byte10: int}
     */
    public static function unpackHeader(string $header): array
    {
        if (\strlen($header) !== self::HEADER_SIZE) {
            throw new ProtocolException('Unable to read frame header: Incorrect header size');
        }
        $h = \unpack('Cvhl/Cflags/Vlength/Vcrc/Cbyte10', $header);
        $hl = $h['vhl'] & 0x0f;
        if ($hl < 3 || $hl > 3 + self::MAX_OPTIONS) {
            throw new ProtocolException("Invalid frame header length: $hl");
        }

        return ['hl' => $hl, 'flags' => $h['flags'], 'length' => $h['length'], 'byte10' => $h['byte10']];
    }

    /** Build a frame from a decoded header and the bytes that follow it (options then payload). */
    public static function fromParts(array $header, string $rest): Frame
    {
        $optionBytes = ($header['hl'] - 3) * 4;
        $options = $optionBytes > 0 ? \array_values(\unpack('V*', \substr($rest, 0, $optionBytes))) : [];

        return new Frame(\substr($rest, $optionBytes), $options, $header['flags'], $header['byte10']);
    }

    /** Whole frame from bytes (for tests and tools). */
    public static function unpack(string $bytes): Frame
    {
        $header = self::unpackHeader(\substr($bytes, 0, self::HEADER_SIZE));

        return self::fromParts($header, \substr($bytes, self::HEADER_SIZE));
    }
}

/** A duplex frame transport between the worker and the server. */
interface Relay
{
    public function waitFrame(): Frame;

    public function send(Frame $frame): void;

    /** True when a frame can be read without blocking. */
    public function hasFrame(): bool;

    /** Pipes are "blocking" relays: the SDK only PINGs (and looks for STOP) on those while waiting for a PONG. */
    public function isBlocking(): bool;
}

/** Relay factory, reading RR_RELAY the way the SDK does (docs/protocol.md §2.1, §3.2). */
final class Relays
{
    /** RR_RELAY from $_SERVER, then $_ENV, default "pipes"; getenv() is never consulted (like the SDK). */
    public static function fromGlobals(): Relay
    {
        $address = $_SERVER['RR_RELAY'] ?? $_ENV['RR_RELAY'] ?? 'pipes';

        return self::create(\is_string($address) ? $address : 'pipes');
    }

    /** "pipes", "pipes://stdin:stdout", "tcp://host:port" (IPv4 or host name), "unix://path". */
    public static function create(string $address): Relay
    {
        if ($address === 'pipes' || $address === '') {
            return new StreamRelay(\STDIN, \STDOUT);
        }
        // the SDK's own pattern (not anchored), which the fork master compiles for its children
        if (!\preg_match('/(?P<protocol>[^:\/]+):\/\/(?P<arg1>[^:]+)(:(?P<arg2>[^:]+))?/', $address, $m)) {
            throw new ProtocolException("unsupported connection format: $address");
        }
        $arg2 = $m['arg2'] ?? '';

        return match (\strtolower($m['protocol'])) {
            'pipes' => new StreamRelay(self::open('php://' . $m['arg1'], 'rb'), self::open('php://' . $arg2, 'wb')),
            'tcp' => \ctype_digit($arg2)
                ? new SocketRelay($m['arg1'], (int) $arg2, \AF_INET)
                : throw new ProtocolException("unsupported connection format: $address"),
            'unix' => new SocketRelay($m['arg1'], null, \AF_UNIX),
            default => throw new ProtocolException("unsupported connection format: $address"),
        };
    }

    /** @return resource */
    private static function open(string $path, string $mode)
    {
        $stream = @\fopen($path, $mode);
        if ($stream === false) {
            throw new ProtocolException("unable to open $path");
        }

        return $stream;
    }
}

/** Frames over a pair of PHP streams (STDIN/STDOUT for the "pipes" relay). */
final class StreamRelay implements Relay
{
    /**
     * @param resource $in
     * @param resource $out
     */
    public function __construct(private $in, private $out)
    {
    }

    public function waitFrame(): Frame
    {
        // One fread for the header, exactly like the SDK: a header split across two writes makes this throw.
        $raw = \fread($this->in, Frame::HEADER_SIZE);
        $header = Frame::unpackHeader($raw === false ? '' : $raw);
        $need = ($header['hl'] - 3) * 4 + $header['length'];
        $rest = '';
        while (\strlen($rest) < $need) {
            $chunk = \fread($this->in, $need - \strlen($rest));
            if ($chunk === false || ($chunk === '' && \feof($this->in))) {
                throw new ProtocolException('Unable to read frame body: relay closed');
            }
            $rest .= $chunk;
        }

        return Frame::fromParts($header, $rest);
    }

    public function send(Frame $frame): void
    {
        $bytes = Frame::pack($frame);
        $done = 0;
        $total = \strlen($bytes);
        while ($done < $total) {
            $n = \fwrite($this->out, $done === 0 ? $bytes : \substr($bytes, $done));
            if ($n === false || $n === 0) {
                throw new ProtocolException('Unable to write frame: relay closed');
            }
            $done += $n;
        }
        \fflush($this->out);
    }

    public function hasFrame(): bool
    {
        $read = [$this->in];
        $write = $except = null;

        return (bool) @\stream_select($read, $write, $except, 0, 0);
    }

    public function isBlocking(): bool
    {
        return true;
    }
}

/** Frames over a TCP or unix socket; connects lazily on first use, like the SDK. */
final class SocketRelay implements Relay
{
    private const CONNECT_ATTEMPTS = 11;
    private const RETRY_DELAY_US = 100_000;

    private ?\Socket $socket = null;

    public function __construct(private string $address, private ?int $port, private int $domain)
    {
    }

    public function waitFrame(): Frame
    {
        $socket = $this->connect();
        $raw = '';
        $got = \socket_recv($socket, $raw, Frame::HEADER_SIZE, \MSG_WAITALL);
        $header = Frame::unpackHeader($got === Frame::HEADER_SIZE ? (string) $raw : '');
        $need = ($header['hl'] - 3) * 4 + $header['length'];
        $rest = '';
        while (\strlen($rest) < $need) {
            $chunk = '';
            $got = \socket_recv($socket, $chunk, $need - \strlen($rest), \MSG_WAITALL);
            if ($got === false || $got === 0) {
                throw new ProtocolException('Unable to read frame body: ' . $this->describe());
            }
            $rest .= $chunk;
        }

        return Frame::fromParts($header, $rest);
    }

    public function send(Frame $frame): void
    {
        $socket = $this->connect();
        $bytes = Frame::pack($frame);
        while ($bytes !== '') {
            $n = \socket_send($socket, $bytes, \strlen($bytes), 0);
            if ($n === false || $n === 0) {
                throw new ProtocolException('Unable to write frame: ' . $this->describe());
            }
            $bytes = (string) \substr($bytes, $n);
        }
    }

    public function hasFrame(): bool
    {
        $read = [$this->connect()];
        $write = $except = null;

        return (bool) @\socket_select($read, $write, $except, 0, 0);
    }

    public function isBlocking(): bool
    {
        return false;
    }

    private function connect(): \Socket
    {
        if ($this->socket !== null) {
            return $this->socket;
        }
        for ($attempt = 1; $attempt <= self::CONNECT_ATTEMPTS; $attempt++) {
            $socket = \socket_create($this->domain, \SOCK_STREAM, $this->domain === \AF_UNIX ? 0 : \SOL_TCP);
            if ($socket === false) {
                break;
            }
            if (@\socket_connect($socket, $this->address, $this->port ?? 0)) {
                return $this->socket = $socket;
            }
            \socket_close($socket);
            \usleep(self::RETRY_DELAY_US);
        }
        throw new ProtocolException('Unable to connect to ' . $this->describe());
    }

    private function describe(): string
    {
        return $this->domain === \AF_UNIX ? "unix://{$this->address}" : "tcp://{$this->address}:{$this->port}";
    }
}

/**
 * The worker end of the protocol: handshake, payloads, responses, errors, restart request, streams.
 * Creating one sends PHP's own output (echo, print, var_dump) to STDERR, because STDOUT may be the relay.
 */
final class Worker
{
    /** PING after every 5th stream frame (pipes only), as the SDK does. */
    private const PING_EVERY = 5;

    private static bool $outputRedirected = false;

    /** @var list<Frame> frames read while polling during a stream, handed out by waitPayload() later */
    private array $pending = [];
    private bool $streaming = false;
    private int $framesSent = 0;
    private bool $shouldPing = false;
    private bool $waitingPong = false;

    public function __construct(private Relay $relay, bool $redirectOutput = true)
    {
        if ($redirectOutput) {
            self::redirectOutputToStderr();
        }
    }

    /** A worker on the relay named by RR_RELAY (see Relays::fromGlobals()). */
    public static function create(): self
    {
        return new self(Relays::fromGlobals());
    }

    public function getRelay(): Relay
    {
        return $this->relay;
    }

    /**
     * Wait for the next job. Answers the pid request on the way; returns null on the stop control.
     *
     * @return array{header: string, body: string, flags: int}|null
     */
    public function waitPayload(): ?array
    {
        while (true) {
            $frame = \array_shift($this->pending) ?? $this->relay->waitFrame();
            if ($frame->flags & Frame::CONTROL) {
                $control = \json_decode($frame->payload, true);
                if (!\is_array($control)) {
                    throw new ProtocolException('Invalid task header, JSON payload is expected');
                }
                if (!empty($control['stop'])) {
                    return null;
                }
                if (empty($control['pid'])) {
                    throw new ProtocolException('Invalid task header, undefined control package');
                }
                $this->relay->send(new Frame(\json_encode(['pid' => \getmypid()]), [], Frame::CONTROL));
                continue;
            }
            if ($frame->byte10 & (Frame::STOP | Frame::PONG)) {
                continue; // late STOP/PONG from a finished stream
            }
            if (\count($frame->options) !== 1) {
                throw new ProtocolException('Invalid request frame: exactly one option (context length) expected');
            }
            $length = $frame->options[0];

            return [
                'header' => \substr($frame->payload, 0, $length),
                'body' => \substr($frame->payload, $length),
                'flags' => $frame->flags,
            ];
        }
    }

    /** Send a response frame: options [len(header)], payload header ‖ body; $more sets the STREAM bit. */
    public function respond(string $header, string $body, bool $more = false, int $codec = 0): void
    {
        $frame = new Frame($header . $body, [\strlen($header)], $codec);
        if ($more) {
            $frame->byte10 = Frame::STREAM;
            if ($this->streaming) {
                $this->framesSent++;
                if ($this->shouldPing) {
                    $frame->byte10 |= Frame::PING;
                    $this->shouldPing = false;
                    $this->waitingPong = true;
                }
            }
        }
        $this->relay->send($frame);
    }

    /** The job failed: an ERROR frame with the message; the worker stays usable. */
    public function error(string $message): void
    {
        $this->relay->send(new Frame($message, [], Frame::ERROR));
    }

    /** Ask the server to replace this worker (and re-run the current job elsewhere). Keep serving nothing after. */
    public function stop(): void
    {
        $this->respond('{"stop":true}', '');
    }

    /**
     * Stream a response: every chunk goes out as a STREAM frame (the first carries $header, later ones an empty
     * context), then one final frame without STREAM holding the generator's return value (usually empty).
     * If the server sends STOP, StreamStoppedException is thrown into the generator and the empty final frame is
     * sent; the same happens when the generator throws.
     *
     * @param iterable<string> $chunks
     */
    public function respondStream(string $header, iterable $chunks, int $codec = 0): void
    {
        $generator = $chunks instanceof \Generator ? $chunks : (static function () use ($chunks) {
            yield from $chunks;
        })();
        $this->streaming = true;
        $this->framesSent = 0;
        $this->shouldPing = $this->waitingPong = false;
        try {
            $this->pump($generator, $header, $codec);
        } finally {
            $this->streaming = false;
        }
    }

    private function pump(\Generator $generator, string $header, int $codec): void
    {
        while (true) {
            try {
                if (!$generator->valid()) {
                    $this->respond($header, (string) $generator->getReturn(), false, $codec);

                    return;
                }
                $chunk = (string) $generator->current();
            } catch (\Throwable $e) {
                $this->endStreamEarly('stream generator failed: ' . $e->getMessage());

                return;
            }
            if ($this->streamStopRequested()) {
                try {
                    $generator->throw(new StreamStoppedException('stream stopped by the server'));
                } catch (\Throwable) {
                    // the generator may let it through; the stream is over either way
                }
                $this->endStreamEarly(null);

                return;
            }
            $this->respond($header, $chunk, true, $codec);
            $header = '';
            try {
                $generator->next();
            } catch (\Throwable $e) {
                $this->endStreamEarly('stream generator failed: ' . $e->getMessage());

                return;
            }
        }
    }

    /** The empty final frame (one option = 0, no payload, no STREAM bit) the server waits for. */
    private function endStreamEarly(?string $why): void
    {
        if ($why !== null) {
            \fwrite(\STDERR, $why . "\n");
        }
        $this->respond('', '');
    }

    /**
     * Called before each chunk. Pipes: decide whether the next chunk carries a PING, and look for input only while
     * a PONG is awaited (so a STOP is seen only then, like the SDK). Sockets: always look, never ping.
     */
    private function streamStopRequested(): bool
    {
        if ($this->relay->isBlocking()) {
            if (!$this->waitingPong && $this->framesSent > 0 && $this->framesSent % self::PING_EVERY === 0) {
                $this->shouldPing = true;
            }
            if (!$this->waitingPong) {
                return false;
            }
        }
        $stop = false;
        while (!$stop && $this->relay->hasFrame()) {
            $frame = $this->relay->waitFrame();
            if ($frame->byte10 & Frame::PONG) {
                $this->waitingPong = false;
            } elseif ($frame->byte10 & Frame::STOP) {
                $stop = true;
            } else {
                $this->pending[] = $frame;
            }
        }

        return $stop;
    }

    /** Output buffer with chunk size 1 that forwards every byte to STDERR (the SDK's StdoutHandler). */
    private static function redirectOutputToStderr(): void
    {
        if (self::$outputRedirected) {
            return;
        }
        self::$outputRedirected = true;
        \ob_start(static function (string $chunk): string {
            if ($chunk !== '') {
                \fwrite(\STDERR, $chunk);
            }

            return '';
        }, 1);
    }
}

/**
 * HTTP on top of Worker, JSON contexts only (docs/protocol.md §4.2–4.6), answering like spiral/roadrunner-http 3.4:
 * response frames carry flags 0 unless another codec is given (0x08 emulates http 3.5 in JSON mode).
 */
final class HttpWorker
{
    public function __construct(private Worker $worker, private int $codec = 0)
    {
    }

    public static function create(): self
    {
        return new self(Worker::create());
    }

    public function getWorker(): Worker
    {
        return $this->worker;
    }

    /**
     * Next HTTP request, or null when the worker must stop.
     * 'ctx' is the decoded context, 'header' its raw JSON, 'parsed' the decoded body tree when ctx.parsed is true.
     *
     * @return array{ctx: array<string, mixed>, header: string, body: string, parsed: mixed}|null
     */
    public function waitRequest(): ?array
    {
        $payload = $this->worker->waitPayload();
        if ($payload === null || ($payload['header'] === '' && $payload['body'] === '')) {
            return null; // the SDK treats an empty payload as "terminate" too
        }
        try {
            $ctx = \json_decode($payload['header'], true, 512, \JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            $hint = ($payload['flags'] & Frame::CODEC_PROTO) ? ' (protobuf contexts are not supported here)' : '';
            throw new ProtocolException('Invalid HTTP request context: ' . $e->getMessage() . $hint, 0, $e);
        }
        if (!\is_array($ctx)) {
            throw new ProtocolException('Invalid HTTP request context: JSON object expected');
        }
        $parsed = null;
        if (!empty($ctx['parsed'])) {
            $parsed = $payload['body'] === '' ? [] : \json_decode($payload['body'], true, 512, \JSON_THROW_ON_ERROR);
        }

        return ['ctx' => $ctx, 'header' => $payload['header'], 'body' => $payload['body'], 'parsed' => $parsed];
    }

    /** @param array<string, string|list<string>> $headers */
    public function respond(int $status, string $body, array $headers = []): void
    {
        $this->worker->respond($this->context($status, $headers), $body, false, $this->codec);
    }

    /**
     * Streamed response; the first frame carries status/headers, later ones an empty context (http 3.4 style).
     *
     * @param iterable<string> $chunks
     * @param array<string, string|list<string>> $headers
     */
    public function respondStream(int $status, iterable $chunks, array $headers = []): void
    {
        $this->worker->respondStream($this->context($status, $headers), $chunks, $this->codec);
    }

    /**
     * 103 Early Hints: a STREAM frame with status 103 and no body; the real response follows.
     *
     * @param array<string, string|list<string>> $headers
     */
    public function earlyHints(array $headers): void
    {
        $this->worker->respond($this->context(103, $headers), '', true, $this->codec);
    }

    /** {"status":N,"headers":{"Name":["v",…]}}, "headers":{} when empty; plain json_encode like the SDK. */
    private function context(int $status, array $headers): string
    {
        $normalized = [];
        foreach ($headers as $name => $values) {
            $normalized[(string) $name] = \array_map('strval', \is_array($values) ? \array_values($values) : [$values]);
        }

        return \json_encode(['status' => $status, 'headers' => (object) $normalized], \JSON_THROW_ON_ERROR);
    }
}
