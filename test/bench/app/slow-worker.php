<?php

/**
 * Worker of test/bench/elastic.mjs: boots the framework-sized bench app like app/worker.php (so an exec-mode worker
 * start costs what a framework's does), then answers `GET /?ms=N` after sleeping N ms: a slow request (a database
 * or API call) that holds its worker without using the CPU. The body is "slept N pid P".
 */

declare(strict_types=1);

require_once __DIR__ . '/preload.php';
require_once __DIR__ . '/../../../php/lib/rr.php';

use Rrts\Lite\HttpWorker;

$http = HttpWorker::create();
$pid = getmypid();

while ($request = $http->waitRequest()) {
    parse_str((string) ($request['ctx']['rawQuery'] ?? ''), $query);
    $ms = max(0, (int) ($query['ms'] ?? 0));
    usleep($ms * 1000);
    $http->respond(200, "slept $ms pid $pid", ['Content-Type' => ['text/plain; charset=utf-8']]);
}
