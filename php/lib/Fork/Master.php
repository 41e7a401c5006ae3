<?php

declare(strict_types=1);

namespace Rrts\Master;

/** The master's state and loop; serve() returns only in a freshly forked child, with the script to require. */
final class Master
{
    /** the most messages read ahead before the first is handled (see receiveWaiting()) */
    private const MAX_BURST = 64;
    /**
     * Spares are refilled once no fork was asked for this long (us): not while the worker that just took one is
     * starting, nor within a burst of fork requests (docs/fork-mode.md §5). Other messages (reap, ping) do not
     * put it off: workers that exit often would never leave the channel quiet that long.
     */
    private const SPARE_REFILL_IDLE_US = 20_000;
    /** what `ps` shows for a parked spare; a woken one shows the master's command line again, like any worker */
    public const SPARE_TITLE = 'rrts: fork spare';
    /** what `ps` shows for the root */
    public const ROOT_TITLE = 'rrts: fork root';

    private static Options $options;
    private static Role $role;
    private static Channel $channel;
    /** @var list<array<string, mixed>> replies not yet sent (see answer()) */
    private static array $answers = [];
    /** whether the cycle collector was on after the preload: the master turns it off, its children back on */
    private static bool $gcEnabled = true;
    /** hrtime() of the last fork request (of the ready message until the first) */
    private static int $lastForkAt = 0;
    /** @var array<int, true> pids forked and not yet reaped */
    private static array $children = [];
    /** how many spares to keep parked: --spares, 0 once parking one failed */
    private static int $spareCount = 0;
    /** the master's command line, args joined by spaces ('' when /proc is not there: then titles stay as they are) */
    private static string $title = '';
    /** @var list<Spare> parked, oldest first */
    private static array $spares = [];
    /**
     * @var array<string, string> the env of the last fork request, as it came (a spare forked after it expects it:
     * Spare::handOver() compares a request's env to it with ===, which ForkEnv's key order may not match)
     */
    private static array $lastEnv = [];
    /** the fork env this process applied (see ForkEnv) */
    private static ForkEnv $forkEnv;
    /** @var array<string, string|false> opcache settings a generation master changed for its preload */
    private static array $savedIni = [];

    /** Parse the arguments, check the files, open the channel; exit 1 on any problem. */
    public static function start(array $argv): void
    {
        $options = Options::parse($argv);
        self::$options = $options;
        self::$role = $options->root ? Role::Root : Role::Master;
        self::$spareCount = $options->spares;
        self::$forkEnv = new ForkEnv();
        self::$channel = Channel::open() ?? self::fail('no control channel on file descriptor 3 (rrts starts this)');
        self::$title = \str_replace("\0", ' ', \rtrim((string) @\file_get_contents('/proc/self/cmdline'), "\0"));
        if ($options->root) {
            // the masters (and their workers) show the command line without the root's arguments
            self::$title = \str_replace($options->rootArguments(), '', self::$title);
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
        return self::$options->preloadPath;
    }

    public static function role(): Role
    {
        return self::$role;
    }

    /**
     * The root's life (Root). Returns only in a new child of it: a generation master, connected to rrts' control
     * socket and ready for its preload, or the opcache filler.
     */
    public static function runRoot(): void
    {
        self::$role = Root::run(self::$channel, self::$options->preloadPath !== null && self::opcacheEnabled());
        self::setTitle(self::$title);
        if (self::$role === Role::OpcacheFiller) {
            return;
        }
        self::$channel = Channel::connect((string) self::$options->control)
            ?? self::fail('cannot connect to the control socket ' . self::$options->control);
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
        if (self::$role === Role::OpcacheFiller) {
            Prewarm::endOpcacheFiller();
        }
        foreach (self::$savedIni as $name => $value) {
            if ($value !== false) {
                @\ini_set($name, $value);
            }
        }
        self::$savedIni = [];
        Prewarm::master();
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
        Child::setScriptGlobals(self::$options); // child step 5 once here: a child inherits it rather than writing it
        $output = self::$options->output === null ? [] : ['output' => Output::prepare(self::$options->output)];
        self::answer(self::readyMessage(self::$options->preload, $resources) + $output);
        self::sendAnswers();
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
                        return Child::becomeWorker(self::$forkEnv, $env, self::$options->scriptPath); // a woken spare
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

                        return Child::becomeWorker(self::$forkEnv, $env, self::$options->scriptPath);
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
     * to pages the children share (docs/protocol.md §6.5, docs/fork-mode.md §2.3).
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
        $problem = ForkEnv::check($env);
        if ($problem !== null) {
            self::answer(Protocol::forkFailed($problem), $message);

            return null;
        }
        self::$lastEnv = $env;
        self::$forkEnv->apply($env); // here, once: the children forked from now on inherit it (usually a no-op)
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
                Prewarm::rehearseWake(self::$forkEnv, $expected, self::$options);
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
        Prewarm::rehearseFork(self::$lastEnv);

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

    /** Child steps 0-3 (docs/fork-mode.md §2.2), and the stream of its exit (FastExit). */
    private static function prepareChild(): void
    {
        Output::attach(); // first: whatever the child writes from now on is logged under its own pid
        self::forgetInherited();
        Child::resetProcessState(self::$gcEnabled);
        FastExit::open();
    }

    public static function opcacheEnabled(): bool
    {
        $status = \function_exists('opcache_get_status') ? @\opcache_get_status(false) : false;
        if (\is_array($status)) {
            return (bool) ($status['opcache_enabled'] ?? false);
        }

        return \extension_loaded('Zend OPcache') && \filter_var(\ini_get('opcache.enable_cli'), \FILTER_VALIDATE_BOOL);
    }

    public static function fail(string $message): never
    {
        \fwrite(\STDERR, "rrts master: $message\n");
        exit(1);
    }
}
