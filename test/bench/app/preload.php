<?php

/**
 * Framework-sized app for test/bench/fork.mjs: Debian's Laravel 8 framework (apt-get install php-laravel-framework).
 *
 * Loads the framework's autoloader, boots an Illuminate\Container\Container, an Illuminate\Events\Dispatcher and an
 * Illuminate\Routing\Router with 50 routes (router.php's bootRouter(), which test/bench/fpm-app.php runs on every
 * php-fpm request), then loads the classes, interfaces and traits of the framework components
 * a web request path uses (found by scanning the installed Illuminate directory: ~530 of them, ~11 MiB of opcache),
 * the way an opcache preload or a warmed-up Laravel worker holds them.
 *
 * fork mode: the fork master requires this file once (server.fork.preload) and forks the workers from it.
 * exec mode: test/bench/app/worker.php requires it itself, so every worker compiles and boots the same code.
 * RRTS_BENCH_COMPONENTS (environment): a comma-separated list of Illuminate components to load instead of
 * App::COMPONENTS, or `all` for every one of them (Console, Database, Foundation, Queue, ...: ~1000 classes).
 * Nothing here opens a file, a socket or a connection that would outlive the preload.
 */

declare(strict_types=1);

namespace RrtsBench;

if (\defined('RRTS_BENCH_APP_BOOTED')) {
    return; // already preloaded by the fork master
}
\define('RRTS_BENCH_APP_BOOTED', true);

require_once __DIR__ . '/router.php'; // bootRouter(), illuminateDir(); sets error_reporting and display_errors
require_once __DIR__ . '/../../../php/lib/rr.php'; // the worker library worker.php starts with (docs/fork-mode.md)

final class App
{
    /** web request path components; Console, Foundation, Testing, Database, Queue, Mail... are left out */
    public const COMPONENTS = [
        'Auth', 'Cache', 'Collections', 'Config', 'Container', 'Contracts', 'Cookie', 'Encryption', 'Events',
        'Filesystem', 'Hashing', 'Http', 'Log', 'Macroable', 'Pagination', 'Pipeline', 'Routing', 'Session',
        'Support', 'Translation', 'Validation', 'View',
    ];
    public const ROUTES = ROUTES;

    public static \Illuminate\Container\Container $container;
    public static \Illuminate\Routing\Router $router;
    /** @var list<string> */
    public static array $loaded = [];
    /** @var list<string> */
    public static array $failed = [];
    public static float $bootMs = 0.0;

    /** Where Debian installs the framework (see router.php). */
    public static function illuminateDir(): string
    {
        return illuminateDir();
    }

    public static function boot(): void
    {
        $started = \hrtime(true);
        $dir = self::illuminateDir();
        [$container, $router] = bootRouter(); // what fpm-app.php does on every request

        foreach (self::classList($dir, self::components($dir)) as $class) {
            try {
                if (\class_exists($class) || \interface_exists($class) || \trait_exists($class)) {
                    self::$loaded[] = $class;
                } else {
                    self::$failed[] = $class;
                }
            } catch (\Throwable $e) { // a class whose optional dependency (Flysystem cache, DBAL...) is missing
                self::$failed[] = $class;
            }
        }

        // One request through the whole stack, so the lazily loaded request path is warm too.
        $router->dispatch(\Illuminate\Http\Request::create('/r0/1', 'GET'));

        self::$container = $container;
        self::$router = $router;
        self::$bootMs = (\hrtime(true) - $started) / 1e6;
    }

    /** @return list<string> App::COMPONENTS, or what RRTS_BENCH_COMPONENTS names */
    public static function components(string $dir): array
    {
        $wanted = \trim((string) \getenv('RRTS_BENCH_COMPONENTS'));
        if ($wanted === '') {
            return self::COMPONENTS;
        }
        if ($wanted === 'all') {
            return \array_values(\array_map('basename', \glob("$dir/*", \GLOB_ONLYDIR) ?: []));
        }

        return \array_values(\array_filter(\array_map('trim', \explode(',', $wanted)), static fn (string $c): bool => \is_dir("$dir/$c")));
    }

    /**
     * Every class, interface and trait declared by a file of the given components: namespace from the file's
     * `namespace` line, name from the file name.
     *
     * @param list<string> $components
     * @return list<string>
     */
    public static function classList(string $dir, array $components): array
    {
        $names = [];
        foreach ($components as $component) {
            $files = new \RecursiveIteratorIterator(new \RecursiveDirectoryIterator("$dir/$component", \FilesystemIterator::SKIP_DOTS));
            foreach ($files as $file) {
                $path = $file->getPathname();
                $base = \basename($path, '.php');
                if (!\str_ends_with($path, '.php') || !\ctype_upper($base[0] ?? '') || \str_contains($path, '/stubs/') || \str_contains($path, '/resources/')) {
                    continue;
                }
                $head = (string) \file_get_contents($path, false, null, 0, 4096);
                if (\preg_match('/^namespace\s+([\w\\\\]+);/m', $head, $ns)
                    && \preg_match('/^\s*(?:abstract\s+|final\s+)*(?:class|interface|trait)\s+' . \preg_quote($base, '/') . '\b/m', $head)) {
                    $names[] = $ns[1] . '\\' . $base;
                }
            }
        }
        \sort($names);

        return $names;
    }
}

App::boot();
