<?php

declare(strict_types=1);

namespace Rrts\Master;

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
    public const SPARES = 'spares';
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

    /** master -> rrts: the answer to a spares request: how many it keeps parked from now on. */
    public static function sparesSet(int $count): array
    {
        return ['op' => 'spares', 'count' => $count];
    }

    public static function masterPong(int $children, int $spares, int $memory): array
    {
        return ['op' => 'pong', 'children' => $children, 'spares' => $spares, 'memory' => $memory];
    }

    /** root and master -> rrts: a request with an op neither knows. */
    public static function unknownOp(mixed $op): array
    {
        return self::badRequest('unknown op ' . (\is_string($op) ? $op : \get_debug_type($op)));
    }

    /** root or master -> rrts: a request it cannot carry out (the request fails with this text). */
    public static function badRequest(string $error): array
    {
        return ['op' => 'error', 'error' => $error];
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
