<?php

declare(strict_types=1);

namespace Rrts\Master;

/**
 * A master (the root starts as one too, and hands over to Root): its state and loop. serve() returns only in a
 * freshly forked child, with the script to require. One per process (current()): php/master.php's top level holds
 * no variables, since they would be globals of the preload and the script.
 */
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

    private Role $role;
    private Channel $channel;
    /** @var list<array<string, mixed>> replies not yet sent (see answer()) */
    private array $answers = [];
    /** whether the cycle collector was on after the preload: the master turns it off, its children back on */
    private bool $gcEnabled = true;
    /** hrtime() of the last fork request (of the ready message until the first) */
    private int $lastForkAt = 0;
    /** @var array<int, true> pids forked and not yet reaped */
    private array $children = [];
    /** how many spares to keep parked: --spares or the last spares request, 0 once parking one failed */
    private int $spareCount = 0;
    /** the master's command line, args joined by spaces ('' when /proc is not there: then titles stay as they are) */
    private string $title = '';
    /** @var list<Spare> parked, oldest first */
    private array $spares = [];
    /**
     * @var array<string, string> the env of the last fork request, as it came (a spare forked after it expects it:
     * Spare::handOver() compares a request's env to it with ===, which ForkEnv's key order may not match)
     */
    private array $lastEnv = [];
    /** the fork env this process applied (see ForkEnv) */
    private ForkEnv $forkEnv;
    /** @var array<string, string|false> opcache settings a generation master changed for its preload */
    private array $savedIni = [];
    /** with an output socket (--output, or the generation's) and FFI: what each child connects its stdout and stderr with */
    private ?Output $output = null;
    /** why there is an output socket but no Output (FFI missing, say) */
    private ?string $outputProblem = null;
    private bool $outputPrepared = false;

    private static self $current;

    /** Parse the arguments, check the files, open the channel; exit 1 on any problem. */
    public static function start(array $argv): void
    {
        self::$current = new self(Options::parse($argv));
    }

    public static function current(): self
    {
        return self::$current;
    }

    private function __construct(private readonly Options $options)
    {
        $this->role = $options->root ? Role::Root : Role::Master;
        $this->spareCount = $options->spares;
        $this->forkEnv = new ForkEnv();
        $this->channel = Channel::open() ?? self::fail('no control channel on file descriptor 3 (rrts starts this)');
        $this->title = \str_replace("\0", ' ', \rtrim((string) @\file_get_contents('/proc/self/cmdline'), "\0"));
        if ($options->root) {
            // the masters (and their workers) show the command line without the root's arguments
            $this->title = \str_replace($options->rootArguments(), '', $this->title);
            $this->setTitle(self::ROOT_TITLE . ': ' . $this->title);
        }
    }

    private function setTitle(string $title): void
    {
        if ($this->title !== '') {
            @\cli_set_process_title($title);
        }
    }

    /** Absolute path of the preload to require, or null. */
    public function preloadPath(): ?string
    {
        return $this->options->preloadPath;
    }

    public function role(): Role
    {
        return $this->role;
    }

    /**
     * The root's life (Root). Returns only in a new child of it: a generation master, connected to rrts' control
     * socket and ready for its preload, or the opcache filler.
     */
    public function runRoot(): void
    {
        [$this->role, $output] = Root::run($this->channel, $this->options->preloadPath !== null && self::opcacheEnabled());
        $this->setTitle($this->title);
        if ($this->role === Role::OpcacheFiller) {
            return;
        }
        // first: what the preload writes (a fatal error, say) reaches the pool that asked for this master
        $this->prepareOutput($output ?? $this->options->output);
        $this->output?->attach('master');
        $this->channel = Channel::connect((string) $this->options->control)
            ?? self::fail('cannot connect to the control socket ' . $this->options->control);
        if (!$this->channel->send(Protocol::hello())) {
            exit(1);
        }
        $this->revalidateOpcache();
    }

    /**
     * A generation master shares the opcache of the masters before it: before its preload, every cached script
     * whose file changed since it was compiled is invalidated, and the preload itself checks every file it
     * includes (validate_timestamps on, revalidate_freq 0, no file_update_protection: the shared process start
     * time opcache compares against is the root's). announceReady() puts the user's settings back.
     */
    private function revalidateOpcache(): void
    {
        if (!self::opcacheEnabled()) {
            return;
        }
        foreach (['opcache.validate_timestamps' => '1', 'opcache.revalidate_freq' => '0', 'opcache.file_update_protection' => '0'] as $name => $value) {
            $this->savedIni[$name] = \ini_get($name);
            @\ini_set($name, $value);
        }
        $status = @\opcache_get_status(true);
        foreach (\is_array($status) ? \array_keys($status['scripts'] ?? []) : [] as $path) {
            @\opcache_invalidate((string) $path, false); // only if its mtime changed (validate_timestamps is on)
        }
    }

    public function announceReady(): void
    {
        if ($this->role === Role::OpcacheFiller) {
            Prewarm::endOpcacheFiller();
        }
        foreach ($this->savedIni as $name => $value) {
            if ($value !== false) {
                @\ini_set($name, $value);
            }
        }
        $this->savedIni = [];
        Prewarm::master();
        // The loop makes no cycles (arrays of scalars), so the cycle collector has nothing to find there, and each
        // run after a fork wrote to pages the new child shares (its copy-on-write faults showed in `perf` during
        // a reset's forks). One run now, for the preload's garbage; the children get it back as the preload left it.
        $this->gcEnabled = \gc_enabled();
        \gc_collect_cycles();
        \gc_disable();
        $resources = 0;
        $ours = [\STDIN, \STDOUT, \STDERR, $this->channel->stream];
        foreach (\get_resources('stream') as $stream) {
            if (!\in_array($stream, $ours, true)) {
                $resources++;
            }
        }
        Child::setScriptGlobals($this->options); // child step 5 once here: a child inherits it rather than writing it
        $ready = self::readyMessage($this->options->preload, $resources);
        if (!$this->outputPrepared) {
            $this->prepareOutput($this->options->output);
        }
        if ($this->outputProblem !== null || $this->output !== null) {
            $ready['output'] = $this->outputProblem ?? true; // or why the children keep our stdout
        }
        $this->answer($ready);
        $this->sendAnswers();
    }

    /** What each child (and a generation master itself) connects its stdout and stderr to; null: none. */
    private function prepareOutput(?string $path): void
    {
        $this->outputPrepared = true;
        if ($path === null) {
            return;
        }
        $prepared = Output::prepare($path);
        $this->output = $prepared instanceof Output ? $prepared : null;
        $this->outputProblem = $prepared instanceof Output ? null : $prepared;
    }

    /** The ready message (the root adds root and warm). */
    public static function readyMessage(?string $preload, int $resources): array
    {
        return Protocol::ready($preload, $resources, self::opcacheEnabled());
    }

    /** The loop. Returns (the script's absolute path) only in a new child, ready to become the worker. */
    public function serve(): string
    {
        $this->lastForkAt = \hrtime(true);
        while (true) {
            if (\count($this->spares) < $this->spareCount) {
                $quietFor = self::SPARE_REFILL_IDLE_US - \intdiv(\hrtime(true) - $this->lastForkAt, 1000);
                if (!$this->channel->waitReadable(\max(0, $quietFor))) {
                    if ($quietFor > 0) {
                        continue; // timed out (or a signal woke it early): look at the time again
                    }
                    $env = $this->parkSpares();
                    if ($env !== null) {
                        return Child::becomeWorker($this->forkEnv, $env, $this->options->scriptPath); // a woken spare
                    }
                }
            }
            foreach ($this->receiveWaiting() as $message) {
                if ($message === null) {
                    $this->killChildrenAndExit();
                }
                $op = $message['op'] ?? null;
                if ($op === Protocol::FORK) {
                    $env = $this->fork($message);
                    if ($env !== null) {
                        $this->prepareChild();

                        return Child::becomeWorker($this->forkEnv, $env, $this->options->scriptPath);
                    }
                    continue;
                }
                $this->answer(match ($op) {
                    Protocol::REAP => $this->reap($message['pid'] ?? null),
                    Protocol::SPARES => $this->setSpareCount($message['count'] ?? null),
                    Protocol::PING => Protocol::masterPong(\count($this->children), \count($this->spares), \memory_get_usage(true)),
                    default => Protocol::unknownOp($op),
                }, $message);
            }
            $this->sendAnswers();
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
    private function receiveWaiting(): array
    {
        $messages = [$this->channel->receiveOrExit('master')];
        while (\end($messages) !== null && \count($messages) < self::MAX_BURST && $this->channel->waitReadable(0)) {
            $messages[] = $this->channel->receiveOrExit('master');
        }

        return $messages;
    }

    /** Parent: answers and returns null. Child: returns the env to apply. */
    private function fork(array $message): ?array
    {
        $this->lastForkAt = \hrtime(true);
        $env = $message['env'] ?? [];
        $problem = ForkEnv::check($env);
        if ($problem !== null) {
            $this->answer(Protocol::forkFailed($problem), $message);

            return null;
        }
        $this->lastEnv = $env;
        $this->forkEnv->apply($env); // here, once: the children forked from now on inherit it (usually a no-op)
        $spare = $this->takeSpare($env);
        if ($spare !== null) {
            $this->children[$spare] = true;
            $this->answer(Protocol::forked($spare), $message);

            return null;
        }
        $pid = \pcntl_fork();
        if ($pid === 0) {
            return $env;
        }
        if ($pid < 0) {
            $error = 'pcntl_fork: ' . \pcntl_strerror(\pcntl_get_last_error());
            $this->answer(Protocol::forkFailed($error), $message);

            return null;
        }
        $this->children[$pid] = true;
        $this->answer(Protocol::forked($pid), $message);

        return null;
    }

    /** Hand the env to the oldest live spare; its pid, or null when none could take it (then fork as usual). */
    private function takeSpare(array $env): ?int
    {
        while (($spare = \array_shift($this->spares)) !== null) {
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
     * A pool sizes its spares (rrts sends this once its master is ready: a pool with a dynamic_allocator parks enough
     * for a burst's first workers, docs/pool.md). Fewer than are parked: the newest go at once.
     */
    private function setSpareCount(mixed $count): array
    {
        if (!\is_int($count) || $count < 0 || $count > Options::MAX_SPARES) {
            return Protocol::badRequest('spares: count must be an integer from 0 to ' . Options::MAX_SPARES . ', got ' . \var_export($count, true));
        }
        $this->spareCount = $count;
        while (\count($this->spares) > $count) {
            $spare = \array_pop($this->spares);
            \fclose($spare->socket); // at EOF a parked spare exits without running the script
            $status = 0;
            \pcntl_waitpid($spare->pid, $status);
        }

        return Protocol::sparesSet($count);
    }

    /**
     * Fork spares until --spares are parked, or until a message waits. In the master: returns null. In a spare: parks it (child steps 1-3),
     * and returns its env once the master hands one over; a spare that gets EOF instead exits 0.
     */
    private function parkSpares(): ?array
    {
        $forked = 0;
        while (\count($this->spares) < $this->spareCount) {
            if ($forked++ > 0 && $this->channel->waitReadable(0)) {
                return null; // a request came: it goes first (16 spares take the master ~20-40 ms), the rest after it
            }
            $pair = \stream_socket_pair(\STREAM_PF_UNIX, \STREAM_SOCK_STREAM, \STREAM_IPPROTO_IP);
            if ($pair === false) {
                \fwrite(\STDERR, "rrts master: cannot create a socketpair for a spare; forking on request instead\n");
                $this->spareCount = 0;

                return null;
            }
            [$ours, $theirs] = $pair;
            // titled before the fork, so the child has the spare's title from its first instant: `ps` never shows
            // it as a worker (titled by itself, it did until it first ran, which can be milliseconds under load)
            $this->setTitle(self::SPARE_TITLE . ' (master ' . \getmypid() . ')');
            $pid = \pcntl_fork();
            if ($pid !== 0) {
                $this->setTitle($this->title);
            }
            if ($pid === 0) {
                \fclose($ours);
                $expected = $this->lastEnv; // applied by the master (most likely the next request's too: the pool's)
                $this->prepareChild();
                Prewarm::rehearseWake($this->forkEnv, $expected, $this->options);
                $env = Spare::awaitEnv($theirs, $expected);
                $this->setTitle($this->title);
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
                $this->spareCount = 0;

                return null;
            }
            $this->spares[] = new Spare($pid, $ours, $this->lastEnv);
        }
        Prewarm::rehearseFork($this->lastEnv);

        return null;
    }

    private function reap(mixed $pid): array
    {
        if (!\is_int($pid) || !isset($this->children[$pid])) {
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
                unset($this->children[$pid]); // someone else reaped it (SIGCHLD ignored?): it is gone either way
            }

            return Protocol::reaped($pid, error: 'pcntl_waitpid: ' . \pcntl_strerror($errno));
        }
        unset($this->children[$pid]);
        ['code' => $code, 'signal' => $signal] = Protocol::exitStatus($status);

        return Protocol::reaped($pid, true, $code, $signal);
    }

    /** rrts is gone: no worker may outlive it. */
    private function killChildrenAndExit(): never
    {
        foreach ($this->spares as $spare) {
            $this->children[$spare->pid] = true;
        }
        foreach (\array_keys($this->children) as $pid) {
            \posix_kill($pid, \SIGKILL);
        }
        foreach (\array_keys($this->children) as $pid) {
            $status = 0;
            \pcntl_waitpid($pid, $status);
        }
        exit(0);
    }

    /** Queue a reply, with the request's id when it had one; sendAnswers() writes it. */
    private function answer(array $reply, array $request = []): void
    {
        $this->answers[] = Protocol::withIdOf($reply, $request);
    }

    /** Write the queued replies in one go (after the messages read together); a closed channel means rrts is gone. */
    private function sendAnswers(): void
    {
        $answers = $this->answers;
        $this->answers = [];
        if ($answers !== [] && !$this->channel->sendAll($answers)) {
            $this->killChildrenAndExit();
        }
    }

    /** In a new child: drop the master's channel, its bookkeeping and the spares' sockets it inherited. */
    private function forgetInherited(): void
    {
        $this->channel->close();
        $this->answers = []; // the master's, for the requests read with this fork's
        $this->children = [];
        foreach ($this->spares as $spare) {
            \fclose($spare->socket);
        }
        $this->spares = [];
        $this->spareCount = 0;
    }

    /** Child steps 0-3 (docs/fork-mode.md §2.2), and the stream of its exit (FastExit). */
    private function prepareChild(): void
    {
        $this->output?->attach('worker'); // first: whatever the child writes from now on is logged under its own pid
        $this->forgetInherited();
        Child::resetProcessState($this->gcEnabled);
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
