<?php

/**
 * The hello page of php/worker.php, served through the official SDK (spiral/roadrunner-http's PSR7Worker with
 * nyholm/psr7), for test/bench/hello.mjs --sdk DIR: what a RoadRunner user's worker costs on rrts.
 *
 * The SDK is never committed. DIR (env RRTS_BENCH_SDK) holds a copy of each package's `src/`: goridge/, worker/,
 * http/ (roadrunner-php/*) and log/ (php-fig/log 2.x or 3.x); nyholm/psr7 and the PSR-7/PSR-17 interfaces come from
 * Debian (php-nyholm-psr7, php-psr-http-message, php-psr-http-factory). test/bench/README.md says how to make DIR.
 */

declare(strict_types=1);

$sdk = (string) getenv('RRTS_BENCH_SDK');
if ($sdk === '' || !is_dir($sdk)) {
    fwrite(STDERR, "sdk-hello.php: RRTS_BENCH_SDK must name the directory holding the SDK's sources\n");
    exit(1);
}

// composer's PSR-4 rules for the four packages, without composer.
$prefixes = [
    'Spiral\\RoadRunner\\Http\\' => "$sdk/http/src/",
    'Spiral\\RoadRunner\\' => "$sdk/worker/src/",
    'Spiral\\Goridge\\' => "$sdk/goridge/src/",
    'Psr\\Log\\' => "$sdk/log/src/",
];
spl_autoload_register(static function (string $class) use ($prefixes): void {
    foreach ($prefixes as $prefix => $dir) {
        if (str_starts_with($class, $prefix)) {
            $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
            return;
        }
    }
});
require '/usr/share/php/Nyholm/Psr7/autoload.php';
spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'Psr\\Http\\Message\\')) {
        $file = '/usr/share/php/' . str_replace('\\', '/', $class) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});

use Nyholm\Psr7\Factory\Psr17Factory;
use Spiral\RoadRunner\Http\PSR7Worker;
use Spiral\RoadRunner\Worker;

ini_set('display_errors', 'stderr');

$factory = new Psr17Factory();
$worker = new PSR7Worker(Worker::create(), $factory, $factory, $factory);

while ($request = $worker->waitRequest()) {
    try {
        $method = htmlspecialchars($request->getMethod());
        $uri = htmlspecialchars((string) $request->getUri());
        $pid = getmypid();
        $response = $factory->createResponse(200)->withHeader('Content-Type', 'text/html; charset=utf-8');
        $response->getBody()->write(<<<HTML
            <!doctype html>
            <html><head><meta charset="utf-8"><title>Hello from rrts</title></head>
            <body>
            <h1>Hello from rrts</h1>
            <p>{$method} {$uri}</p>
            <p>Served by PHP worker pid {$pid}.</p>
            </body></html>

            HTML);
        $worker->respond($response);
    } catch (Throwable $e) {
        $worker->getWorker()->error((string) $e);
    }
}
