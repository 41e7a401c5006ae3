<?php

declare(strict_types=1);

namespace Rrts\Master;

/** php/master.php's command line, checked (docs/protocol.md §6.1): what every role of the process reads. */
final class Options
{
    public const USAGE = 'usage: php master.php --script=<worker.php> [--preload=<file>] [--spares=N] [--root --control=<socket>] [--output=<socket>] [-- <script args>]';
    public const MAX_SPARES = 16;

    /**
     * @param string $script the worker script as given (what $argv[0] and SCRIPT_FILENAME show)
     * @param string $scriptPath its absolute path (what the child requires)
     * @param list<string> $scriptArgs
     * @param bool $root --root: this process is the root; $control: the socket a generation master connects to
     * @param ?string $output --output: the socket each child connects its stdout and stderr to (see Output)
     */
    private function __construct(
        public readonly string $script,
        public readonly string $scriptPath,
        public readonly array $scriptArgs,
        public readonly ?string $preload,
        public readonly ?string $preloadPath,
        public readonly int $spares,
        public readonly bool $root,
        public readonly ?string $control,
        public readonly ?string $output,
    ) {
    }

    /** Parse the arguments and check the files; exit 1 on any problem. */
    public static function parse(array $argv): self
    {
        $script = $preload = $control = $output = null;
        $scriptArgs = [];
        $root = false;
        $spares = 0;
        foreach (\array_slice($argv, 1) as $i => $arg) {
            if ($arg === '--') {
                $scriptArgs = \array_slice($argv, $i + 2);
                break;
            }
            if (\str_starts_with($arg, '--script=')) {
                $script = \substr($arg, 9);
            } elseif (\str_starts_with($arg, '--preload=')) {
                $preload = \substr($arg, 10);
            } elseif ($arg === '--root') {
                $root = true;
            } elseif (\str_starts_with($arg, '--control=')) {
                $control = \substr($arg, 10);
            } elseif (\str_starts_with($arg, '--output=')) {
                $output = \substr($arg, 9);
            } elseif (\str_starts_with($arg, '--spares=')) {
                $n = \filter_var(\substr($arg, 9), \FILTER_VALIDATE_INT, ['options' => ['min_range' => 0, 'max_range' => self::MAX_SPARES]]);
                if ($n === false) {
                    Master::fail("--spares must be an integer from 0 to " . self::MAX_SPARES . ", got '" . \substr($arg, 9) . "'");
                }
                $spares = $n;
            } else {
                Master::fail("unknown argument '$arg'; " . self::USAGE);
            }
        }
        if ($script === null || $script === '') {
            Master::fail('--script is required; ' . self::USAGE);
        }
        $scriptPath = self::existingFile($script, 'worker script');
        $preloadPath = $preload === null ? null : self::existingFile($preload, 'preload file');
        if ($root && ($control === null || $control === '')) {
            Master::fail('--root needs --control=<socket>; ' . self::USAGE);
        }

        return new self($script, $scriptPath, $scriptArgs, $preload, $preloadPath, $spares, $root, $control, $output);
    }

    /** What the root's command line has that its masters' does not (their `ps` title drops it). */
    public function rootArguments(): string
    {
        return ' --root --control=' . $this->control . ($this->output === null ? '' : ' --output=' . $this->output);
    }

    /** Absolute path of a file given relative to the cwd (require would search include_path first). */
    private static function existingFile(string $path, string $what): string
    {
        $absolute = $path[0] === '/' ? $path : \getcwd() . '/' . $path;
        if (!\is_file($absolute) || !\is_readable($absolute)) {
            Master::fail("$what not found or not readable: $path (cwd " . \getcwd() . ')');
        }

        return $absolute;
    }
}
