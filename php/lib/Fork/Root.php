<?php

declare(strict_types=1);

namespace Rrts\Master;

/**
 * The root (--root): started by rrts once for every pool of the same command and preload, it never requires the
 * preload or the script. It forks one generation master per start or reset of a pool, with that pool's env from
 * the request; the masters inherit its opcache segment, so a reset's master finds the app compiled and only
 * recompiles what changed. It reaps the masters and reports how they exited.
 */
final class Root
{
    /** opcache this full or wasted (percent) makes the root refuse a generation: rrts then starts a fresh root */
    private const MAX_WASTED_PERCENT = 10;
    /** how long the masters get to quit by themselves after rrts closed the channel, before SIGKILL (us) */
    private const EOF_GRACE_US = 3_000_000;

    /** @var array<int, true> generation masters not yet reaped */
    private array $masters = [];
    /** in a new generation master: the output socket its pool asked for (null: the root's --output) */
    private ?string $output = null;

    private function __construct(private readonly Channel $channel)
    {
    }

    /**
     * The root's life: with $fillOpcache, a child that fills the opcache first; then the loop. Returns only in a new
     * child: Role::Master (a generation master, its channel to the root closed) or Role::OpcacheFiller, with the
     * output socket a generation master's pool asked for (null: none, the root's --output applies).
     *
     * @return array{Role, ?string}
     */
    public static function run(Channel $channel, bool $fillOpcache): array
    {
        if ($fillOpcache && Prewarm::forkOpcacheFiller()) {
            $channel->close();

            return [Role::OpcacheFiller, null];
        }
        $root = new self($channel);

        return [$root->serve(), $root->output];
    }

    /** The loop; returns only in a new generation master. */
    private function serve(): Role
    {
        $channel = $this->channel;
        \pcntl_signal(\SIGCHLD, static function (): void {
        }, false); // a handler without SA_RESTART: a dead master wakes the select below
        $status = Master::opcacheEnabled() ? @\opcache_get_status(false) : false;
        $this->send(Master::readyMessage(null, 0) + [
            'root' => true,
            'warm' => \is_array($status), // opcache_get_status() answers (not restricted): resets can revalidate
        ]);
        Prewarm::pageOutStartupPages();
        while (true) {
            $readable = $channel->waitReadable(1_000_000);
            \pcntl_signal_dispatch();
            $this->reapMasters();
            if (!$readable) {
                continue;
            }
            $message = $channel->receiveOrExit('root');
            if ($message === null) {
                $this->awaitMastersAndExit();
            }
            $op = $message['op'] ?? null;
            if ($op === Protocol::GENERATION) {
                $env = $message['env'] ?? [];
                $output = $message['output'] ?? null;
                $refused = ForkEnv::check($env) ?? self::outputProblem($output) ?? self::opcacheProblem();
                if ($refused !== null) {
                    $this->send(Protocol::generationFailed($message['id'] ?? null, $refused));
                    continue;
                }
                $pid = \pcntl_fork();
                if ($pid === 0) {
                    $channel->close();
                    \pcntl_signal(\SIGCHLD, \SIG_DFL);
                    $this->masters = [];
                    // the pools sharing this root differ in RR_MODE and RR_RELAY: the preload sees its own pool's
                    (new ForkEnv())->apply($env);
                    // and in where their output goes: the pool that asked quotes a failed start's lines
                    $this->output = $output;

                    return Role::Master;
                }
                if ($pid < 0) {
                    $error = 'pcntl_fork: ' . \pcntl_strerror(\pcntl_get_last_error());
                    $this->send(Protocol::generationFailed($message['id'] ?? null, $error));
                    continue;
                }
                $this->masters[$pid] = true;
                $this->send(Protocol::generation($message['id'] ?? null, $pid));
                continue;
            }
            $reply = $op === Protocol::PING ? Protocol::rootPong(\count($this->masters)) : Protocol::unknownOp($op);
            $this->send(Protocol::withIdOf($reply, $message));
        }
    }

    /** Why a generation's output socket cannot be used (null: it can, or there is none). */
    private static function outputProblem(mixed $output): ?string
    {
        if ($output === null || (\is_string($output) && $output !== '' && !\str_contains($output, "\0"))) {
            return null;
        }

        return 'output must be a socket path';
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

    private function reapMasters(): void
    {
        $status = 0;
        while (($pid = \pcntl_waitpid(-1, $status, \WNOHANG)) > 0) {
            if (!isset($this->masters[$pid])) {
                continue;
            }
            unset($this->masters[$pid]);
            $this->send(Protocol::exited($pid, $status));
        }
    }

    /** rrts closed the channel (or died): its masters see their own channels close and quit; reap them. */
    private function awaitMastersAndExit(): never
    {
        $until = \hrtime(true) + self::EOF_GRACE_US * 1000;
        $status = 0;
        while ($this->masters !== [] && \hrtime(true) < $until) {
            while (($pid = \pcntl_waitpid(-1, $status, \WNOHANG)) > 0) {
                unset($this->masters[$pid]);
            }
            \usleep(10_000);
        }
        foreach (\array_keys($this->masters) as $pid) {
            \posix_kill($pid, \SIGKILL);
            \pcntl_waitpid($pid, $status);
        }
        exit(0);
    }

    private function send(array $message): void
    {
        if (!$this->channel->send($message)) {
            $this->awaitMastersAndExit();
        }
    }
}
