<?php

/**
 * Worker of the framework-sized bench app (test/bench/fork.mjs): every request goes through the Laravel Router
 * booted by preload.php and gets a small text body. Speaks the protocol with rrts' dependency-free php/lib/rr.php.
 *
 * exec mode: `php -d opcache.enable_cli=1 test/bench/app/worker.php` boots the framework itself (preload.php).
 * fork mode: the master already required preload.php (server.fork.preload); the require below is then a no-op.
 */

declare(strict_types=1);

require_once __DIR__ . '/preload.php';
require_once __DIR__ . '/../../../php/lib/rr.php';

use Illuminate\Http\Request;
use Rrts\Lite\HttpWorker;
use Symfony\Component\HttpKernel\Exception\HttpExceptionInterface;
use RrtsBench\App;

$http = HttpWorker::create();
$router = App::$router;

while ($request = $http->waitRequest()) {
    try {
        $ctx = $request['ctx'];
        $response = $router->dispatch(Request::create((string) ($ctx['uri'] ?? '/'), (string) ($ctx['method'] ?? 'GET')));
        $http->respond($response->getStatusCode(), (string) $response->getContent(), ['Content-Type' => ['text/plain; charset=utf-8']]);
    } catch (HttpExceptionInterface $e) { // no route: 404, wrong method: 405
        $http->respond($e->getStatusCode(), $e->getStatusCode() . "\n", ['Content-Type' => ['text/plain; charset=utf-8']]);
    } catch (Throwable $e) {
        $http->getWorker()->error((string) $e);
    }
}
