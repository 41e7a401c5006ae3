<?php

/**
 * The bench app's router, shared by both ways of running it: booted once per worker by preload.php (rrts, exec and
 * fork mode) and once per request by test/bench/fpm-app.php (php-fpm, the way a Laravel public/index.php boots).
 *
 * bootRouter() builds an Illuminate\Container\Container, an Illuminate\Events\Dispatcher and an
 * Illuminate\Routing\Router with ROUTES routes `/r<N>/{id}` (answer: "route N id ID pid PID\n") and `/` ("home pid
 * PID\n"). Needs Debian's Laravel 8 framework (apt-get install -y php-laravel-framework).
 */

declare(strict_types=1);

namespace RrtsBench;

use Illuminate\Container\Container;
use Illuminate\Events\Dispatcher;
use Illuminate\Routing\Router;

\error_reporting(\E_ALL & ~\E_DEPRECATED & ~\E_USER_DEPRECATED); // Laravel 8 on PHP 8.2
\ini_set('display_errors', 'stderr'); // stdout is the pipes relay in rrts' exec mode

const ROUTES = 50;

/** Where Debian installs the framework: <include_path>/Illuminate (RRTS_BENCH_ILLUMINATE overrides). */
function illuminateDir(): string
{
    $dir = \getenv('RRTS_BENCH_ILLUMINATE') ?: '';
    if ($dir === '') {
        $autoload = \stream_resolve_include_path('Illuminate/autoload.php');
        $dir = $autoload === false ? '' : \dirname($autoload);
    }
    if ($dir === '' || !\is_file("$dir/autoload.php")) {
        \fwrite(\STDERR, "rrts bench app: Laravel's Illuminate/autoload.php not found (apt-get install -y php-laravel-framework)\n");
        exit(1);
    }

    return $dir;
}

/**
 * Load the framework's autoloader and boot the container, the event dispatcher and the router with its routes.
 *
 * @return array{0: Container, 1: Router}
 */
function bootRouter(): array
{
    require_once illuminateDir() . '/autoload.php';

    $container = new Container();
    Container::setInstance($container);
    $events = new Dispatcher($container);
    $router = new Router($events, $container);
    $container->instance(\Illuminate\Contracts\Container\Container::class, $container);
    $container->instance(\Illuminate\Contracts\Events\Dispatcher::class, $events);
    $container->instance(Router::class, $router);
    $container->bind(\Illuminate\Routing\Contracts\CallableDispatcher::class, \Illuminate\Routing\CallableDispatcher::class);
    $container->bind(\Illuminate\Routing\Contracts\ControllerDispatcher::class, \Illuminate\Routing\ControllerDispatcher::class);

    for ($i = 0; $i < ROUTES; $i++) {
        $router->get("/r$i/{id}", static fn (string $id): string => "route $i id $id pid " . \getmypid() . "\n")
            ->where('id', '[0-9]+')
            ->name("r$i");
    }
    $router->get('/', static fn (): string => 'home pid ' . \getmypid() . "\n");
    $router->getRoutes()->refreshNameLookups();

    return [$container, $router];
}
