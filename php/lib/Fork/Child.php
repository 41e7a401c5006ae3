<?php

declare(strict_types=1);

namespace Rrts\Master;

/**
 * What a new child does to itself before it becomes `php <script> <args>` (the child steps, docs/fork-mode.md §2.2):
 * a direct fork right away, a spare before it parks and when it is woken.
 */
final class Child
{
    /** Steps 2-3: the signal handlers and the cycle collector as a fresh php has them, its own mt_rand() state. */
    public static function resetProcessState(bool $gcEnabled): void
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
        if ($gcEnabled) {
            \gc_enable();
        }

        \mt_srand(\random_int(\PHP_INT_MIN, \PHP_INT_MAX));
    }

    /** Step 5: $argv, $argc and the SCRIPT_* entries as `php <script> <args>` sets them; once, in the master. */
    public static function setScriptGlobals(Options $options): void
    {
        $argv = [$options->script, ...$options->scriptArgs];
        $GLOBALS['argv'] = $_SERVER['argv'] = $argv;
        $GLOBALS['argc'] = $_SERVER['argc'] = \count($argv);
        foreach (['SCRIPT_FILENAME', 'SCRIPT_NAME', 'PHP_SELF', 'PATH_TRANSLATED'] as $key) {
            $_SERVER[$key] = $options->script;
        }
    }

    /**
     * The last of steps 4-5 (a spare: when it is woken), and the relay's hand-over to pipes; returns the script to
     * require.
     */
    public static function becomeWorker(ForkEnv $forkEnv, array $env, string $scriptPath): string
    {
        $forkEnv->apply($env); // a direct fork inherited it; a spare woken with another env than it expected
        RelayPipes::takeOver(); // the env names the relay; the script must find the pipes in RR_RELAY
        $_SERVER['REQUEST_TIME_FLOAT'] = \microtime(true);
        $_SERVER['REQUEST_TIME'] = (int) $_SERVER['REQUEST_TIME_FLOAT'];

        return $scriptPath;
    }
}
