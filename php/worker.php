<?php

/**
 * Example worker for rr.example.yaml: answers every request with a small "Hello from rrts" page showing the
 * method, the URI and this worker's pid.
 *
 * Real applications use the official SDK (composer require spiral/roadrunner-http nyholm/psr7) and PSR-7; rrts
 * runs those unchanged. This file uses rrts' tiny built-in client (lib/rr.php) only so the example runs without
 * composer.
 */

declare(strict_types=1);

require_once __DIR__ . '/lib/rr.php';

use Rrts\Lite\HttpWorker;

ini_set('display_errors', 'stderr');

$http = HttpWorker::create();

while ($request = $http->waitRequest()) {
    try {
        $ctx = $request['ctx'];
        $method = htmlspecialchars((string) ($ctx['method'] ?? 'GET'));
        $uri = htmlspecialchars((string) ($ctx['uri'] ?? '/'));
        $pid = getmypid();

        $http->respond(200, <<<HTML
            <!doctype html>
            <html><head><meta charset="utf-8"><title>Hello from rrts</title></head>
            <body>
            <h1>Hello from rrts</h1>
            <p>{$method} {$uri}</p>
            <p>Served by PHP worker pid {$pid}.</p>
            </body></html>

            HTML, ['Content-Type' => ['text/html; charset=utf-8']]);
    } catch (Throwable $e) {
        $http->getWorker()->error((string) $e);
    }
}
