<?php

/**
 * The bench app on php-fpm (test/bench/hello.mjs' `app-fpm` target, fork.mjs' php-fpm memory row): every request
 * boots the framework the way a Laravel public/index.php does — autoloader, Container, Events, Router with the same
 * 50 routes as test/bench/app/worker.php on rrts (app/router.php's bootRouter()) — then captures the request,
 * dispatches it and sends the answer ("route N id ID pid PID\n"). Unlike preload.php it does not load the ~530
 * classes of the framework's web components up front: those are there for memory realism of a long-lived worker;
 * a php-fpm request only autoloads what it uses (opcache keeps them compiled between requests).
 */

declare(strict_types=1);

require __DIR__ . '/app/router.php';

use Illuminate\Http\Request;
use Symfony\Component\HttpKernel\Exception\HttpExceptionInterface;

[, $router] = RrtsBench\bootRouter();

$request = Request::capture();
try {
    $response = $router->dispatch($request);
    $status = $response->getStatusCode();
    $body = (string) $response->getContent();
} catch (HttpExceptionInterface $e) { // no route: 404, wrong method: 405
    $status = $e->getStatusCode();
    $body = "$status\n";
}

header_remove('X-Powered-By');
http_response_code($status);
header('Content-Type: text/plain; charset=utf-8');
header('Content-Length: ' . strlen($body)); // as rrts sends it; without it nginx would switch to chunked encoding
echo $body;
