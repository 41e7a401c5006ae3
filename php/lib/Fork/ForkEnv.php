<?php

declare(strict_types=1);

namespace Rrts\Master;

/**
 * A fork request's env in this process (child step 4, docs/fork-mode.md §2.2): $_SERVER, $_ENV and
 * putenv(). The master applies each request's before it forks, so its children inherit it (a pool's env does not
 * change: after the first fork nothing is written); a spare woken with another env than it expected applies the
 * difference.
 */
final class ForkEnv
{
    /** @var array<string, string> the fork env this process applied */
    private array $applied = [];
    /** @var array<string, array{mixed, mixed, string|false}> a name's $_SERVER, $_ENV and getenv() before apply() */
    private array $before = [];

    /** Checked before forking, so a bad env is a fork_failed answer and not a dead child. */
    public static function check(mixed $env): ?string
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

    /**
     * Sets every variable of the env not already applied with this value, and puts back the ones an earlier env set
     * that this one does not have. $rewrite: write the applied values again too (a spare's rehearsal).
     */
    public function apply(array $env, bool $rewrite = false): void
    {
        foreach ($this->applied as $name => $value) {
            if (!\array_key_exists($name, $env)) {
                [$server, $environment, $real] = $this->before[$name];
                self::setEntry($name, $server, $environment, $real);
                unset($this->applied[$name], $this->before[$name]);
            }
        }
        foreach ($env as $name => $value) {
            $name = (string) $name;
            if (!$rewrite && ($this->applied[$name] ?? null) === $value) {
                continue;
            }
            $this->before[$name] ??= [$_SERVER[$name] ?? null, $_ENV[$name] ?? null, \getenv($name)];
            self::setEntry($name, $value, $value, $value);
            $this->applied[$name] = $value;
        }
    }

    /** $_SERVER[$name], $_ENV[$name] and the process environment's entry; null (false for the last) removes it. */
    private static function setEntry(string $name, mixed $server, mixed $environment, string|false $real): void
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
}
